"""VRAdam with torch.amp.GradScaler: an overflow step changes nothing, and S is unscaled."""

from __future__ import annotations

import math

import pytest
import torch

from vradam.torch import VRAdam

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ),
]


def _setup(device, foreach, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    model = model.to(device)
    data = torch.randn(9, 5, device=device)
    return model, data, VRAdam(model.parameters(), lr=0.01, foreach=foreach)


def _snapshot(model, optimizer):
    params = [p.detach().clone() for p in model.parameters()]
    state = {
        i: {key: value.clone() for key, value in optimizer.state[p].items()}
        for i, p in enumerate(model.parameters())
    }
    return params, state


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_overflow_step_changes_nothing(device, foreach):
    model, data, optimizer = _setup(device, foreach)
    scaler = torch.amp.GradScaler(device, init_scale=2.0**8)
    for _ in range(2):
        optimizer.zero_grad()
        scaler.scale(model(data).pow(2).mean()).backward()
        scaler.step(optimizer)
        scaler.update()
    params_before, state_before = _snapshot(model, optimizer)
    norm_before = optimizer.velocity_sq_norm.clone()

    optimizer.zero_grad()
    scaler.scale(model(data).pow(2).mean()).backward()
    next(model.parameters()).grad[0, 0] = math.inf
    scaler.step(optimizer)
    scaler.update()

    params_after, state_after = _snapshot(model, optimizer)
    for before, after in zip(params_before, params_after, strict=True):
        assert torch.equal(before, after)
    for i in state_before:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(state_before[i][key], state_after[i][key]), (i, key)
    assert torch.equal(optimizer.velocity_sq_norm, norm_before)
    assert scaler.get_scale() == 2.0**7


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_scaled_run_equals_unscaled(device, foreach):
    """A power-of-two scale is exact, so S and every step must match a run without scaling."""
    scaled_model, data, scaled_optimizer = _setup(device, foreach)
    plain_model, _, plain_optimizer = _setup(device, foreach)
    scaler = torch.amp.GradScaler(device, init_scale=2.0**12, growth_interval=2)

    for _ in range(5):
        scaled_optimizer.zero_grad()
        scaler.scale(scaled_model(data).pow(2).mean()).backward()
        scaler.step(scaled_optimizer)
        scaler.update()

        plain_optimizer.zero_grad()
        plain_model(data).pow(2).mean().backward()
        plain_optimizer.step()

        assert torch.equal(scaled_optimizer.velocity_sq_norm, plain_optimizer.velocity_sq_norm)
    for a, b in zip(scaled_model.parameters(), plain_model.parameters(), strict=True):
        assert torch.equal(a, b)
