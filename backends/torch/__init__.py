"""VRAdam for PyTorch: a drop-in replacement for ``torch.optim.AdamW``.

>>> from vradam.torch import VRAdam
>>> optimizer = VRAdam(model.parameters(), lr=1e-3)

:class:`VRAdam` is the optimizer; :func:`vradam` is its functional form, and
:func:`update_moments`, :func:`velocity_sq_norm`, :func:`effective_lr` and
:func:`apply_update` are its four steps, named as in :mod:`vradam.spec`.
"""

from vradam.torch.optimizer import (
    VRAdam,
    apply_update,
    effective_lr,
    update_moments,
    velocity_sq_norm,
    vradam,
)

__all__ = [
    "VRAdam",
    "apply_update",
    "effective_lr",
    "update_moments",
    "velocity_sq_norm",
    "vradam",
]
