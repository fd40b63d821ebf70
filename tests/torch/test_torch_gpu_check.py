"""The prepared GPU check: it skips cleanly without CUDA, and its dry run on the CPU passes."""

from __future__ import annotations

import os
import subprocess
import sys
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
        env={**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "CUDA is not available: skipped" in result.stdout


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu(tmp_path):
    # --device cpu runs the conformance part and the step-time part on the CPU.
    result = subprocess.run(
        ["bash", str(SCRIPT), "--device", "cpu", "--repeats", "1", "--models", "2M-in-2000"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "summary.txt").read_text() == "conformance: passed, step time: passed\n"
    assert "torch-foreach-capturable: passed" in (tmp_path / "conformance.txt").read_text()
    assert "VRAdam foreach capturable" in (tmp_path / "step_time.txt").read_text()
