r"""Tolerances derived from the unit roundoff of a dtype by forward error analysis.

An implementation running in a dtype with unit roundoff ``u`` rounds every
stored value and every operation with a relative error of at most ``u``. The
bounds below follow each quantity of one step through those roundings, to first
order, elementwise, using the golden (exact) values as magnitudes. Constants
count roundings and are fixed by reading the update, never fitted to a result:

* ``m' = β1·m + (1−β1)·g``: the stored m and g (2), the two products, the sum,
  and the rounding of m' when it is stored: 6 roundings of each term.
* ``v' = β2·v + (1−β2)·g²``: as m, plus the square, plus one for ``g·g``
  computed from an already-rounded g: 8.
* ``S = Σ m'²`` over the stored m': each m' carries its own bound ``e_m``, so
  ``e_S = Σ 2|m'|·e_m + e_m²`` plus ``n·u_acc·S`` for a sequential sum of ``n``
  terms in an accumulator with unit roundoff ``u_acc``. Because the accumulator
  must be float32 or wider, ``u_acc`` is float32's for float32 and narrower
  dtypes, and float64's for float64.
* ``η = α0/(1 + min(β3·S, α1))``: ``min`` is 1-Lipschitz and ``d η/d gate =
  −η/(1+gate)``, so ``e_η = η·(β3·e_S/(1 + gate) + 4·u_acc)``, and ``e_η = 0`` from
  the gate when β3·(S − e_S) >= α1 (saturated beyond doubt, or S = inf).
* ``r = m̂/(√v̂ + ε)``: the error of m̂ over the denominator, the error of √v̂
  (at most ``e_v/(2√v)`` and at most ``√e_v``) times ``|m̂|/den²``, and 6 roundings
  for the bias corrections, the square root, the sum and the quotient.
* ``θ' = θ·(1 − η·λ) − η·r``: the carried error of θ (multiplied by the decay
  factor, at most 1), 3 roundings of ``|θ|`` for the decay, ``λ·e_η·|θ|``,
  ``e_η·|r|``, ``η·e_r``, 2 roundings of ``η·|r|`` and the stored θ' itself.

In a replay case m, v, S and η depend only on the recorded gradients, never on
θ. So the error of θ after k steps is the sum of the per-step errors, and it
grows at most linearly in k, as :func:`propagate` accumulates it. The moments' errors
are contracted by β1 and β2 at every step, so they stay within ``1/(1 − β)``
times a one-step error. In a closed-loop case the gradient depends on θ, and the
bound is multiplied by the case's measured sensitivity (how much the spec's own
float64 trajectory amplifies a small perturbation of θ0) and the gradient's own
evaluation error (:func:`vradam.conformance.losses.gradient_error_bound`) enters
the moments.

A single-step check starts from the golden state rounded to the dtype, that is
``e_θ = u·|θ|``, ``e_m = u·|m|``, ``e_v = u·v``, and applies one :func:`propagate`.

Every comparison allows :data:`SLACK` times the bound, which covers the
second-order terms that first-order bounds drop (they are of relative size
``u``, and ``u <= 2^-8``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "SLACK",
    "UNIT_ROUNDOFF",
    "Bounds",
    "StepBounds",
    "accumulator_roundoff",
    "describe",
    "propagate",
    "rounding_bounds",
]

#: Unit roundoff u = 2^-p of each dtype, with p the significand precision in bits.
UNIT_ROUNDOFF = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "bfloat16": 2.0**-8,
    "float16": 2.0**-11,
}

MOMENT_OPS = 6
SQ_MOMENT_OPS = 8
LR_OPS = 4
RATIO_OPS = 6
DECAY_OPS = 3
UPDATE_OPS = 2
SLACK = 2.0


def accumulator_roundoff(dtype: str) -> float:
    """Return the unit roundoff of the S accumulator: float32 or the dtype, whichever is wider."""
    return min(UNIT_ROUNDOFF[dtype], UNIT_ROUNDOFF["float32"])


class Bounds(NamedTuple):
    """Elementwise error bounds of θ, m and v in the flat real layout."""

    theta: np.ndarray
    exp_avg: np.ndarray
    exp_avg_sq: np.ndarray


class StepBounds(NamedTuple):
    """Bounds after one step: the carried elementwise bounds, and those of S and each η."""

    state: Bounds
    velocity_sq_norm: float
    effective_lrs: np.ndarray


def rounding_bounds(theta: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
                    u: float) -> Bounds:
    """Return the bounds of a golden state just cast to a dtype with unit roundoff ``u``."""
    return Bounds(u * np.abs(theta), u * np.abs(exp_avg), u * np.abs(exp_avg_sq))


def propagate(
    previous: Bounds,
    before: dict[str, np.ndarray],
    after: dict[str, np.ndarray],
    hyper: dict[str, np.ndarray],
    *,
    u: float,
    u_acc: float,
    grad_error: np.ndarray | float = 0.0,
) -> StepBounds:
    """Carry the bounds of one step, elementwise in the flat real layout.

    ``before`` and ``after`` contain the golden ``theta``, ``exp_avg`` and
    ``exp_avg_sq`` around the step. ``after`` also contains ``step_count`` (t per
    coordinate), ``velocity_sq_norm`` and ``effective_lrs`` (η per group).
    ``hyper`` contains per-coordinate ``beta1``, ``beta2``, ``eps``,
    ``weight_decay``, ``grad`` (only its magnitude matters, so the sign that
    ``maximize`` flips does not), ``present`` (bool) and ``group`` (group index),
    and per-group ``beta3`` and ``alpha1``. ``grad_error`` bounds the gradient's
    own evaluation error in closed-loop cases.
    """
    beta1, beta2 = hyper["beta1"], hyper["beta2"]
    grad, present = hyper["grad"], hyper["present"]
    abs_grad = np.abs(grad)

    exp_avg_err = (
        beta1 * previous.exp_avg
        + (1 - beta1) * grad_error
        + MOMENT_OPS * u * (beta1 * np.abs(before["exp_avg"]) + (1 - beta1) * abs_grad)
    )
    exp_avg_sq_err = (
        beta2 * previous.exp_avg_sq
        + (1 - beta2) * 2 * abs_grad * grad_error
        + SQ_MOMENT_OPS * u * (beta2 * np.abs(before["exp_avg_sq"]) + (1 - beta2) * grad**2)
    )

    sq_norm = float(after["velocity_sq_norm"])
    m_new = np.abs(after["exp_avg"])
    counted = present & np.isfinite(m_new)
    sq_norm_err = float(np.sum((2 * m_new * exp_avg_err + exp_avg_err**2)[counted]))
    sq_norm_err += int(np.count_nonzero(present)) * u_acc * abs(sq_norm)

    lrs = np.asarray(after["effective_lrs"], dtype=np.float64)
    lr_errs = np.empty_like(lrs)
    for index, (beta3, alpha1) in enumerate(zip(hyper["beta3"], hyper["alpha1"], strict=True)):
        saturated = np.isinf(sq_norm) or beta3 * (sq_norm - sq_norm_err) >= alpha1
        gate_err = 0.0 if saturated else beta3 * sq_norm_err
        gate = min(beta3 * sq_norm, alpha1)
        lr_errs[index] = lrs[index] * (gate_err / (1.0 + gate) + LR_OPS * u_acc)

    group = hyper["group"]
    lr, lr_err = lrs[group], lr_errs[group]
    step = after["step_count"]
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    v_new = np.abs(after["exp_avg_sq"])
    with np.errstate(divide="ignore", invalid="ignore"):
        exp_avg_hat = m_new / bias_correction1
        denom = np.sqrt(v_new / bias_correction2) + hyper["eps"]
        ratio = exp_avg_hat / denom
        sqrt_err = np.where(
            v_new > 0,
            np.minimum(exp_avg_sq_err / (2 * np.sqrt(v_new)), np.sqrt(exp_avg_sq_err)),
            np.sqrt(exp_avg_sq_err),
        )
        ratio_err = (
            exp_avg_err / (bias_correction1 * denom)
            + exp_avg_hat * (sqrt_err / np.sqrt(bias_correction2)) / denom**2
            + RATIO_OPS * u * ratio
        )

    decay = hyper["weight_decay"]
    theta_before = np.abs(before["theta"])
    theta_err = (
        (1 - lr * decay) * previous.theta
        + u * np.abs(after["theta"])
        + DECAY_OPS * u * theta_before
        + decay * lr_err * theta_before
        + lr_err * ratio
        + lr * ratio_err
        + UPDATE_OPS * u * lr * ratio
    )

    state = Bounds(
        np.where(present, theta_err, previous.theta),
        np.where(present, exp_avg_err, previous.exp_avg),
        np.where(present, exp_avg_sq_err, previous.exp_avg_sq),
    )
    return StepBounds(state, sq_norm_err, lr_errs)


def describe() -> dict[str, object]:
    """Return the constants of the tolerance model, for the goldens' manifest."""
    return {
        "unit_roundoff": dict(UNIT_ROUNDOFF),
        "accumulator_unit_roundoff": {d: accumulator_roundoff(d) for d in UNIT_ROUNDOFF},
        "rounding_counts": {
            "exp_avg": MOMENT_OPS,
            "exp_avg_sq": SQ_MOMENT_OPS,
            "effective_lr": LR_OPS,
            "ratio": RATIO_OPS,
            "decay": DECAY_OPS,
            "update": UPDATE_OPS,
        },
        "slack": SLACK,
    }
