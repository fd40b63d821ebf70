"""With β3 = 0 or α1 = 0 VRAdam is AdamW: torch.optim.AdamW is an independent oracle."""

from __future__ import annotations

import pytest
import torch
from torch_helpers import make_grads, make_params

from vradam.torch import VRAdam

STEPS = 60
# (id, gate settings that switch the gate off, AdamW settings both share)
ORACLE_CASES = [
    ("beta3-zero", {"beta3": 0.0}, {"lr": 0.01, "weight_decay": 0.1}),
    ("alpha1-zero", {"alpha1": 0.0}, {"lr": 0.01, "weight_decay": 0.1}),
    (
        "beta3-zero-betas",
        {"beta3": 0.0},
        {"lr": 0.003, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.0},
    ),
    ("alpha1-zero-maximize", {"alpha1": 0.0}, {"lr": 0.01, "weight_decay": 1e-5, "maximize": True}),
]


def _trajectory(optimizer_class, params, grad_stream, **options):
    params = [p.detach().clone().requires_grad_() for p in params]
    optimizer = optimizer_class(
        [{"params": params[:2]}, {"params": params[2:], "lr": 0.02}], **options
    )
    trajectory = []
    for grads in grad_stream:
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else g.clone()
        optimizer.step()
        trajectory.append([p.detach().clone() for p in params])
    return trajectory


@pytest.mark.parametrize(
    ("gate", "shared"), [c[1:] for c in ORACLE_CASES], ids=[c[0] for c in ORACLE_CASES]
)
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_equals_adamw(gate, shared, foreach):
    params = make_params(complex_index=4)
    grads = make_grads(params, STEPS, none_at={(10, 0), (11, 0), (30, 2)})

    expected = _trajectory(torch.optim.AdamW, params, grads, foreach=foreach, **shared)
    got = _trajectory(VRAdam, params, grads, foreach=foreach, **gate, **shared)

    for step, (want, have) in enumerate(zip(expected, got, strict=True)):
        for index, (a, b) in enumerate(zip(want, have, strict=True)):
            error = (a - b).abs().max().item() if a.numel() else 0.0
            assert error <= 1e-12, f"step {step}, tensor {index}: max abs error {error:.3e}"
