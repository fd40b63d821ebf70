"""The interface between the conformance runner and an implementation under test.

A port of VRAdam to another framework subclasses :class:`Adapter` and
:class:`Run`; the runner does the rest (see :func:`vradam.conformance.run_suite`).
All arrays that cross this interface are numpy: parameters in float64 (complex128
for complex tensors), moments in the tensor's real view in float64.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import numpy as np

from vradam.hyperparams import Hyperparams

__all__ = ["Adapter", "Loss", "Moments", "Run", "StepReport"]

#: Per group, per tensor: (t, m, v) with m and v in the real view, float64.
Moments = list[list[tuple[int, np.ndarray, np.ndarray]]]


class StepReport:
    """S and each group's η that an implementation reports after a step.

    Either may be ``None`` when the implementation does not expose it; the
    runner then skips those comparisons and lists them in its report.
    """

    __slots__ = ("effective_lrs", "velocity_sq_norm")

    def __init__(
        self, velocity_sq_norm: float | None, effective_lrs: Sequence[float] | None
    ) -> None:
        self.velocity_sq_norm = velocity_sq_norm
        self.effective_lrs = None if effective_lrs is None else tuple(effective_lrs)


class Loss:
    """An analytic loss for closed-loop cases, given by name and numpy data.

    ``name`` is one of ``"quadratic"``, ``"rosenbrock"`` and ``"logistic"``; the
    formulas and the meaning of each entry of ``data`` are documented in
    :mod:`vradam.conformance.losses`, which also gives float64 numpy references
    of the value and gradient. The loss takes every tensor of every group, in
    group order, as its arguments.
    """

    __slots__ = ("data", "name")

    def __init__(self, name: str, data: Mapping[str, np.ndarray]) -> None:
        self.name = name
        self.data = dict(data)


class Run(abc.ABC):
    """One optimizer instance driven through one case by the runner."""

    @abc.abstractmethod
    def step(
        self,
        grads: Sequence[Sequence[np.ndarray | None]] | None,
        hyperparams: Sequence[Hyperparams],
    ) -> StepReport:
        """Take one optimizer step.

        ``grads`` mirrors the parameter groups, with ``None`` where a tensor has no
        gradient this step. ``grads=None`` means a closed-loop case: compute the
        gradients of the case's :class:`Loss` at the current parameters with the
        framework's own autodiff. ``hyperparams`` are this step's values per group;
        they change between steps in the learning-rate schedule case.
        """

    @abc.abstractmethod
    def params(self) -> list[list[np.ndarray]]:
        """Return copies of the current parameters as float64 or complex128 numpy arrays."""

    @abc.abstractmethod
    def moments(self) -> Moments:
        """Return (t, m, v) for every tensor, m and v in the real view as float64."""

    @abc.abstractmethod
    def load(self, params: Sequence[Sequence[np.ndarray]], moments: Moments) -> None:
        """Replace parameters and optimizer state, casting to the run's dtype.

        The runner uses this for single-step checks: it loads the golden state
        after step k into a run created with ``loss=None``, takes one step with
        the golden gradients, and compares it with the golden step k + 1. A tensor
        whose t is 0 has zero moments.
        """


class Adapter(abc.ABC):
    """Factory of :class:`Run` objects for one implementation."""

    #: Short name shown in reports, for example ``"torch-foreach"``.
    name: str = "adapter"

    #: Parameter dtypes this implementation can run, by numpy-style name.
    dtypes: tuple[str, ...] = ("float64", "float32")

    @abc.abstractmethod
    def create(
        self,
        params: Sequence[Sequence[np.ndarray]],
        hyperparams: Sequence[Hyperparams],
        *,
        dtype: str,
        device: str,
        loss: Loss | None,
    ) -> Run:
        """Return a fresh optimizer over copies of ``params`` cast to ``dtype`` on ``device``.

        A complex parameter keeps complex type with components of ``dtype``.
        ``loss`` is set for closed-loop cases and ``None`` for replay cases.
        """

