"""Registry of the optimizers the harness compares.

Each entry names a framework and a factory ``factory(params, lr, **extra)`` that
returns a ready optimizer. ``extra`` contains the entry's tuned hyperparameters
besides the learning rate (for VRAdam, ``beta3``). A task's runner picks the
entries of the framework it implements, so adapters for other frameworks join
the same tables by registering entries here and giving the tasks a runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Decoupled weight decay λ shared by VRAdam and AdamW so that they differ only in
# the gate. 1e-5 is VRAdam's default; torch's AdamW default of 1e-2 would make
# the comparison about weight decay instead.
WEIGHT_DECAY = 1e-5


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer the harness can run, and how it is tuned."""

    name: str  # key in the registry and in results, e.g. "vradam"
    label: str  # name shown in tables and plots
    framework: str  # which task runners can use it, e.g. "torch"
    factory: Callable[..., Any]  # factory(params, lr, **extra) -> optimizer
    # Hyperparameters tuned besides lr, each with the grid of each tier.
    extra_grid: Mapping[str, Mapping[str, Sequence[float]]] = field(default_factory=dict)
    # Multiplier on the task's learning-rate grid. Adaptive methods take steps in
    # normalized units and share the grid as is; SGD's step is in gradient units.
    lr_scale: float = 1.0

    def grid(self, lrs: Sequence[float], tier: str) -> list[dict[str, float]]:
        """Return every hyperparameter setting to try: lr × each extra grid."""
        settings = [{"lr": lr * self.lr_scale} for lr in lrs]
        for key, grids in self.extra_grid.items():
            settings = [{**s, key: value} for s in settings for value in grids[tier]]
        return settings


REGISTRY: dict[str, OptimizerSpec] = {}


def register(spec: OptimizerSpec) -> OptimizerSpec:
    """Add ``spec`` to the registry; a name can be registered once."""
    if spec.name in REGISTRY:
        raise ValueError(f"optimizer {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> OptimizerSpec:
    """Return the registered optimizer called ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown optimizer {name!r}; registered: {', '.join(sorted(REGISTRY))}"
        ) from None


def read_gate(optimizer: Any) -> tuple[float, list[float]] | None:
    """Return VRAdam's S and per-group η after a step, or None for other optimizers.

    Reading them copies two scalars to the host, so call it only at logging steps.
    """
    sq_norm = getattr(optimizer, "velocity_sq_norm", None)
    lrs = getattr(optimizer, "effective_lrs", None)
    if sq_norm is None or lrs is None:
        return None
    return float(sq_norm), [float(lr) for lr in lrs]


def _torch_vradam(params, lr, beta3=1.0):
    from vradam.torch import VRAdam

    return VRAdam(params, lr=lr, beta3=beta3, weight_decay=WEIGHT_DECAY)


def _torch_adamw(params, lr):
    import torch

    return torch.optim.AdamW(params, lr=lr, weight_decay=WEIGHT_DECAY)


def _torch_sgd_nesterov(params, lr):
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)


def _torch_rmsprop(params, lr):
    import torch

    return torch.optim.RMSprop(params, lr=lr, alpha=0.99)


register(
    OptimizerSpec(
        name="vradam",
        label="VRAdam",
        framework="torch",
        factory=_torch_vradam,
        # β3 is in units of 1/‖m‖², so its useful range depends on the model; the
        # grid spans two decades around the default 1.
        extra_grid={"beta3": {"tiny": (1.0,), "quick": (0.1, 1.0, 10.0), "full": (0.1, 1.0, 10.0)}},
    )
)
register(OptimizerSpec(name="adamw", label="AdamW", framework="torch", factory=_torch_adamw))
register(
    OptimizerSpec(
        name="sgd",
        label="SGD+Nesterov",
        framework="torch",
        factory=_torch_sgd_nesterov,
        lr_scale=30.0,
    )
)
register(OptimizerSpec(name="rmsprop", label="RMSProp", framework="torch", factory=_torch_rmsprop))
