r"""The VRAdam update as pure numpy functions: the single definition of the math.

The source is Vaidhyanathan, Schorling, Ares and Osborne, "A Physics-Inspired
Optimizer: Velocity Regularized Adam" (arXiv 2505.13196), Algorithm 1. Notation
follows Adam, not that paper: ``m`` is the first moment (the paper's velocity
``v``) and ``v`` is the second moment (the paper's ``m``). One step, for
the tensors that have a gradient this step:

.. math::

    m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
    v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
    S_t &= \textstyle\sum_{\text{tensors}} \lVert m_t \rVert_2^2
        \quad\text{(raw } m_t\text{, all groups)} \\
    \eta_t &= \alpha_0 / (1 + \min(\beta_3 S_t, \alpha_1))
        \quad\text{(per group)} \\
    \hat m_t &= m_t / (1 - \beta_1^t), \quad \hat v_t = v_t / (1 - \beta_2^t) \\
    \theta_t &= \theta_{t-1} (1 - \eta_t \lambda)
        - \eta_t \hat m_t / (\sqrt{\hat v_t} + \epsilon)

Decisions that the formulas leave open, fixed here for every backend:

* S is one scalar over every tensor updated this step, across all parameter
  groups. The gate is global by design: the stability argument behind it bounds
  the whole iterate's speed, and per-group or per-coordinate gates lose that bound.
* S is accumulated in float64 here, and in float32 or wider in every adapter,
  never in the parameter's dtype. ‖m‖² of a float16 model overflows 65504 easily,
  and a bfloat16 running sum stops growing once each term is under 1/256 of it.
* ``min`` is IEEE ``minimum``: a NaN in S propagates into η and so into every
  tensor, and S = +inf saturates the gate at α1. Because 0·inf is NaN, β3 = 0
  with an infinite S also gives NaN.
* A tensor whose gradient is ``None`` this step is not updated, not counted in S,
  and its step count t does not advance.
* ``maximize`` negates the gradient before anything else.
* A complex tensor is optimized as its real view (real and imaginary parts are two
  coordinates): v is per component and ‖m‖² = Σ|m|².

With β3 = 0 or α1 = 0 and finite gradients, the step is exactly AdamW with
decoupled weight decay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from vradam.hyperparams import Hyperparams

__all__ = [
    "StepInfo",
    "TensorState",
    "apply_update",
    "as_real",
    "effective_lr",
    "from_real",
    "init_state",
    "step",
    "update_moments",
    "velocity_sq_norm",
]


class TensorState(NamedTuple):
    """Optimizer state of one tensor, stored in the tensor's real view."""

    step: int  # t, the number of updates this tensor has received
    exp_avg: np.ndarray  # m, the first moment
    exp_avg_sq: np.ndarray  # v, the second moment


class StepInfo(NamedTuple):
    """What a step computed besides the new parameters, for logging."""

    velocity_sq_norm: float  # S = Σ ‖m‖² over the tensors updated this step
    effective_lrs: tuple[float, ...]  # η of each parameter group, in group order


def as_real(x: np.ndarray) -> np.ndarray:
    """Return ``x`` itself if real, else its real view with a trailing axis of 2."""
    x = np.asarray(x)
    if not np.iscomplexobj(x):
        return x
    return np.ascontiguousarray(x).view(x.real.dtype).reshape(*x.shape, 2)


