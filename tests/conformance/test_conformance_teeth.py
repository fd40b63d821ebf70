"""The suite must fail deliberately wrong variants of VRAdam, each on a named case.

Every variant is assembled from the spec's own pieces with one piece swapped, so
a failure can only come from that piece.
"""

from __future__ import annotations

import numpy as np
import pytest

from vradam import spec
from vradam.conformance import run_suite
from vradam.conformance.spec_adapter import SpecAdapter


def make_step(*, sq_norms=None, effective_lr=spec.effective_lr, apply_update=spec.apply_update):
    """Return a function like spec.step with some of its pieces replaced.

    ``sq_norms(grads, states, hyperparams)`` returns one S per group; by default
    every group gets the spec's global S.
    """

    def step(params, grads, states, hyperparams):
        new_states = [
            [s if g is None else spec.update_moments(g, s, hp) for g, s in zip(gg, ss, strict=True)]
            for gg, ss, hp in zip(grads, states, hyperparams, strict=True)
        ]
        global_norm = spec.velocity_sq_norm([
            s.exp_avg
            for gg, ss in zip(grads, new_states, strict=True)
            for g, s in zip(gg, ss, strict=True)
            if g is not None
        ])
        norms = (
            [global_norm] * len(params) if sq_norms is None
            else sq_norms(grads, new_states, hyperparams)
        )
        lrs = tuple(effective_lr(norm, hp) for norm, hp in zip(norms, hyperparams, strict=True))
        new_params = [
            [
                p if g is None else apply_update(p, s, lr, hp)
                for p, g, s in zip(pp, gg, ss, strict=True)
            ]
            for pp, gg, ss, hp, lr in zip(params, grads, new_states, hyperparams, lrs, strict=True)
        ]
        return new_params, new_states, spec.StepInfo(global_norm, lrs)

    return step


def per_group_norms(grads, states, hyperparams):
    return [
        spec.velocity_sq_norm([s.exp_avg for g, s in zip(gg, ss, strict=True) if g is not None])
        for gg, ss in zip(grads, states, strict=True)
    ]


def _all_groups(norm):
    def norms(grads, states, hyperparams):
        return [norm(grads, states, hyperparams)] * len(states)

    return norms


def bias_corrected_norm(grads, states, hyperparams):
    return spec.velocity_sq_norm([
        s.exp_avg / (1 - hp.beta1**s.step)
        for gg, ss, hp in zip(grads, states, hyperparams, strict=True)
        for g, s in zip(gg, ss, strict=True) if g is not None
    ])


def gradient_norm(grads, states, hyperparams):
    return spec.velocity_sq_norm([spec.as_real(g) for gg in grads for g in gg if g is not None])


def float16_norm(grads, states, hyperparams):
    total = np.float16(0.0)
    with np.errstate(over="ignore"):
        for gg, ss in zip(grads, states, strict=True):
            for g, s in zip(gg, ss, strict=True):
                if g is not None:
                    m = s.exp_avg.astype(np.float16)
                    total = np.float16(total + np.sum(m * m, dtype=np.float16))
    return float(total)


def to_bfloat16(x):
    """Round float32 values to the nearest bfloat16 (ties to even), kept in float32."""
    bits = np.asarray(x, dtype=np.float32).reshape(-1).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
    rounded &= np.uint32(0xFFFF0000)
    return rounded.view(np.float32).reshape(np.shape(x))


def bfloat16_norm(grads, states, hyperparams):
    # Each tensor's ‖m‖² in float32, rounded to bfloat16, then a bfloat16 running sum.
    total = np.float32(0.0)
    for gg, ss in zip(grads, states, strict=True):
        for g, s in zip(gg, ss, strict=True):
            if g is not None:
                m = s.exp_avg.astype(np.float32)
                total = to_bfloat16(total + to_bfloat16(np.sum(m * m)))
    return float(total)


def fmin_effective_lr(velocity_sq_norm, hp):
    gate = np.fmin(hp.beta3 * np.float64(velocity_sq_norm), hp.alpha1)
    return float(hp.lr / (1.0 + gate))


def decay_by_base_lr(param, state, lr, hp):
    # Decay with α0 instead of η: undo the spec's decay by η, redo it by α0.
    theta = spec.apply_update(param, state, lr, hp.replace(weight_decay=0.0))
    return theta - hp.lr * hp.weight_decay * param


def eps_inside_sqrt(param, state, lr, hp):
    theta = spec.as_real(param)
    exp_avg_hat = state.exp_avg / (1 - hp.beta1**state.step)
    exp_avg_sq_hat = state.exp_avg_sq / (1 - hp.beta2**state.step)
    theta = theta * (1 - lr * hp.weight_decay) - lr * exp_avg_hat / np.sqrt(exp_avg_sq_hat + hp.eps)
    return spec.from_real(theta.astype(spec.as_real(param).dtype), param)


VARIANTS = {
    "norm per group": (make_step(sq_norms=per_group_norms), "groups"),
    "norm of bias-corrected m": (make_step(sq_norms=_all_groups(bias_corrected_norm)), "defaults"),
    "norm of the gradient": (make_step(sq_norms=_all_groups(gradient_norm)), "defaults"),
    "norm accumulated in float16": (
        make_step(sq_norms=_all_groups(float16_norm)), "float16-norm-overflow"
    ),
    "norm accumulated in bfloat16": (
        make_step(sq_norms=_all_groups(bfloat16_norm)), "bfloat16-small-terms"
    ),
    "decay scaled by lr": (make_step(apply_update=decay_by_base_lr), "strong-weight-decay"),
    "eps inside sqrt": (make_step(apply_update=eps_inside_sqrt), "tiny-gradients"),
    "min that drops NaN": (make_step(effective_lr=fmin_effective_lr), "nan-gradient"),
}


def test_variant_harness_matches_spec():
    report = run_suite(SpecAdapter(make_step(), name="reassembled spec"), dtype="float64")
    assert report.ok, str(report)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_fails(variant):
    step_function, catching_case = VARIANTS[variant]
    report = run_suite(SpecAdapter(step_function, name=variant), dtype="float64")
    assert catching_case in report.failed_cases(), str(report)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_fails_single_step(variant):
    # Single-step checks alone catch every variant too: they are what guards
    # low-precision runs, where the free-running bound is loose.
    step_function, catching_case = VARIANTS[variant]
    report = run_suite(SpecAdapter(step_function, name=variant), dtype="float32",
                       cases=[catching_case])
    modes = {f.mode for f in report.failures}
    assert "single-step" in modes, str(report)
