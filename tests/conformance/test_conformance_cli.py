"""``python -m vradam.conformance`` exits 0 on conformance, 1 on failure, 2 on misuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vradam.conformance import Adapter, case_names
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


class FailingCreateAdapter(Adapter):
    """Rejects every configuration, as a port on a missing device does."""

    name = "failing-create"

    def create(self, params, hyperparams, *, dtype, device, loss):
        raise RuntimeError("device 'tpu' is not available")


class SingleGroupAdapter(SpecAdapter):
    """Raises in create for more than one param group, as a port without group support does."""

    name = "single-group"

    def create(self, params, hyperparams, *, dtype, device, loss):
        if len(params) > 1:
            raise NotImplementedError("param groups are not supported")
        return super().create(params, hyperparams, dtype=dtype, device=device, loss=loss)


NOT_AN_ADAPTER = 42

SPEC = "vradam.conformance.spec_adapter:SpecAdapter"


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


def test_cli_single_case_singular():
    result = run_cli(SPEC, "--case", "defaults")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith(": 1 case conforms.")


def test_cli_unknown_tag_exits_2():
    result = run_cli(SPEC, "--tag", "nosuch")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown tag(s) nosuch" in result.stderr
    assert "Known tags: " in result.stderr
    assert "closed-loop" in result.stderr
    assert result.stdout == ""


def test_cli_tags_selecting_nothing_exit_2():
    result = run_cli(SPEC, "--tag", "gate", "--tag", "closed-loop")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no case carries every tag in gate, closed-loop" in result.stderr


def test_cli_case_and_tag_disjoint_exit_2():
    result = run_cli(SPEC, "--case", "defaults", "--tag", "closed-loop")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no case among defaults carries every tag in closed-loop" in result.stderr


def test_cli_no_case_for_dtype_exits_2():
    result = run_cli(SPEC, "--tag", "complex", "--dtype", "float16")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no selected case applies to float16" in result.stderr


def test_cli_create_fails_everywhere_exits_2():
    result = run_cli("test_conformance_cli:FailingCreateAdapter", "--tag", "gate")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "failed to set up any of the 3 selected cases" in result.stderr
    assert "RuntimeError: device 'tpu' is not available" in result.stderr


def test_cli_create_fails_message_once():
    result = run_cli("test_conformance_cli:FailingCreateAdapter", "--tag", "gate")
    assert result.stderr.count("device 'tpu'") == 1
    assert result.stdout == ""


def test_cli_spec_on_cuda_exits_2():
    result = run_cli(SPEC, "--device", "cuda", "--tag", "closed-loop")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "expected device 'cpu', received 'cuda'" in result.stderr


def test_cli_partial_setup_error_row():
    result = run_cli("test_conformance_cli:SingleGroupAdapter", "--case", "defaults",
                     "--case", "groups")
    assert result.returncode == 1, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("groups "))
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[5:8] == ["-", "-", "-"]
    assert "nan" not in row
    assert "Adapter.create raised NotImplementedError" in cells[8]
    assert "1 of 2 cases failed" in result.stdout


def test_cli_bad_target_exits_2():
    result = run_cli("numpy:float64")
    assert result.returncode == 2
    assert "expected an Adapter subclass or instance" in result.stderr


def test_cli_bad_class_named():
    result = run_cli("numpy:float64")
    assert "'numpy:float64'" in result.stderr
    assert "the class numpy.float64" in result.stderr
    assert "Subclass vradam.conformance.Adapter" in result.stderr


def test_cli_bad_instance_type_named():
    result = run_cli("test_conformance_cli:NOT_AN_ADAPTER")
    assert result.returncode == 2
    assert "'test_conformance_cli:NOT_AN_ADAPTER'" in result.stderr
    assert "42 of type builtins.int" in result.stderr
    assert "Subclass vradam.conformance.Adapter" in result.stderr


def test_cli_import_failure_exits_2():
    result = run_cli("nosuchmod:X")
    assert result.returncode == 2
    assert "'nosuchmod:X'" in result.stderr
    assert "module 'nosuchmod' could not be imported" in result.stderr
    assert "sys.path" in result.stderr


def test_cli_missing_attribute_exits_2():
    result = run_cli("numpy:nosuch")
    assert result.returncode == 2
    assert "module 'numpy' has no attribute 'nosuch'" in result.stderr


def test_cli_malformed_target_exits_2():
    result = run_cli("vradam.conformance.spec_adapter")
    assert result.returncode == 2
    assert "MODULE:ATTR" in result.stderr



def test_cli_corrupt_golden_exits_2(monkeypatch, capsys):
    from vradam.conformance import __main__ as cli
    from vradam.conformance import runner

    def corrupt(name, *args, **kwargs):
        raise RuntimeError(f"Golden file {name}.npz is corrupt.")

    monkeypatch.setattr(runner, "load_case", corrupt)
    status = cli.main([SPEC, "--case", "defaults"])
    assert status == 2
    assert "cannot read the golden files" in capsys.readouterr().err


def test_generate_requires_out_dir(capsys):
    from vradam.conformance import generate

    with pytest.raises(SystemExit) as excinfo:
        generate.main([])
    assert excinfo.value.code == 2
    assert "out_dir" in capsys.readouterr().err
