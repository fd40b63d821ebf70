"""VRAdam, velocity-regularized Adam: the backend-agnostic specification.

``vradam`` itself depends on numpy only and defines the update as pure functions
(:mod:`vradam.spec`). Each framework adapter is a separate module, imported only
when used: ``vradam.torch`` today, with ``vradam.jax`` and ``vradam.keras``
reserved for the JAX/optax and Keras 3 adapters. The golden trajectories that
every adapter must reproduce live in ``vradam.conformance``.
"""

from vradam.hyperparams import DEFAULTS, Hyperparams, validate_hyperparams
from vradam.spec import (
    StepInfo,
    TensorState,
    apply_update,
    effective_lr,
    init_state,
    step,
    update_moments,
    velocity_sq_norm,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULTS",
    "Hyperparams",
    "StepInfo",
    "TensorState",
    "apply_update",
    "effective_lr",
    "init_state",
    "step",
    "update_moments",
    "validate_hyperparams",
    "velocity_sq_norm",
]
