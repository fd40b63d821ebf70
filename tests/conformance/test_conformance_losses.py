"""The float64 loss references: gradients against finite differences, error bounds hold."""

from __future__ import annotations

import numpy as np
import pytest

from vradam.conformance import losses
from vradam.conformance.runner import load_case

RNG = np.random.default_rng(0)
SAMPLES = {
    "quadratic": (
        {"hessian": np.cov(RNG.standard_normal((5, 8))), "center": RNG.standard_normal(5)},
        5,
    ),
    "rosenbrock": ({"a": np.float64(1.0), "b": np.float64(100.0)}, 5),
    "logistic": (
        {"features": RNG.standard_normal((20, 4)), "labels": (RNG.random(20) < 0.5) * 1.0},
        5,
    ),
}


def central_difference(name, data, x, h=1e-6):
    grad = np.zeros_like(x)
    for i in range(len(x)):
        step = np.zeros_like(x)
        step[i] = h
        difference = losses.value(name, data, x + step) - losses.value(name, data, x - step)
        grad[i] = difference / (2 * h)
    return grad


@pytest.mark.parametrize("name", losses.LOSS_NAMES)
def test_gradient_matches_finite_differences(name):
    data, size = SAMPLES[name]
    x = np.random.default_rng(1).standard_normal(size)
    expected = central_difference(name, data, x)
    np.testing.assert_allclose(losses.gradient(name, data, x), expected, rtol=1e-6, atol=1e-6)


def test_quadratic_value_at_center_zero():
    data, _ = SAMPLES["quadratic"]
    assert losses.value("quadratic", data, data["center"]) == 0.0


def test_rosenbrock_minimum_at_a():
    data, size = SAMPLES["rosenbrock"]
    assert losses.value("rosenbrock", data, np.ones(size)) == 0.0
    np.testing.assert_array_equal(losses.gradient("rosenbrock", data, np.ones(size)), 0.0)


def test_logistic_value_at_zero_log2():
    data, size = SAMPLES["logistic"]
    assert losses.value("logistic", data, np.zeros(size)) == pytest.approx(np.log(2.0))


def test_logistic_stable_for_large_logits():
    data, size = SAMPLES["logistic"]
    x = np.full(size, 1e3)
    assert np.isfinite(losses.value("logistic", data, x))
    assert np.all(np.isfinite(losses.gradient("logistic", data, x)))


def test_unknown_loss_rejected():
    with pytest.raises(ValueError, match="'hinge'"):
        losses.value("hinge", {}, np.zeros(2))


@pytest.mark.parametrize("name", ["quadratic", "rosenbrock", "logistic"])
def test_gradient_error_bound_covers_float32(name):
    golden = load_case(name)
    loss = golden.loss()
    u = 2.0**-24
    for step in (0, golden.steps // 2, golden.steps):
        x = golden.state(step)["theta"]
        data32 = {k: np.asarray(v, dtype=np.float32) for k, v in loss.data.items()}
        computed = _gradient_float32(name, data32, x.astype(np.float32))
        exact = losses.gradient(name, loss.data, x.astype(np.float32).astype(np.float64))
        bound = losses.gradient_error_bound(name, loss.data, x, u)
        assert np.all(np.abs(computed - exact) <= bound + 1e-30), step


def _gradient_float32(name, data, x):
    # The same formulas as losses.gradient, evaluated entirely in float32.
    if name == "quadratic":
        return data["hessian"] @ (x - data["center"])
    if name == "rosenbrock":
        a, b = data["a"], data["b"]
        grad = np.zeros_like(x)
        residual = x[1:] - x[:-1] ** 2
        grad[:-1] += np.float32(-4.0) * b * x[:-1] * residual - np.float32(2.0) * (a - x[:-1])
        grad[1:] += np.float32(2.0) * b * residual
        return grad
    z = data["features"] @ x[:-1] + x[-1]
    dz = (np.float32(1.0) / (np.float32(1.0) + np.exp(-z)) - data["labels"]) / np.float32(len(z))
    return np.concatenate([data["features"].T @ dz, [np.sum(dz)]]).astype(np.float32)
