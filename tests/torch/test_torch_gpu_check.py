"""The prepared GPU check must at least start and skip cleanly on a machine without CUDA."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "torch_gpu_check.sh"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the path taken without CUDA")
def test_gpu_check_skips_without_cuda(tmp_path):
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OUT": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "CUDA is not available: skipped" in result.stdout
