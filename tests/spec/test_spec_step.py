"""Unit tests of vradam.spec: one step by hand, and each decision the spec fixes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vradam import Hyperparams, effective_lr, init_state, spec, step, velocity_sq_norm


def run(params, grads_per_step, hyperparams):
    states = [[init_state(p) for p in group] for group in params]
    infos = []
    for grads in grads_per_step:
        with np.errstate(all="ignore"):
            params, states, info = step(params, grads, states, hyperparams)
        infos.append(info)
    return params, states, infos


def test_first_step_by_hand():
    hp = Hyperparams(lr=0.1, beta3=2.0, weight_decay=0.01)
    theta0, g = np.array([1.0, -2.0]), np.array([0.5, 1.0])
    (([theta],), ([state],), [info]) = run([[theta0]], [[[g]]], [hp])
    m = 0.1 * g
    sq_norm = float(np.sum(m**2))
    lr = 0.1 / (1 + min(2.0 * sq_norm, 10.0))
    # At t = 1 bias correction gives m̂ = g and v̂ = g², so the ratio is g/(|g| + ε).
    ratio = g / (np.abs(g) + 1e-8)
    expected = theta0 * (1 - lr * 0.01) - lr * ratio
    np.testing.assert_allclose(theta, expected, rtol=1e-15)
    assert info.velocity_sq_norm == pytest.approx(sq_norm, rel=1e-15)
    assert info.effective_lrs == (pytest.approx(lr, rel=1e-15),)
    assert state.step == 1


def test_inputs_not_modified():
    params = [[np.array([1.0, 2.0])]]
    grads = [[np.array([0.3, -0.1])]]
    states = [[init_state(params[0][0])]]
    step(params, grads, states, [Hyperparams()])
    np.testing.assert_array_equal(params[0][0], [1.0, 2.0])
    np.testing.assert_array_equal(states[0][0].exp_avg, [0.0, 0.0])


def test_group_count_mismatch_rejected():
    with pytest.raises(ValueError, match="one entry per group"):
        step([[np.ones(2)]], [[np.ones(2)]], [[init_state(np.ones(2))]], [])


def test_tensor_count_mismatch_rejected():
    with pytest.raises(ValueError):
        step([[np.ones(2)]], [[np.ones(2), np.ones(2)]], [[init_state(np.ones(2))]],
             [Hyperparams()])


def test_norm_uses_raw_first_moment():
    _, ([state],), [info] = run([[np.zeros(3)]], [[[np.array([1.0, 2.0, 3.0])]]], [Hyperparams()])
    assert info.velocity_sq_norm == float(np.sum(state.exp_avg**2))


def test_velocity_sq_norm_accumulates_float64():
    m = np.full(10_000, 0.01, dtype=np.float16)
    assert velocity_sq_norm([m]) == pytest.approx(10_000 * float(m[0]) ** 2, rel=1e-12)


def test_effective_lr_saturates_at_inf():
    hp = Hyperparams(lr=1.0, alpha1=4.0)
    assert effective_lr(math.inf, hp) == 0.2


def test_effective_lr_propagates_nan():
    assert math.isnan(effective_lr(math.nan, Hyperparams()))


def test_effective_lr_beta3_zero_inf_norm_nan():
    # 0·inf is NaN, so β3 = 0 does not shield the step from an infinite S.
    with np.errstate(invalid="ignore"):
        assert math.isnan(effective_lr(math.inf, Hyperparams(beta3=0.0)))


def test_absent_gradient_keeps_tensor():
    params = [[np.array([1.0]), np.array([2.0])]]
    (new,), (states,), [info] = run(params, [[[np.array([0.5]), None]]], [Hyperparams()])
    assert new[1] is params[0][1]
    assert states[1].step == 0
    assert info.velocity_sq_norm == pytest.approx(0.05**2)


def test_all_gradients_absent_gives_base_lr():
    _, _, [info] = run([[np.ones(2)]], [[[None]]], [Hyperparams(lr=0.3)])
    assert info.velocity_sq_norm == 0.0
    assert info.effective_lrs == (0.3,)


def test_maximize_negates_gradient():
    g = np.array([0.5, -1.5])
    (up,), _, _ = run([[np.zeros(2)]], [[[g]]], [Hyperparams(maximize=True)])
    (down,), _, _ = run([[np.zeros(2)]], [[[-g]]], [Hyperparams()])
    np.testing.assert_array_equal(up[0], down[0])


def test_complex_real_view_roundtrip():
    z = np.array([[1 + 2j, 3 - 4j]])
    real = spec.as_real(z)
    assert real.shape == (1, 2, 2)
    np.testing.assert_array_equal(spec.from_real(real, z), z)


def test_complex_state_in_real_view():
    state = init_state(np.zeros(3, dtype=np.complex128))
    assert state.exp_avg.shape == (3, 2)
    assert state.exp_avg.dtype == np.float64


def test_float32_dtype_preserved():
    (new,), (states,), _ = run([[np.ones(3, dtype=np.float32)]],
                               [[[np.ones(3, dtype=np.float32)]]], [Hyperparams()])
    assert new[0].dtype == np.float32
    assert states[0].exp_avg.dtype == np.float32


def test_zero_size_tensor():
    (new,), _, [info] = run([[np.zeros((0, 3)), np.ones(2)]],
                            [[[np.zeros((0, 3)), np.ones(2)]]], [Hyperparams()])
    assert new[0].shape == (0, 3)
    assert info.velocity_sq_norm == pytest.approx(2 * 0.1**2)


def test_zero_dim_tensor():
    (new,), _, _ = run([[np.array(1.0)]], [[[np.array(0.5)]]], [Hyperparams()])
    assert new[0].shape == ()
    assert new[0] < 1.0


def test_step_rejects_grad_shape_mismatch():
    param = np.ones(3)
    with pytest.raises(ValueError, match=r"grads\[0\]\[0\].*\(3,\).*\(3, 1\)"):
        step([[param]], [[np.ones((3, 1))]], [[init_state(param)]], [Hyperparams()])


def test_step_rejects_complex_grad_for_real():
    param = np.ones(3)
    with pytest.raises(TypeError, match="complex gradient"):
        step([[param]], [[np.ones(3) * 1j]], [[init_state(param)]], [Hyperparams()])


def test_step_rejects_group_length_mismatch():
    param = np.ones(3)
    with pytest.raises(ValueError, match="Group 0 has 1 params, 2 grads"):
        step([[param]], [[np.ones(3), np.ones(3)]], [[init_state(param)]], [Hyperparams()])


def test_step_rejects_dict_hyperparams():
    param = np.ones(3)
    with pytest.raises(TypeError, match=r"hyperparams\[0\].*dict"):
        step([[param]], [[np.ones(3)]], [[init_state(param)]], [{"lr": 0.1}])


def test_init_state_rejects_integer_param():
    with pytest.raises(TypeError, match="int64"):
        init_state(np.array([1, 2, 3]))
