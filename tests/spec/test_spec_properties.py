"""Hypothesis properties of the spec: the AdamW limit, η's range, and the gate's globality."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vradam import Hyperparams, effective_lr, init_state, step

SETTINGS = settings(max_examples=30, deadline=None)

unit = st.floats(0.0, 0.99)
positive = st.floats(1e-4, 1.0)


@st.composite
def hyperparams(draw, **fixed):
    values = {
        "lr": draw(st.floats(1e-4, 0.1)),
        "beta1": draw(unit),
        "beta2": draw(st.floats(0.5, 0.9999)),
        "beta3": draw(st.floats(0.0, 10.0)),
        "alpha1": draw(st.floats(0.0, 50.0)),
        "eps": draw(st.sampled_from([1e-8, 1e-6, 0.0])),
        "weight_decay": draw(st.floats(0.0, 0.1)),
    }
    values.update(fixed)
    return Hyperparams(**values)


@st.composite
def trajectories(draw, tensors=(1, 4), steps=(1, 6)):
    """Shapes, initial parameters and per-step gradients of a few tensors."""
    count = draw(st.integers(*tensors))
    num_steps = draw(st.integers(*steps))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shapes = [tuple(rng.integers(1, 4, size=rng.integers(0, 3))) for _ in range(count)]
    scale = 10.0 ** draw(st.floats(-3, 1))
    params = [np.asarray(rng.standard_normal(s)) for s in shapes]
    grads = [[np.asarray(scale * rng.standard_normal(s)) for s in shapes] for _ in range(num_steps)]
    return params, grads


def run(params, grads_per_step, hyperparams):
    """Run the spec; params and grads are nested per group. Returns params and infos per step."""
    states = [[init_state(p) for p in group] for group in params]
    history, infos = [], []
    for grads in grads_per_step:
        with np.errstate(all="ignore"):
            params, states, info = step(params, grads, states, hyperparams)
        history.append(params)
        infos.append(info)
    return history, infos, states


def adamw(params, grads_per_step, hp):
    """AdamW as torch.optim.AdamW documents it (decoupled decay), written independently."""
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    params = [p.copy() for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            params[i] = params[i] * (1 - hp.lr * hp.weight_decay)
            m[i] = hp.beta1 * m[i] + (1 - hp.beta1) * g
            v[i] = hp.beta2 * v[i] + (1 - hp.beta2) * g * g
            m_hat = m[i] / (1 - hp.beta1**t)
            v_hat = v[i] / (1 - hp.beta2**t)
            params[i] = params[i] - hp.lr * m_hat / (np.sqrt(v_hat) + hp.eps)
    return params


def assert_close(actual, expected):
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)


@SETTINGS
@given(trajectories(), hyperparams(beta3=0.0))
def test_beta3_zero_is_adamw(trajectory, hp):
    params, grads = trajectory
    history, _, _ = run([params], [[g] for g in grads], [hp])
    assert_close(history[-1][0], adamw(params, grads, hp))


@SETTINGS
@given(trajectories(), hyperparams(alpha1=0.0))
def test_alpha1_zero_is_adamw(trajectory, hp):
    params, grads = trajectory
    history, _, _ = run([params], [[g] for g in grads], [hp])
    assert_close(history[-1][0], adamw(params, grads, hp))


@SETTINGS
@given(st.one_of(st.floats(0.0, 1e30), st.just(math.inf)), hyperparams())
def test_effective_lr_between_bounds(sq_norm, hp):
    assume(not (math.isinf(sq_norm) and hp.beta3 == 0.0))  # 0·inf is NaN by design
    lr = effective_lr(sq_norm, hp)
    assert lr <= hp.lr
    assert lr >= hp.lr / (1 + hp.alpha1) * (1 - 1e-15)


@SETTINGS
@given(trajectories(tensors=(2, 4)), hyperparams(), st.randoms(use_true_random=False))
def test_permuting_tensors_keeps_trajectory(trajectory, hp, random):
    params, grads = trajectory
    order = list(range(len(params)))
    random.shuffle(order)
    history, infos, _ = run([params], [[g] for g in grads], [hp])
    shuffled, shuffled_infos, _ = run(
        [[params[i] for i in order]], [[[g[i] for i in order]] for g in grads], [hp]
    )
    assert_close(shuffled[-1][0], [history[-1][0][i] for i in order])
    assert math.isclose(shuffled_infos[-1].velocity_sq_norm, infos[-1].velocity_sq_norm,
                        rel_tol=1e-12)


@SETTINGS
@given(trajectories(tensors=(1, 3)), hyperparams())
def test_splitting_tensor_keeps_trajectory(trajectory, hp):
    # One flat tensor against the same values split into one tensor per original piece.
    params, grads = trajectory
    merged_params = [np.concatenate([p.reshape(-1) for p in params])]
    merged_grads = [[[np.concatenate([g.reshape(-1) for g in sg])]] for sg in grads]
    split, _, _ = run([params], [[g] for g in grads], [hp])
    merged, _, _ = run([merged_params], merged_grads, [hp])
    flat_split = np.concatenate([p.reshape(-1) for p in split[-1][0]])
    np.testing.assert_allclose(merged[-1][0][0], flat_split, rtol=1e-12, atol=1e-14)


@SETTINGS
@given(trajectories(tensors=(2, 4)), hyperparams(alpha1=math.inf), st.floats(2.0, 10.0))
def test_scaling_one_gradient_changes_others(trajectory, hp, factor):
    params, grads = trajectory
    hp = hp.replace(beta3=max(hp.beta3, 0.1))
    scaled = [[g[0] * factor, *g[1:]] for g in grads]
    base, _, _ = run([params], [[g] for g in grads], [hp])
    changed, _, _ = run([params], [[g] for g in scaled], [hp])
    for before, after in zip(base[0][0][1:], changed[0][0][1:], strict=True):
        assert not np.array_equal(before, after)


@SETTINGS
@given(trajectories(tensors=(2, 4)), hyperparams(), st.integers(1, 3))
def test_separate_identical_groups_change_nothing(trajectory, hp, cut):
    params, grads = trajectory
    cut = min(cut, len(params) - 1)
    one, one_infos, _ = run([params], [[g] for g in grads], [hp])
    two, two_infos, _ = run(
        [params[:cut], params[cut:]], [[g[:cut], g[cut:]] for g in grads], [hp, hp]
    )
    assert_close(two[-1][0] + two[-1][1], one[-1][0])
    assert math.isclose(two_infos[-1].velocity_sq_norm, one_infos[-1].velocity_sq_norm,
                        rel_tol=1e-12)


@SETTINGS
@given(trajectories(tensors=(2, 3), steps=(2, 5)), hyperparams(), st.data())
def test_none_gradient_skips_and_keeps_step_count(trajectory, hp, data):
    params, grads = trajectory
    skip = data.draw(st.integers(0, len(grads) - 1))
    masked = [[None if k == skip and i == 0 else g for i, g in enumerate(step_grads)]
              for k, step_grads in enumerate(grads)]
    history, infos, states = run([params], [[g] for g in masked], [hp])
    before = params[0] if skip == 0 else history[skip - 1][0][0]
    assert history[skip][0][0] is before
    assert states[0][0].step == len(grads) - 1
    assert states[0][1].step == len(grads)
    with np.errstate(all="ignore"):
        others = sum(float(np.sum(s.exp_avg**2)) for s in states[0][1:])
    if skip == len(grads) - 1:
        assert math.isclose(infos[-1].velocity_sq_norm, others, rel_tol=1e-12)


@SETTINGS
@given(trajectories(tensors=(1, 3)), hyperparams())
def test_complex_equals_real_view(trajectory, hp):
    # Pair consecutive real steps as the real and imaginary parts of one complex tensor.
    params, grads = trajectory
    real_params = [np.stack([p, -p], axis=-1) for p in params]
    real_grads = [[np.stack([g, 0.5 * g], axis=-1) for g in step_grads] for step_grads in grads]
    complex_params = [p[..., 0] + 1j * p[..., 1] for p in real_params]
    complex_grads = [[g[..., 0] + 1j * g[..., 1] for g in sg] for sg in real_grads]
    real, real_infos, _ = run([real_params], [[g] for g in real_grads], [hp])
    cplx, cplx_infos, _ = run([complex_params], [[g] for g in complex_grads], [hp])
    for r, c in zip(real[-1][0], cplx[-1][0], strict=True):
        np.testing.assert_array_equal(c.real, r[..., 0])
        np.testing.assert_array_equal(c.imag, r[..., 1])
    assert cplx_infos[-1].velocity_sq_norm == real_infos[-1].velocity_sq_norm


@SETTINGS
@given(trajectories(tensors=(2, 4)), hyperparams(), st.data())
def test_nan_gradient_reaches_every_tensor(trajectory, hp, data):
    params, grads = trajectory
    index = data.draw(st.integers(0, len(params) - 1))
    grads[0][index].reshape(-1)[0] = math.nan
    history, infos, _ = run([params], [[g] for g in grads], [hp])
    assert math.isnan(infos[0].effective_lrs[0])
    for tensor in history[0][0]:
        assert np.all(np.isnan(tensor))


@SETTINGS
@given(trajectories(tensors=(2, 4)), hyperparams(beta3=1.0), st.data())
def test_inf_gradient_saturates_gate(trajectory, hp, data):
    params, grads = trajectory
    index = data.draw(st.integers(0, len(params) - 1))
    grads[0][index].reshape(-1)[0] = math.inf
    history, infos, _ = run([params], [[g] for g in grads], [hp])
    assert infos[0].effective_lrs[0] == hp.lr / (1 + hp.alpha1)
    for i, tensor in enumerate(history[0][0]):
        if i != index:
            assert np.all(np.isfinite(tensor))
