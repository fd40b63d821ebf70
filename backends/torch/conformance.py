"""The conformance adapter for :class:`vradam.torch.VRAdam`.

>>> from vradam.conformance import assert_conforms
>>> assert_conforms(TorchAdapter(foreach=True), dtype="float32")
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vradam.conformance.adapter import Adapter, Loss, Moments, Run, StepReport
from vradam.hyperparams import Hyperparams
from vradam.torch.optimizer import VRAdam

__all__ = ["CAPTURABLE", "FOREACH", "FOR_LOOP", "TorchAdapter", "TorchRun", "closed_loop_loss"]

_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
_COMPLEX_DTYPES = {torch.float64: torch.complex128, torch.float32: torch.complex64}


class TorchAdapter(Adapter):
    """Runs :class:`VRAdam` through the suite with the foreach or the for-loop path.

    With ``capturable=True`` the step counts live on the device, and the bias
    corrections are computed there instead of on the host.
    """

    dtypes = tuple(_DTYPES)

    def __init__(self, foreach: bool, capturable: bool = False) -> None:
        self.foreach = foreach
        self.capturable = capturable
        self.name = "torch-foreach" if foreach else "torch-for-loop"
        if capturable:
            self.name += "-capturable"

    def create(
        self,
        params: Sequence[Sequence[np.ndarray]],
        hyperparams: Sequence[Hyperparams],
        *,
        dtype: str,
        device: str,
        loss: Loss | None,
    ) -> TorchRun:
        if dtype not in _DTYPES:
            raise ValueError(
                f"Invalid dtype: expected one of {tuple(_DTYPES)}, received {dtype!r}."
            )
        return TorchRun(
            params,
            hyperparams,
            dtype=_DTYPES[dtype],
            device=torch.device(device),
            loss=loss,
            foreach=self.foreach,
            capturable=self.capturable,
        )


#: Ready instances for the command line, e.g.
#: ``python -m vradam.conformance vradam.torch.conformance:FOREACH --device cuda``.
FOREACH = TorchAdapter(foreach=True)
FOR_LOOP = TorchAdapter(foreach=False)
CAPTURABLE = TorchAdapter(foreach=True, capturable=True)


class TorchRun(Run):
    """One :class:`VRAdam` over torch copies of the case's parameters."""

    def __init__(self, params, hyperparams, *, dtype, device, loss, foreach, capturable) -> None:
        self.dtype = dtype
        self.device = device
        self.loss = loss
        groups = []
        for group_params, hp in zip(params, hyperparams, strict=True):
            tensors = [self._to_torch(p).requires_grad_() for p in group_params]
            groups.append({"params": tensors, **_group_options(hp)})
        self.optimizer = VRAdam(groups, foreach=foreach, capturable=capturable)

    def _tensor_dtype(self, array: np.ndarray) -> torch.dtype:
        if not np.iscomplexobj(array):
            return self.dtype
        if self.dtype not in _COMPLEX_DTYPES:
            raise ValueError(
                f"Invalid dtype for a complex parameter: torch has no complex type with "
                f"{self.dtype} components; use float32 or float64."
            )
        return _COMPLEX_DTYPES[self.dtype]

    def _to_torch(self, array: np.ndarray) -> torch.Tensor:
        array = np.asarray(array)
        # Cast in numpy's widest type first, so the one rounding is torch's.
        wide = torch.from_numpy(
            array.astype(np.complex128 if np.iscomplexobj(array) else np.float64)
        )
        return wide.to(device=self.device, dtype=self._tensor_dtype(array))

    def _tensors(self) -> list[list[torch.Tensor]]:
        return [list(group["params"]) for group in self.optimizer.param_groups]

    def step(self, grads, hyperparams) -> StepReport:
        for group, hp in zip(self.optimizer.param_groups, hyperparams, strict=True):
            group.update(_group_options(hp))

        if grads is None:
            self._compute_loss_grads()
        else:
            for group_params, group_grads in zip(self._tensors(), grads, strict=True):
                for p, g in zip(group_params, group_grads, strict=True):
                    p.grad = None if g is None else self._to_torch(g).to(p.dtype)

        self.optimizer.step()
        return StepReport(
            velocity_sq_norm=self.optimizer.velocity_sq_norm.item(),
            effective_lrs=[lr.item() for lr in self.optimizer.effective_lrs],
        )

    def _compute_loss_grads(self) -> None:
        if self.loss is None:
            raise ValueError("grads=None requests a closed-loop step, but this case has no loss.")
        tensors = [p for group in self._tensors() for p in group]
        for p in tensors:
            p.grad = None
        with torch.enable_grad():
            x = torch.cat([p.reshape(-1) for p in tensors])
            data = {
                key: torch.from_numpy(np.asarray(value, dtype=np.float64)).to(self.device, x.dtype)
                for key, value in self.loss.data.items()
            }
            closed_loop_loss(self.loss.name, data, x).backward()

    def params(self) -> list[list[np.ndarray]]:
        return [[_to_numpy(p.detach()) for p in group] for group in self._tensors()]

    def moments(self) -> Moments:
        result = []
        for group in self._tensors():
            group_moments = []
            for p in group:
                state = self.optimizer.state.get(p, {})
                if len(state) == 0:
                    zeros = np.zeros(_to_numpy(_real(p.detach())).shape)
                    group_moments.append((0, zeros, zeros.copy()))
                    continue
                group_moments.append(
                    (
                        int(state["step"].item()),
                        _to_numpy(_real(state["exp_avg"])),
                        _to_numpy(_real(state["exp_avg_sq"])),
                    )
                )
            result.append(group_moments)
        return result

    def load(self, params, moments) -> None:
        self.optimizer.state.clear()
        with torch.no_grad():
            for group, group_params, group_moments in zip(
                self._tensors(), params, moments, strict=True
            ):
                for p, value, (t, m, v) in zip(group, group_params, group_moments, strict=True):
                    p.copy_(self._to_torch(value))
                    # The optimizer keeps t on the host, or on p's device when capturable.
                    step_device = p.device if self.optimizer.defaults["capturable"] else "cpu"
                    self.optimizer.state[p] = {
                        "step": torch.tensor(float(t), dtype=torch.float32, device=step_device),
                        "exp_avg": self._state_like(p, m),
                        "exp_avg_sq": self._state_like(p, v),
                    }

    def _state_like(self, param: torch.Tensor, real_view: np.ndarray) -> torch.Tensor:
        real = torch.from_numpy(np.asarray(real_view, dtype=np.float64))
        real = real.to(device=self.device, dtype=self.dtype)
        return torch.view_as_complex(real.contiguous()) if param.is_complex() else real


