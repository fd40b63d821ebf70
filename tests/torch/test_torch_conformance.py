"""The golden conformance suite, run through both paths of vradam.torch.VRAdam.

Cases that do not apply to a dtype (complex cases in bfloat16, for example) are
skipped by the runner itself and listed in its report.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from vradam.conformance import assert_conforms, run_suite
from vradam.torch.conformance import TorchAdapter

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ),
]
PATHS = [pytest.param(False, id="for-loop"), pytest.param(True, id="foreach")]
STEP_COUNTS = [pytest.param(False, id="host-steps"), pytest.param(True, id="capturable")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("capturable", STEP_COUNTS)
@pytest.mark.parametrize("foreach", PATHS)
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_conformance_suite(dtype, foreach, capturable, device):
    adapter = TorchAdapter(foreach=foreach, capturable=capturable)
    assert_conforms(adapter, dtype=dtype, device=device)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_cases_run(dtype):
    """Each low-precision dtype runs at least one case, so the suite above cannot pass empty."""
    report = run_suite(TorchAdapter(foreach=True), dtype=dtype, tags=["low-precision"])
    assert report.ok
    assert len(report.cases_run) > 0


def test_command_line_runs_adapter(tmp_path):
    # Run outside the checkout: `python -m` puts the working directory first on
    # sys.path, where the source folder vradam/ would shadow the installed package.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vradam.conformance",
            "vradam.torch.conformance:FOREACH",
            "--dtype",
            "float32",
            "--case",
            "defaults",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "conform" in result.stdout
