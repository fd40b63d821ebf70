"""A reference adapter that runs :mod:`vradam.spec` itself in numpy.

It shows the adapter interface on the smallest possible implementation, and it
is a subject that must pass. In float64 ``SpecAdapter()`` reproduces the goldens
bit for bit. In float32 or float16 it is a faithful low-precision implementation:
moments and parameters live in the dtype, and :func:`vradam.spec.velocity_sq_norm`
accumulates S in float64. numpy has no bfloat16, so that dtype is not offered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vradam import spec
from vradam.conformance import losses
from vradam.conformance.adapter import Adapter, Loss, Moments, Run, StepReport
from vradam.hyperparams import Hyperparams

__all__ = ["SpecAdapter", "SpecRun"]

#: The signature of :func:`vradam.spec.step`.
StepFunction = Callable[..., tuple[list, list, spec.StepInfo]]


class SpecRun(Run):
    """One run of a step function over numpy arrays of one dtype."""

    def __init__(self, params, dtype: np.dtype, loss: Loss | None,
                 step_function: StepFunction) -> None:
        self._dtype = np.dtype(dtype)
        self._params = [[self._cast(p) for p in group] for group in params]
        self._states = [[spec.init_state(p) for p in group] for group in self._params]
        self._loss = loss
        self._step_function = step_function

    def _cast(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value)
        if np.iscomplexobj(value):
            complex_dtype = np.result_type(self._dtype, np.complex64)
            return value.astype(complex_dtype)
        return value.astype(self._dtype)

    def step(self, grads, hyperparams: Sequence[Hyperparams]) -> StepReport:
        if grads is None:
            grads = self._loss_gradients()
        grads = [[None if g is None else self._cast(g) for g in group] for group in grads]
        with np.errstate(all="ignore"):  # inf and NaN gradients are legitimate inputs
            self._params, self._states, info = self._step_function(
                self._params, grads, self._states, list(hyperparams)
            )
        return StepReport(info.velocity_sq_norm, info.effective_lrs)

    def _loss_gradients(self) -> list[list[np.ndarray]]:
        if self._loss is None:
            raise ValueError("grads=None needs a closed-loop run, but this run has no loss.")
        flat = np.concatenate([p.astype(np.float64).reshape(-1) for g in self._params for p in g])
        gradient = losses.gradient(self._loss.name, self._loss.data, flat)
        nested = []
        offset = 0
        for group in self._params:
            tensors = []
            for p in group:
                tensors.append(gradient[offset:offset + p.size].reshape(p.shape))
                offset += p.size
            nested.append(tensors)
        return nested

    def params(self) -> list[list[np.ndarray]]:
        return [
            [p.astype(np.complex128 if np.iscomplexobj(p) else np.float64) for p in group]
            for group in self._params
        ]

    def moments(self) -> Moments:
        return [
            [(s.step, s.exp_avg.astype(np.float64), s.exp_avg_sq.astype(np.float64))
             for s in group]
            for group in self._states
        ]

    def load(self, params, moments: Moments) -> None:
        self._params = [[self._cast(p) for p in group] for group in params]
        self._states = [
            [
                spec.TensorState(int(t), np.asarray(m).astype(self._dtype),
                                 np.asarray(v).astype(self._dtype))
                for t, m, v in group
            ]
            for group in moments
        ]


class SpecAdapter(Adapter):
    """Runs :func:`vradam.spec.step`, or a variant with the same signature, in numpy."""

    dtypes = ("float64", "float32", "float16")

    def __init__(self, step_function: StepFunction = spec.step, name: str = "vradam.spec") -> None:
        self.step_function = step_function
        self.name = name

    def create(self, params, hyperparams, *, dtype: str, device: str, loss: Loss | None) -> Run:
        if device != "cpu":
            raise ValueError(f"SpecAdapter runs on numpy only: expected device 'cpu', "
                             f"received {device!r}.")
        if dtype not in self.dtypes:
            raise ValueError(f"SpecAdapter runs dtypes {self.dtypes}, received {dtype!r}.")
        return SpecRun(params, np.dtype(dtype), loss, self.step_function)