def closed_loop_loss(name: str, data: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Return the closed-loop loss ``name`` at the flat parameter vector ``x``.

    The formulas are those of :mod:`vradam.conformance.losses`, written in torch so
    that autograd gives the gradient.
    """
    if name == "quadratic":
        d = x - data["center"]
        return 0.5 * (d @ data["hessian"] @ d)
    if name == "rosenbrock":
        a, b = data["a"], data["b"]
        return torch.sum(b * (x[1:] - x[:-1] ** 2) ** 2 + (a - x[:-1]) ** 2)
    if name == "logistic":
        z = data["features"] @ x[:-1] + x[-1]
        return torch.mean(torch.nn.functional.softplus(z) - data["labels"] * z)
    raise ValueError(
        f"Unknown loss name: expected 'quadratic', 'rosenbrock' or 'logistic', received {name!r}."
    )


def _group_options(hp: Hyperparams) -> dict[str, object]:
    return {
        "lr": hp.lr,
        "betas": (hp.beta1, hp.beta2),
        "beta3": hp.beta3,
        "alpha1": hp.alpha1,
        "eps": hp.eps,
        "weight_decay": hp.weight_decay,
        "maximize": hp.maximize,
    }


def _real(tensor: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    wide = torch.complex128 if tensor.is_complex() else torch.float64
    return tensor.detach().to("cpu", wide).numpy().copy()
