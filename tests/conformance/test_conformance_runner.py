"""The runner against the reference SpecAdapter, and how it reports failures."""

from __future__ import annotations

import numpy as np
import pytest

from vradam.conformance import (
    Adapter,
    StepReport,
    assert_conforms,
    case_names,
    run_suite,
)
from vradam.conformance.spec_adapter import SpecAdapter, SpecRun


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_spec_adapter_conforms(dtype):
    report = run_suite(SpecAdapter(), dtype=dtype)
    assert report.ok, str(report)


def test_float16_skips_complex():
    report = run_suite(SpecAdapter(), dtype="float16")
    assert "complex" in dict(report.skipped)


def test_float16_runs_low_precision_cases():
    report = run_suite(SpecAdapter(), dtype="float16")
    assert set(case_names(tags=["low-precision"])) <= set(report.cases_run)


def test_tags_select_cases():
    names = case_names(tags=["adamw-equivalent"])
    assert names == ["beta3-zero", "alpha1-zero", "adamw-groups", "adamw-quadratic"]


def test_tags_require_every_tag():
    names = case_names(tags=["adamw-equivalent", "closed-loop"])
    assert names == ["adamw-quadratic"]


def test_cases_select_by_name():
    report = run_suite(SpecAdapter(), dtype="float64", cases=["defaults"])
    assert report.cases_run == ["defaults"]


def test_unknown_case_rejected():
    with pytest.raises(ValueError, match="nonexistent"):
        run_suite(SpecAdapter(), cases=["nonexistent"])


def test_unknown_dtype_rejected():
    with pytest.raises(ValueError, match="'int8'"):
        run_suite(SpecAdapter(), dtype="int8")


def test_unsupported_dtype_rejected():
    with pytest.raises(ValueError, match="bfloat16"):
        run_suite(SpecAdapter(), dtype="bfloat16")


class ScaledRun(SpecRun):
    """Takes every step 1 % too long: a subtle bug the table must show."""

    def step(self, grads, hyperparams):
        scaled = [hp.replace(lr=hp.lr * 1.01) for hp in hyperparams]
        return super().step(grads, scaled)


class ScaledAdapter(SpecAdapter):
    name = "scaled"

    def create(self, params, hyperparams, *, dtype, device, loss):
        return ScaledRun(params, np.dtype(dtype), loss, self.step_function)


def test_failure_table_columns():
    report = run_suite(ScaledAdapter(), dtype="float64", cases=["defaults"])
    header = str(report).splitlines()[2]
    for column in ("case", "step", "tensor", "max abs err", "max rel err", "tolerance"):
        assert column in header


def test_failure_reports_first_step():
    report = run_suite(ScaledAdapter(), dtype="float64", cases=["defaults"])
    params = [f for f in report.failures if f.check == "params" and f.mode == "trajectory"]
    assert [f.step for f in params] == [1, 1, 1]


def test_failure_relative_error_near_one_percent():
    report = run_suite(ScaledAdapter(), dtype="float64", cases=["defaults"])
    eta = next(f for f in report.failures if f.check == "eta")
    assert eta.max_rel_err == pytest.approx(0.01, rel=1e-6)


def test_assert_conforms_raises_table():
    with pytest.raises(AssertionError, match="max abs err"):
        assert_conforms(ScaledAdapter(), dtype="float64", cases=["defaults"])


def test_assert_conforms_passes_spec():
    assert_conforms(SpecAdapter(), dtype="float32", tags=["closed-loop"])


class NanHidingRun(SpecRun):
    def params(self):
        return [[np.nan_to_num(p) for p in group] for group in super().params()]


class NanHidingAdapter(SpecAdapter):
    name = "nan-hiding"

    def create(self, params, hyperparams, *, dtype, device, loss):
        return NanHidingRun(params, np.dtype(dtype), loss, self.step_function)


def test_nan_positions_must_match():
    report = run_suite(NanHidingAdapter(), dtype="float64", cases=["nan-gradient"])
    assert {f.check for f in report.failures} == {"params"}
    assert all("NaN" in f.detail for f in report.failures)


class SilentRun(SpecRun):
    def step(self, grads, hyperparams):
        super().step(grads, hyperparams)
        return StepReport(None, None)


class SilentAdapter(SpecAdapter):
    name = "silent"

    def create(self, params, hyperparams, *, dtype, device, loss):
        return SilentRun(params, np.dtype(dtype), loss, self.step_function)


def test_unreported_quantities_noted():
    report = run_suite(SilentAdapter(), dtype="float64", cases=["defaults"])
    assert report.ok
    assert any("S" in note for note in report.notes)
    assert any("η" in note for note in report.notes)


class BrokenAdapter(Adapter):
    name = "broken"

    def create(self, params, hyperparams, *, dtype, device, loss):
        raise RuntimeError("no device")


def test_adapter_error_fails_case():
    report = run_suite(BrokenAdapter(), dtype="float64", cases=["defaults"])
    assert report.failures[0].check == "error"
    assert "RuntimeError: no device" in report.failures[0].detail


class WrongCountRun(SpecRun):
    def moments(self):
        return [[(t + 1, m, v) for t, m, v in group] for group in super().moments()]


class WrongCountAdapter(SpecAdapter):
    name = "wrong-count"

    def create(self, params, hyperparams, *, dtype, device, loss):
        return WrongCountRun(params, np.dtype(dtype), loss, self.step_function)


def test_step_count_compared_exactly():
    report = run_suite(WrongCountAdapter(), dtype="float64", cases=["absent-gradients"])
    assert {f.check for f in report.failures} == {"t"}


def test_assert_conforms_rejects_empty_selection():
    with pytest.raises(AssertionError, match="No case ran"):
        assert_conforms(SpecAdapter(), dtype="float64", tags=["no-such-tag"])
