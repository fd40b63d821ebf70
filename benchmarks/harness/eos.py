"""Edge of stability on a quadratic: AdamW keeps oscillating, VRAdam's gate damps it.

With momentum β1 and step η, the momentum iteration on a quadratic of curvature h
is stable only while η·h < 2(1 + β1)/(1 − β1), which is 38 for β1 = 0.9. Adam
divides the gradient by √v̂, so the relevant curvature is the preconditioned
sharpness max_i h_i/(√v̂_i + ε). As Adam converges, v̂ shrinks and that sharpness
grows. Once η times it reaches 38, the loss spikes, the spike refills v̂, and the
cycle repeats, so AdamW hovers at the edge. VRAdam's gate detects the spike as a
jump in ‖m‖² and shrinks η in the same step, which damps the spike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.optimizers import OptimizerSpec, read_gate

# β2 = 0.99 (not the default 0.999) makes v̂ forget in about 100 steps, so AdamW
# reaches the edge within a thousand steps instead of several thousand.
BETA1, BETA2, EPS = 0.9, 0.99, 1e-8
THRESHOLD = 2 * (1 + BETA1) / (1 - BETA1)


@dataclass(frozen=True)
class EdgeConfig:
    steps: int = 3000
    dim: int = 10  # curvatures log-spaced from 1 to 100
    lr: float = 0.1
    beta3: float = 1000.0  # large, because ‖m‖² near the minimum is tiny


def run_edge_of_stability(specs: dict[str, OptimizerSpec], config: EdgeConfig) -> dict:
    """Return per optimizer the loss, η and η·(preconditioned sharpness) at every step.

    ``specs`` maps a label to a registered torch optimizer; VRAdam gets
    ``config.beta3``. The second moment v̂ used for the sharpness is recomputed
    here from the gradients with the optimizer's β2, so no optimizer state is read.
    """
    import torch

    curvature = torch.tensor(np.logspace(0, 2, config.dim), dtype=torch.float64)
    out = {}
    for label, spec in specs.items():
        x = torch.nn.Parameter(torch.ones(config.dim, dtype=torch.float64))
        extra = {"beta3": config.beta3} if "beta3" in spec.extra_grid else {}
        optimizer = spec.factory(
            [{"params": [x], "betas": (BETA1, BETA2), "weight_decay": 0.0}], config.lr, **extra
        )
        second_moment = torch.zeros(config.dim, dtype=torch.float64)
        losses, lrs, edges = (np.empty(config.steps) for _ in range(3))
        for step in range(1, config.steps + 1):
            optimizer.zero_grad(set_to_none=True)
            loss = 0.5 * (curvature * x * x).sum()
            loss.backward()
            optimizer.step()

            with torch.no_grad():
                second_moment.mul_(BETA2).add_((1 - BETA2) * x.grad**2)
                v_hat = second_moment / (1 - BETA2**step)
                gate = read_gate(optimizer)
                lr = config.lr if gate is None else gate[1][0]
                losses[step - 1] = float(loss.detach())
                lrs[step - 1] = lr
                edges[step - 1] = lr * float((curvature / (v_hat.sqrt() + EPS)).max())
        out[label] = {"loss": losses, "lr": lrs, "edge": edges}
    return out


def summarize(curves: dict, skip: int) -> dict[str, dict[str, float]]:
    """Return the peak and median loss and the smallest η after ``skip`` steps."""
    return {
        label: {
            "peak_loss": float(c["loss"][skip:].max()),
            "median_loss": float(np.median(c["loss"][skip:])),
            "min_lr": float(c["lr"][skip:].min()),
            "median_edge": float(np.median(c["edge"][skip:])),
        }
        for label, c in curves.items()
    }
