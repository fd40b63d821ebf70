"""Generic behaviour of vradam.torch.VRAdam, driven by one table of configurations.

Each configuration runs through every generic test with every variant of the
step: the for-loop path is the ground truth, the foreach path must match it, and
both must match the numpy spec, with the step counts on the host and, with
capturable=True, on the device.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch_helpers import (
    assert_close_to_numpy,
    make_grads,
    make_params,
    run_spec,
    run_torch,
)

from vradam.hyperparams import Hyperparams
from vradam.torch import VRAdam, vradam

# One row per configuration: (id, VRAdam keyword arguments).
CONFIGS = [
    ("default", {}),
    ("large-lr", {"lr": 0.05}),
    ("gate-active", {"lr": 0.01, "beta3": 0.3, "alpha1": 2.0}),
    ("gate-uncapped", {"lr": 0.01, "alpha1": math.inf}),
    ("adamw", {"lr": 0.01, "beta3": 0.0}),
    ("no-cap", {"lr": 0.01, "alpha1": 0.0}),
    ("no-decay", {"lr": 0.01, "weight_decay": 0.0}),
    ("strong-decay", {"lr": 0.01, "weight_decay": 0.5}),
    ("betas", {"lr": 0.01, "betas": (0.5, 0.9)}),
    ("beta1-zero", {"lr": 0.01, "betas": (0.0, 0.99)}),
    ("eps", {"lr": 0.01, "eps": 1e-3}),
    ("maximize", {"lr": 0.01, "maximize": True}),
    ("lr-tensor", {"lr": torch.tensor(0.01, dtype=torch.float64)}),
    ("lr-zero", {"lr": 0.0}),
]
CONFIG_IDS = [name for name, _ in CONFIGS]
CONFIG_OPTIONS = [options for _, options in CONFIGS]

# The ways a step can run: the for-loop and foreach bodies, each with the step
# counts on the host or, with capturable=True, on the device.
VARIANTS = [
    pytest.param({"foreach": False}, id="for-loop"),
    pytest.param({"foreach": True}, id="foreach"),
    pytest.param({"foreach": False, "capturable": True}, id="for-loop-capturable"),
    pytest.param({"foreach": True, "capturable": True}, id="foreach-capturable"),
]
STEPS = 8


def _hyperparams(options):
    options = dict(options)
    beta1, beta2 = options.pop("betas", (0.9, 0.999))
    lr = options.pop("lr", 1e-3)
    lr = float(lr) if isinstance(lr, torch.Tensor) else lr
    return Hyperparams(lr=lr, beta1=beta1, beta2=beta2, **options)


@pytest.mark.parametrize("options", CONFIG_OPTIONS, ids=CONFIG_IDS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_spec(options, variant):
    params = make_params(complex_index=4)
    grads = make_grads(params, STEPS, none_at={(2, 0), (5, 1)})

    got, _, sq_norms, lrs = run_torch(params, grads, **variant, **options)
    expected, expected_sq_norms, expected_lrs = run_spec(params, grads, _hyperparams(options))

    for tensor, value in zip(got, expected, strict=True):
        assert_close_to_numpy(tensor, value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose([s.item() for s in sq_norms], expected_sq_norms, rtol=1e-12)
    np.testing.assert_allclose([lr[0].item() for lr in lrs], expected_lrs, rtol=1e-12)


@pytest.mark.parametrize("options", CONFIG_OPTIONS, ids=CONFIG_IDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_foreach_matches_for_loop(options, dtype):
    params = make_params(dtype=dtype)
    grads = make_grads(params, STEPS, none_at={(3, 1)})

    loop, loop_opt, loop_sq_norms, _ = run_torch(params, grads, foreach=False, **options)
    fast, fast_opt, fast_sq_norms, _ = run_torch(params, grads, foreach=True, **options)

    # The two paths round the norm differently (pairwise sums in other orders),
    # which moves η by an ulp of S's dtype.
    tolerance = {torch.float64: 1e-13, torch.float32: 1e-5, torch.bfloat16: 1e-2}[dtype]
    for a, b in zip(loop, fast, strict=True):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)
    for a, b in zip(loop_opt.state.values(), fast_opt.state.values(), strict=True):
        torch.testing.assert_close(a["exp_avg"], b["exp_avg"], rtol=tolerance, atol=tolerance)
        torch.testing.assert_close(a["step"], b["step"], rtol=0, atol=0)
    torch.testing.assert_close(loop_sq_norms[-1], fast_sq_norms[-1], rtol=tolerance, atol=0)


@pytest.mark.parametrize("options", CONFIG_OPTIONS, ids=CONFIG_IDS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_resume_bit_identical(options, variant, tmp_path):
    params = make_params(dtype=torch.float32, complex_index=4)
    grads = make_grads(params, STEPS)
    uninterrupted, _, _, _ = run_torch(params, grads, **variant, **options)

    first, optimizer, _, _ = run_torch(params, grads[:3], **variant, **options)
    checkpoint_file = tmp_path / "checkpoint.pt"
    saved = {"params": [p.detach() for p in first], "optim": optimizer.state_dict()}
    torch.save(saved, checkpoint_file)
    checkpoint = torch.load(checkpoint_file, weights_only=True)

    resumed = [p.clone().requires_grad_() for p in checkpoint["params"]]
    fresh = VRAdam(resumed, **variant, **options)
    fresh.load_state_dict(checkpoint["optim"])
    for step_grads in grads[3:]:
        for p, g in zip(resumed, step_grads, strict=True):
            p.grad = g.clone()
        fresh.step()

    for a, b in zip(uninterrupted, resumed, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("variant", VARIANTS)
def test_none_grad_skipped(variant):
    params = make_params()
    grads = make_grads(params, 3, none_at={(1, 0), (2, 0)})
    got, optimizer, sq_norms, _ = run_torch(params, grads, **variant, lr=0.1)

    # Parameter 0 has a gradient only at step 0: it moved once, t = 1.
    assert optimizer.state[got[0]]["step"].item() == 1
    only_once, _, _, _ = run_torch(params, grads[:1], **variant, lr=0.1)
    assert not torch.equal(got[0], params[0])
    # At steps 1 and 2 the η differs from step 0's, so equality with one step
    # proves the tensor was not touched again.
    assert torch.equal(got[0], only_once[0])
    # S at step 2 leaves out parameter 0's moment.
    others = [s["exp_avg"] for p, s in optimizer.state.items() if p is not got[0]]
    expected = sum(float(torch.sum(m * m)) for m in others)
    assert sq_norms[-1].item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_param_without_grad_gets_no_state(variant):
    params = make_params()
    grads = make_grads(params, 2, none_at={(0, 1), (1, 1)})
    got, optimizer, _, _ = run_torch(params, grads, **variant)
    assert got[1] not in optimizer.state


@pytest.mark.parametrize("variant", VARIANTS)
def test_zero_size_and_0d(variant):
    params = make_params(shapes=[(), (0,), (4, 0, 2)])
    grads = make_grads(params, 3)
    got, optimizer, sq_norms, _ = run_torch(params, grads, **variant, lr=0.1)
    expected, expected_sq_norms, _ = run_spec(params, grads, Hyperparams(lr=0.1))
    assert_close_to_numpy(got[0], expected[0], rtol=1e-12, atol=0)
    assert got[1].shape == (0,)
    assert optimizer.state[got[2]]["exp_avg"].shape == (4, 0, 2)
    assert sq_norms[-1].item() == pytest.approx(expected_sq_norms[-1], rel=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_add_param_group_joins_norm(variant):
    first, second = make_params(shapes=[(3,), (4,)])
    optimizer = VRAdam([first], lr=0.1, **variant)
    optimizer.add_param_group({"params": [second], "lr": 0.2})
    first.grad = torch.ones(3, dtype=torch.float64)
    second.grad = torch.full((4,), 2.0, dtype=torch.float64)
    optimizer.step()

    # m = 0.1·g after one step, so S = 0.01·(3·1 + 4·4).
    assert optimizer.velocity_sq_norm.item() == pytest.approx(0.01 * 19, rel=1e-12)
    gate = 1 + min(0.01 * 19, 10.0)
    assert optimizer.effective_lrs[0].item() == pytest.approx(0.1 / gate, rel=1e-12)
    assert optimizer.effective_lrs[1].item() == pytest.approx(0.2 / gate, rel=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_groups_share_norm(variant):
    params = make_params()
    grads = make_grads(params, 4)
    one_group, _, sq_norms_one, _ = run_torch(params, grads, **variant, lr=0.1)
    two_groups, _, sq_norms_two, lrs_two = run_torch(
        params,
        grads,
        groups_of=lambda ps: [{"params": ps[:2]}, {"params": ps[2:]}],
        **variant,
        lr=0.1,
    )
    torch.testing.assert_close(sq_norms_one[-1], sq_norms_two[-1], rtol=1e-14, atol=0)
    torch.testing.assert_close(lrs_two[-1][0], lrs_two[-1][1], rtol=0, atol=0)
    for a, b in zip(one_group, two_groups, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_dtypes(variant, dtype):
    params = make_params(dtype=dtype)
    # Gradients of 300 give ‖m‖² above float16's max 65504 after one step.
    grads = make_grads(params, 3, scale=300.0)
    got, optimizer, sq_norms, _ = run_torch(params, grads, **variant, lr=0.01)

    assert sq_norms[-1].dtype == torch.float32
    assert math.isfinite(sq_norms[-1].item())
    state = optimizer.state[got[0]]
    assert state["exp_avg"].dtype == dtype
    assert state["exp_avg_sq"].dtype == dtype
    assert got[0].dtype == dtype


def test_norm_dtype_follows_widest_param():
    params = [make_params(torch.float32)[0], make_params(torch.float64)[1]]
    _, _, sq_norms, _ = run_torch(params, make_grads(params, 1))
    assert sq_norms[0].dtype == torch.float64


def test_norm_is_float32_for_float32():
    params = make_params(torch.float32)
    _, _, sq_norms, _ = run_torch(params, make_grads(params, 1))
    assert sq_norms[0].dtype == torch.float32


@pytest.mark.parametrize("variant", VARIANTS)
def test_nan_norm_propagates(variant):
    params = make_params()
    grads = make_grads(params, 1)
    grads[0][0][0, 0] = math.nan
    got, _, sq_norms, lrs = run_torch(params, grads, **variant)
    assert math.isnan(sq_norms[0].item())
    assert math.isnan(lrs[0][0].item())
    assert torch.isnan(got[1]).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_inf_norm_saturates_gate(variant):
    params = make_params(shapes=[(2,), (3,)])
    grads = make_grads(params, 1)
    grads[0][0][0] = math.inf
    _, _, sq_norms, lrs = run_torch(params, grads, **variant, lr=0.11, alpha1=10.0)
    assert sq_norms[0].item() == math.inf
    assert lrs[0][0].item() == pytest.approx(0.01, rel=1e-15)


def test_inf_norm_with_beta3_zero_is_nan():
    params = make_params(shapes=[(2,)])
    grads = make_grads(params, 1)
    grads[0][0][0] = math.inf
    _, _, _, lrs = run_torch(params, grads, beta3=0.0)
    assert math.isnan(lrs[0][0].item())


def test_logging_attributes_before_step():
    optimizer = VRAdam(make_params())
    assert optimizer.velocity_sq_norm is None
    assert optimizer.effective_lrs is None


def test_logging_attributes_are_tensors():
    params = make_params()
    _, optimizer, _, _ = run_torch(params, make_grads(params, 1))
    assert optimizer.velocity_sq_norm.shape == ()
    assert len(optimizer.effective_lrs) == 1
    assert optimizer.effective_lrs[0].shape == ()


def test_step_without_grads_changes_nothing():
    params = make_params()
    optimizer = VRAdam(params, lr=0.1)
    before = [p.detach().clone() for p in params]
    optimizer.step()
    assert len(optimizer.state) == 0
    for a, b in zip(before, params, strict=True):
        assert torch.equal(a, b)


def test_closure_runs_with_grad_enabled():
    weight = torch.ones(3, requires_grad=True)
    optimizer = VRAdam([weight], lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = (weight**2).sum()
        loss.backward()
        return loss

    with torch.no_grad():
        loss = optimizer.step(closure)
    assert loss.item() == 3.0
    assert optimizer.state[weight]["step"].item() == 1


def test_lr_scheduler_drives_lr():
    params = make_params()
    optimizer = VRAdam(params, lr=0.1, beta3=0.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for grads in make_grads(params, 3):
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        optimizer.step()
        scheduler.step()
    assert optimizer.effective_lrs[0].item() == pytest.approx(0.025, rel=1e-15)


def test_lr_tensor_with_scheduler():
    params = make_params()
    lr = torch.tensor(0.1, dtype=torch.float64)
    optimizer = VRAdam(params, lr=lr, beta3=0.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for grads in make_grads(params, 2):
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] is lr
    assert optimizer.effective_lrs[0].item() == pytest.approx(0.05, rel=1e-15)


@pytest.mark.parametrize("variant", VARIANTS)
def test_functional_matches_class(variant):
    params = make_params(complex_index=1)
    grads = make_grads(params, 4)
    expected, _, sq_norms, lrs = run_torch(params, grads, **variant, lr=0.1)

    tensors = [p.detach().clone() for p in params]
    exp_avgs = [torch.zeros_like(p) for p in tensors]
    exp_avg_sqs = [torch.zeros_like(p) for p in tensors]
    steps = [torch.tensor(0.0) for _ in tensors]
    for step_grads in grads:
        sq_norm, lr = vradam(
            tensors,
            step_grads,
            exp_avgs,
            exp_avg_sqs,
            steps,
            lr=0.1,
            beta1=0.9,
            beta2=0.999,
            beta3=1.0,
            alpha1=10.0,
            eps=1e-8,
            weight_decay=1e-5,
            **variant,
        )
    assert torch.equal(sq_norm, sq_norms[-1])
    assert torch.equal(lr, lrs[-1][0])
    for a, b in zip(expected, tensors, strict=True):
        assert torch.equal(a.detach(), b)


def test_state_dict_loads_weights_only():
    params = make_params()
    _, optimizer, _, _ = run_torch(params, make_grads(params, 2))
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert loaded["param_groups"][0]["beta3"] == 1.0
    assert loaded["state"][0]["step"].item() == 2


def test_numpy_hyperparams_load_weights_only():
    params = make_params()
    optimizer = VRAdam(params[:1], lr=np.float64(0.01), betas=(np.float32(0.8), 0.99))
    optimizer.add_param_group({"params": params[1:], "weight_decay": np.array(0.1)})
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)

    # weights_only=True cannot unpickle numpy objects, so they are stored as floats.
    loaded = torch.load(buffer, weights_only=True)
    assert type(loaded["param_groups"][0]["lr"]) is float
    assert type(loaded["param_groups"][0]["betas"][0]) is float
    assert type(loaded["param_groups"][1]["weight_decay"]) is float
    assert loaded["param_groups"][1]["weight_decay"] == 0.1


def test_foreach_none_on_cpu_small_tensors():
    from vradam.torch.optimizer import _use_foreach

    params = [torch.zeros(32, 32) for _ in range(4)]
    assert _use_foreach(None, params) is True


def test_foreach_none_on_cpu_large_tensors():
    from vradam.torch.optimizer import _use_foreach

    params = [torch.zeros(128, 128) for _ in range(4)]
    assert _use_foreach(None, params) is False


def test_foreach_explicit_overrides_default():
    from vradam.torch.optimizer import _use_foreach

    params = [torch.zeros(32, 32)]
    assert _use_foreach(False, params) is False


def test_defaults_match_spec():
    optimizer = VRAdam(make_params())
    group = optimizer.param_groups[0]
    assert group["lr"] == 1e-3
    assert group["betas"] == (0.9, 0.999)
    assert group["beta3"] == 1.0
    assert group["alpha1"] == 10.0
    assert group["eps"] == 1e-8
    assert group["weight_decay"] == 1e-5
    assert group["maximize"] is False
    assert group["foreach"] is None
    assert group["capturable"] is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", VARIANTS)
def test_cuda_matches_cpu(variant):
    params = make_params(dtype=torch.float32)
    grads = make_grads(params, 4)
    cpu, _, _, _ = run_torch(params, grads, **variant, lr=0.01)
    cuda_params = [p.detach().cuda() for p in params]
    cuda_grads = [[g.cuda() for g in step] for step in grads]
    cuda, _, _, _ = run_torch(cuda_params, cuda_grads, **variant, lr=0.01)
    for a, b in zip(cpu, cuda, strict=True):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-5, atol=1e-6)


# (gradient scale, lr, eps, atol). The three cases put (√v + ε')/η above float16's
# max, make v underflow to 0 so that the denominator is ε' alone, and put η·m/denom
# below float16's normal range. In the second case m is subnormal too. There the
# foreach moment update rounds differently from the for-loop's, so the paths drift
# apart by about 1e-5.
FLOAT16_EXTREMES = [
    pytest.param(100.0, 1e-4, 1e-8, 6e-8, id="large-quotient"),
    pytest.param(1e-4, 1e-3, 1e-4, 2e-5, id="eps-only-denominator"),
    pytest.param(1000.0, 1e-6, 1e-8, 6e-8, id="tiny-lr"),
]


@pytest.mark.parametrize(("scale", "lr", "eps", "atol"), FLOAT16_EXTREMES)
@pytest.mark.parametrize("variant", VARIANTS[1:])
def test_float16_matches_for_loop(variant, scale, lr, eps, atol):
    # Zeros, so that float16's resolution near 1 cannot hide an update of 1e-6.
    params = [torch.zeros(shape, dtype=torch.float16) for shape in [(64,), (8, 8)]]
    grads = make_grads(params, 5, scale=scale)
    options = {"lr": lr, "eps": eps, "beta3": 0.3}
    loop, _, _, _ = run_torch(params, grads, foreach=False, **options)
    other, _, _, _ = run_torch(params, grads, **variant, **options)
    for a, b in zip(loop, other, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=atol)


@pytest.mark.parametrize("variant", VARIANTS)
def test_float16_update_does_not_overflow(variant):
    # (√v + ε')/η reaches about 1e5 here, past float16's maximum of 65504, so a
    # path that forms it would turn some updates into m/inf = 0.
    start = torch.full((1000,), 0.01, dtype=torch.float16)
    grad = (100 * torch.randn(1000, generator=torch.Generator().manual_seed(0))).half()
    param = start.clone().requires_grad_()
    param.grad = grad
    VRAdam([param], lr=1e-4, beta3=0.0, weight_decay=0.0, **variant).step()
    assert torch.count_nonzero(param.detach() == start) == 0
