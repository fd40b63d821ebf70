r"""Float64 numpy references of the three analytic losses used by closed-loop cases.

Every framework implements the same three losses with its own autodiff. Each
takes ``x``, the concatenation of every parameter tensor flattened in row-major
order, group by group and tensor by tensor (closed-loop cases use real tensors
only), and numpy ``data``:

``"quadratic"``
    ``data = {"hessian": (n, n) symmetric, "center": (n,)}``;
    :math:`f(x) = \tfrac12 (x - c)^\top H (x - c)`.
``"rosenbrock"``
    ``data = {"a": 0-d, "b": 0-d}``;
    :math:`f(x) = \sum_{i=0}^{n-2} b (x_{i+1} - x_i^2)^2 + (a - x_i)^2`.
``"logistic"``
    ``data = {"features": (N, d), "labels": (N,) of 0.0/1.0}``; ``x`` is ``d``
    weights followed by one bias; :math:`z = F w + b` and
    :math:`f = \operatorname{mean}(\operatorname{softplus}(z) - y z)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["LOSS_NAMES", "gradient", "gradient_error_bound", "value"]

LOSS_NAMES = ("quadratic", "rosenbrock", "logistic")


def _check_name(name: str) -> None:
    if name not in LOSS_NAMES:
        raise ValueError(f"Unknown loss name: expected one of {LOSS_NAMES}, received {name!r}.")


def value(name: str, data: Mapping[str, np.ndarray], x: np.ndarray) -> float:
    """Return the loss ``name`` at the flat parameter vector ``x``, in float64."""
    _check_name(name)
    x = np.asarray(x, dtype=np.float64)
    if name == "quadratic":
        d = x - data["center"]
        return float(0.5 * d @ data["hessian"] @ d)
    if name == "rosenbrock":
        a, b = float(data["a"]), float(data["b"])
        return float(np.sum(b * (x[1:] - x[:-1] ** 2) ** 2 + (a - x[:-1]) ** 2))
    features, labels = data["features"], data["labels"]
    z = features @ x[:-1] + x[-1]
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))


def gradient(name: str, data: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Return the analytic gradient of the loss ``name`` at ``x``, in float64.

    The goldens are computed with this function, so it uses only IEEE-exact
    elementwise operations, numpy's own summation, and ``math.exp``: no BLAS
    matrix products and no SIMD transcendental functions, whose last bits vary
    with the BLAS build and the CPU.
    """
    _check_name(name)
    x = np.asarray(x, dtype=np.float64)
    if name == "quadratic":
        hessian = data["hessian"]
        # The gradient of ½ dᵀHd is ½(H + Hᵀ)d, which is Hd for the symmetric H we store.
        return np.sum(0.5 * (hessian + hessian.T) * (x - data["center"]), axis=1)
    if name == "rosenbrock":
        a, b = float(data["a"]), float(data["b"])
        grad = np.zeros_like(x)
        residual = x[1:] - x[:-1] ** 2
        grad[:-1] += -4.0 * b * x[:-1] * residual - 2.0 * (a - x[:-1])
        grad[1:] += 2.0 * b * residual
        return grad
    features, labels = data["features"], data["labels"]
    z = np.sum(features * x[:-1], axis=1) + x[-1]
    dz = (_sigmoid(z) - labels) / len(labels)
    return np.concatenate([np.sum(features * dz[:, None], axis=0), [np.sum(dz)]])


def gradient_error_bound(
    name: str, data: Mapping[str, np.ndarray], x: np.ndarray, unit_roundoff: float
) -> np.ndarray:
    """Bound, per coordinate, the rounding error of the gradient evaluated in a lower precision.

    The bound is the standard first-order one for sums and products. If evaluating
    the gradient takes at most ``n`` roundings along any path, the computed value
    differs from the exact one by at most ``n·u`` times the same formula with
    every term replaced by its absolute value.
    """
    _check_name(name)
    x = np.abs(np.asarray(x, dtype=np.float64))
    u = unit_roundoff
    if name == "quadratic":
        hessian = np.abs(data["hessian"])
        n = len(x)
        # x − c (one rounding), then a dot product of length n (n roundings).
        return (n + 2) * u * hessian @ (x + np.abs(data["center"]))
    if name == "rosenbrock":
        a, b = abs(float(data["a"])), abs(float(data["b"]))
        bound = np.zeros_like(x)
        residual = x[1:] + x[:-1] ** 2
        bound[:-1] += 4.0 * b * x[:-1] * residual + 2.0 * (a + x[:-1])
        bound[1:] += 2.0 * b * residual
        # At most 6 roundings along any path: square, difference, two products, sum, sum.
        return 6 * u * bound
    features, labels = np.abs(data["features"]), data["labels"]
    count, dim = features.shape
    signed = np.asarray(x, dtype=np.float64)
    z_scale = features @ x[:-1] + x[-1]
    # z has error <= (d+2)·u·z_scale; the sigmoid is 1/4-Lipschitz, so the residual
    # σ(z) − y carries (d+2)·u·z_scale/4 plus a few roundings of its own.
    residual = np.abs(_sigmoid(data["features"] @ signed[:-1] + signed[-1])) + np.abs(labels)
    residual = residual + 0.25 * (dim + 2) * z_scale
    ops = count + dim + 6
    return ops * u * np.concatenate([features.T @ residual, [np.sum(residual)]]) / count


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Each branch exponentiates a non-positive number, so nothing overflows.
    values = [
        1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))
        for v in np.asarray(z, dtype=np.float64).tolist()
    ]
    return np.array(values, dtype=np.float64).reshape(np.shape(z))
