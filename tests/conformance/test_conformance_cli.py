"""``python -m vradam.conformance`` exits 0 on conformance and 1 with a table on failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vradam.conformance import case_names
from vradam.conformance.spec_adapter import SpecAdapter

HERE = Path(__file__).resolve().parent


class OffByOneAdapter(SpecAdapter):
    """Uses β3 one larger than requested."""

    name = "off-by-one"

    def create(self, params, hyperparams, *, dtype, device, loss):
        run = super().create(params, hyperparams, dtype=dtype, device=device, loss=loss)
        step = run.step
        run.step = lambda grads, hps: step(grads, [hp.replace(beta3=hp.beta3 + 1) for hp in hps])
        return run


OFF_BY_ONE = OffByOneAdapter()


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "vradam.conformance", *args],
        capture_output=True, text=True, cwd=HERE, check=False,
    )


def test_cli_spec_adapter_passes():
    result = run_cli("vradam.conformance.spec_adapter:SpecAdapter", "--dtype", "float32")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(case_names())} cases conform" in result.stdout


def test_cli_failing_adapter_exits_1():
    result = run_cli("test_conformance_cli:OffByOneAdapter", "--case", "defaults")
    assert result.returncode == 1, result.stdout + result.stderr


def test_cli_failing_adapter_prints_table():
    result = run_cli("test_conformance_cli:OFF_BY_ONE", "--case", "defaults", "--case", "groups")
    assert "max abs err" in result.stdout
    assert "defaults" in result.stdout
    assert "groups" in result.stdout


def test_cli_tag_filter():
    result = run_cli("vradam.conformance.spec_adapter:SpecAdapter", "--tag", "closed-loop")
    assert "4 cases conform" in result.stdout


def test_cli_bad_target_exits_2():
    result = run_cli("numpy:float64")
    assert result.returncode == 2
    assert "expected an Adapter subclass or instance" in result.stderr


def test_cli_malformed_target_exits_2():
    result = run_cli("vradam.conformance.spec_adapter")
    assert result.returncode == 2
    assert "MODULE:ATTR" in result.stderr

