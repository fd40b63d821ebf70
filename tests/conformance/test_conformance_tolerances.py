"""The derived tolerances are tight enough to catch low-precision accumulation of S."""

from __future__ import annotations

import numpy as np
import pytest

from vradam.conformance import tolerances
from vradam.conformance.runner import load_case


def to_bfloat16(x):
    """Round float32 values to the nearest bfloat16 (ties to even), kept in float32."""
    bits = np.asarray(x, dtype=np.float32).reshape(-1).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    rounded &= np.uint32(0xFFFF0000)
    return rounded.view(np.float32).reshape(np.shape(x))


def single_step_bounds(golden, start, dtype):
    u = tolerances.UNIT_ROUNDOFF[dtype]
    state = golden.state(start)
    bounds = tolerances.rounding_bounds(state["theta"], state["exp_avg"], state["exp_avg_sq"], u)
    with np.errstate(all="ignore"):
        return tolerances.propagate(
            bounds, state, golden.state(start + 1), golden.step_inputs(start + 1),
            u=u, u_acc=tolerances.accumulator_roundoff(dtype),
        )


def bfloat16_running_sum(golden, step):
    # What an implementation gets when it adds each tensor's ‖m‖² into a bfloat16 total.
    exp_avg = golden.state(step)["exp_avg"].astype(np.float32)
    total = np.float32(0.0)
    for index in range(len(golden.layout.tensors)):
        m = exp_avg[golden.layout.tensor_slice(index)]
        total = to_bfloat16(total + to_bfloat16(np.sum(m * m)))
    return float(total)


@pytest.mark.parametrize("start", range(5))
def test_bfloat16_sum_exceeds_single_step_tolerance(start):
    golden = load_case("bfloat16-small-terms")
    bounds = single_step_bounds(golden, start, "bfloat16")
    exact = golden.state(start + 1)["velocity_sq_norm"]
    error = abs(bfloat16_running_sum(golden, start + 1) - exact)
    assert error > tolerances.SLACK * bounds.velocity_sq_norm


@pytest.mark.parametrize("start", range(5))
def test_bfloat16_sum_moves_eta_beyond_tolerance(start):
    golden = load_case("bfloat16-small-terms")
    hp = golden.hyperparams(start + 1)[0]
    bounds = single_step_bounds(golden, start, "bfloat16")
    exact = golden.state(start + 1)["effective_lrs"][0]
    wrong = hp.lr / (1 + min(hp.beta3 * bfloat16_running_sum(golden, start + 1), hp.alpha1))
    assert abs(wrong - exact) > tolerances.SLACK * bounds.effective_lrs[0]


def test_float16_tolerance_finite_where_float16_sum_overflows():
    golden = load_case("float16-norm-overflow")
    bounds = single_step_bounds(golden, 0, "float16")
    assert golden.state(1)["velocity_sq_norm"] > np.finfo(np.float16).max
    assert np.isfinite(bounds.velocity_sq_norm)


def test_float32_trajectory_tolerance_meaningful():
    # After 600 free-running float32 steps the bound is still far below the parameters' size.
    golden = load_case("long-trajectory")
    u = tolerances.UNIT_ROUNDOFF["float32"]
    zeros = np.zeros(golden.layout.size)
    bounds = tolerances.rounding_bounds(golden.state(0)["theta"], zeros, zeros, u)
    for step in range(1, golden.steps + 1):
        bounds = tolerances.propagate(
            bounds, golden.state(step - 1), golden.state(step), golden.step_inputs(step),
            u=u, u_acc=tolerances.accumulator_roundoff("float32"),
        ).state
    scale = np.max(np.abs(golden.state(golden.steps)["theta"]))
    assert tolerances.SLACK * np.max(bounds.theta) < 1e-3 * scale


def test_tolerance_grows_with_roundoff():
    golden = load_case("defaults")
    narrow = single_step_bounds(golden, 3, "bfloat16")
    wide = single_step_bounds(golden, 3, "float32")
    assert np.all(narrow.state.theta > wide.state.theta)


def test_float64_tolerance_accumulates_in_float64():
    assert tolerances.accumulator_roundoff("float64") == 2.0**-53
    assert tolerances.accumulator_roundoff("bfloat16") == 2.0**-24