def from_real(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Invert :func:`as_real` for a tensor shaped and typed like ``like``."""
    like = np.asarray(like)
    if not np.iscomplexobj(like):
        return x
    return np.ascontiguousarray(x).view(like.dtype).reshape(like.shape)


def init_state(param: np.ndarray) -> TensorState:
    """Return the zero state of one tensor: t = 0 and zero moments in its real view."""
    param = np.asarray(param)
    if not (np.issubdtype(param.dtype, np.floating) or np.iscomplexobj(param)):
        raise TypeError(
            f"Invalid parameter dtype {param.dtype}: expected a floating-point or complex array."
        )
    real = as_real(param)
    return TensorState(step=0, exp_avg=np.zeros_like(real), exp_avg_sq=np.zeros_like(real))


def update_moments(grad: np.ndarray, state: TensorState, hp: Hyperparams) -> TensorState:
    """Step 1: advance t and the moments m and v of one tensor by its gradient."""
    g = as_real(grad).astype(state.exp_avg.dtype, copy=False)
    if hp.maximize:
        g = -g

    exp_avg = hp.beta1 * state.exp_avg + (1 - hp.beta1) * g
    exp_avg_sq = hp.beta2 * state.exp_avg_sq + (1 - hp.beta2) * (g * g)
    return TensorState(step=state.step + 1, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)


def velocity_sq_norm(exp_avgs: Sequence[np.ndarray]) -> float:
    """Step 2: S = Σ ‖m‖², the squared L2 norm of every raw first moment, in float64."""
    total = np.float64(0.0)
    for exp_avg in exp_avgs:
        m = exp_avg.astype(np.float64)
        total += np.sum(m * m)
    return float(total)


def effective_lr(velocity_sq_norm: float, hp: Hyperparams) -> float:
    """Step 3: η = α0 / (1 + min(β3·S, α1)), one group's gated step size."""
    gate = np.minimum(hp.beta3 * np.float64(velocity_sq_norm), hp.alpha1)
    return float(hp.lr / (1.0 + gate))


def apply_update(
    param: np.ndarray, state: TensorState, lr: float, hp: Hyperparams
) -> np.ndarray:
    """Step 4: decay θ by η·λ and move it by η·m̂/(√v̂ + ε), with ``lr`` = η."""
    theta = as_real(param)
    bias_correction1 = 1 - hp.beta1**state.step
    bias_correction2 = 1 - hp.beta2**state.step
    exp_avg_hat = state.exp_avg / bias_correction1
    exp_avg_sq_hat = state.exp_avg_sq / bias_correction2

    theta = theta * (1 - lr * hp.weight_decay)
    theta = theta - lr * exp_avg_hat / (np.sqrt(exp_avg_sq_hat) + hp.eps)
    return from_real(theta.astype(as_real(param).dtype, copy=False), param)


def step(
    params: Sequence[Sequence[np.ndarray]],
    grads: Sequence[Sequence[np.ndarray | None]],
    states: Sequence[Sequence[TensorState]],
    hyperparams: Sequence[Hyperparams],
) -> tuple[list[list[np.ndarray]], list[list[TensorState]], StepInfo]:
    """Take one VRAdam step over parameter groups; inputs are not modified.

    ``params``, ``grads`` and ``states`` are nested the same way: one list per
    parameter group, one entry per tensor. ``hyperparams`` has one entry per group.
    A ``None`` gradient leaves its tensor and state as they were.

    Returns the new parameters, the new states and the step's S and η per group.
    """
    if not (len(params) == len(grads) == len(states) == len(hyperparams)):
        raise ValueError(
            "params, grads, states and hyperparams must have one entry per group, "
            f"received lengths {len(params)}, {len(grads)}, {len(states)}, {len(hyperparams)}."
        )

    _check_step_inputs(params, grads, states, hyperparams)

    new_states = []
    for group_grads, group_states, hp in zip(grads, states, hyperparams, strict=True):
        new_states.append([
            state if grad is None else update_moments(grad, state, hp)
            for grad, state in zip(group_grads, group_states, strict=True)
        ])

    updated_moments = [
        state.exp_avg
        for group_grads, group_states in zip(grads, new_states, strict=True)
        for grad, state in zip(group_grads, group_states, strict=True)
        if grad is not None
    ]
    sq_norm = velocity_sq_norm(updated_moments)

    lrs = tuple(effective_lr(sq_norm, hp) for hp in hyperparams)

    new_params = []
    for group_params, group_grads, group_states, hp, lr in zip(
        params, grads, new_states, hyperparams, lrs, strict=True
    ):
        new_params.append([
            param if grad is None else apply_update(param, state, lr, hp)
            for param, grad, state in zip(group_params, group_grads, group_states, strict=True)
        ])

    return new_params, new_states, StepInfo(velocity_sq_norm=sq_norm, effective_lrs=lrs)


def _check_step_inputs(params, grads, states, hyperparams) -> None:
    """Raise unless the nested inputs of :func:`step` line up, naming what does not."""
    for group, (group_params, group_grads, group_states, hp) in enumerate(
        zip(params, grads, states, hyperparams, strict=True)
    ):
        if not isinstance(hp, Hyperparams):
            raise TypeError(
                f"Invalid hyperparams[{group}]: expected vradam.Hyperparams, "
                f"received {type(hp).__name__}."
            )
        if not (len(group_params) == len(group_grads) == len(group_states)):
            raise ValueError(
                f"Group {group} has {len(group_params)} params, {len(group_grads)} grads "
                f"and {len(group_states)} states; they must have one entry per tensor."
            )
        for index, (param, grad) in enumerate(zip(group_params, group_grads, strict=True)):
            if grad is None:
                continue
            param, grad = np.asarray(param), np.asarray(grad)
            if grad.shape != param.shape:
                raise ValueError(
                    f"Invalid grads[{group}][{index}]: expected shape {param.shape} like its "
                    f"parameter, received shape {grad.shape}."
                )
            if np.iscomplexobj(grad) and not np.iscomplexobj(param):
                raise TypeError(
                    f"Invalid grads[{group}][{index}]: a complex gradient for a real parameter."
                )
