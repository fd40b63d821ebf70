r"""VRAdam for PyTorch: the :class:`VRAdam` optimizer and its functional form.

The step follows :mod:`vradam.spec` function by function, in the same order:
:func:`update_moments`, :func:`velocity_sq_norm`, :func:`effective_lr`,
:func:`apply_update`. Each has a for-loop body, the readable ground truth, and a
foreach body (``torch._foreach_*`` over tensors bucketed by device and dtype) that
must match it.

S and η stay 0-d tensors on the device from start to end, because the gate uses
``torch.clamp``, never Python ``min`` or ``float()``. So a step reads neither back to
the host, and ``torch.compile(fullgraph=True)`` traces it without a graph break, as
tests/torch/test_torch_compile.py checks.

The step counts t live on the host by default, as in ``torch.optim.AdamW``, so the
bias corrections are Python floats that cost no device work. With
``capturable=True`` they live on each parameter's device and the bias corrections
are computed there, so that a step can be captured in a CUDA graph.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT, _default_to_fused_or_foreach

from vradam.hyperparams import DEFAULTS, validate_hyperparams

try:
    from torch.distributed.tensor import DTensor
except ImportError:  # torch < 2.5 names it privately; some builds ship no torch.distributed
    try:
        from torch.distributed._tensor import DTensor
    except ImportError:
        DTensor = None

__all__ = [
    "VRAdam",
    "apply_update",
    "effective_lr",
    "update_moments",
    "velocity_sq_norm",
    "vradam",
]

_PLAIN_TYPES = (Tensor, torch.nn.Parameter)

# The spec's argument names, as a PyTorch user types them.
_TORCH_NAMES = {"beta1": "betas[0]", "beta2": "betas[1]"}

# Options of torch.optim.AdamW that VRAdam lacks.
_ADAMW_ONLY_KEYS = ("amsgrad", "fused", "differentiable")
# Keys of other optimizers' param groups that mean nothing to VRAdam.
_DROPPED_ON_LOAD = (*_ADAMW_ONLY_KEYS, "decoupled_weight_decay")
# Keys that every checkpoint of an Adam-like optimizer has. A checkpoint of
# another optimizer may lack beta3, alpha1 and maximize, which have defaults.
_REQUIRED_ON_LOAD = ("lr", "betas", "eps", "weight_decay")


class VRAdam(Optimizer):
    r"""Implements VRAdam, velocity-regularized Adam with decoupled weight decay.

    Adam's step size is divided by a gate that grows with the squared norm of the
    first moment (the "velocity"), so the optimizer brakes when it moves fast.
    Notation follows Adam: :math:`m` is the first moment and :math:`v` the second.

    .. math::
       \begin{aligned}
            &\rule{110mm}{0.4pt}                                                      \\
            &\textbf{input}: \alpha_0 \text{ (lr)}, \: \beta_1, \beta_2 \text{ (betas)},
                \: \beta_3, \: \alpha_1, \: \epsilon, \: \lambda \text{ (weight decay)},
                \: \theta_0 \text{ (params)}, \: f(\theta), \: \textit{maximize}     \\
            &\textbf{initialize}: m_0 \leftarrow 0, \: v_0 \leftarrow 0,
                \: t \leftarrow 0 \text{ per tensor}                             \\[-1.ex]
            &\rule{110mm}{0.4pt}                                                      \\
            &\textbf{for each step do}                                                \\
            &\hspace{5mm}\textbf{for each tensor } \theta^{(i)}
                \textbf{ with a gradient, in every group do}                          \\
            &\hspace{10mm}g \leftarrow \nabla_{\theta^{(i)}} f, \:
                \textbf{if } \textit{maximize}: g \leftarrow -g                       \\
            &\hspace{10mm}t_i \leftarrow t_i + 1                                      \\
            &\hspace{10mm}m_i \leftarrow \beta_1 m_i + (1 - \beta_1) g                \\
            &\hspace{10mm}v_i \leftarrow \beta_2 v_i + (1 - \beta_2) g^2              \\
            &\hspace{5mm}S \leftarrow \textstyle\sum_i \lVert m_i \rVert_2^2
                \text{ (raw } m_i \text{, one scalar for all groups)}                 \\
            &\hspace{5mm}\textbf{for each group do}                                   \\
            &\hspace{10mm}\eta \leftarrow \alpha_0 / \big(1 + \min(\beta_3 S, \alpha_1)\big) \\
            &\hspace{10mm}\textbf{for each tensor } \theta^{(i)}
                \textbf{ of the group with a gradient do}                             \\
            &\hspace{15mm}\widehat{m_i} \leftarrow m_i / (1 - \beta_1^{t_i}), \:
                \widehat{v_i} \leftarrow v_i / (1 - \beta_2^{t_i})                    \\
            &\hspace{15mm}\theta^{(i)} \leftarrow \theta^{(i)} (1 - \eta \lambda)
                - \eta \, \widehat{m_i} / \big(\sqrt{\widehat{v_i}} + \epsilon\big)   \\
            &\rule{110mm}{0.4pt}                                                      \\
       \end{aligned}

    The gate keeps :math:`\alpha_0 / (1 + \alpha_1) \le \eta \le \alpha_0`. With
    :math:`\beta_3 = 0` or :math:`\alpha_1 = 0` (and finite gradients) the step is
    :class:`torch.optim.AdamW`'s, equal to it up to rounding because some
    operations run in a different order. :math:`\beta_3` has units of
    :math:`1/\lVert m \rVert^2`, and :math:`\lVert m \rVert^2` grows with the number
    of parameters, so a value tuned on one model does not transfer to another.

    VRAdam was introduced by Vaidhyanathan, Schorling, Ares and Osborne in
    "A Physics-Inspired Optimizer: Velocity Regularized Adam" (arXiv 2505.13196).

    Args:
        params (iterable): iterable of parameters or named parameters to optimize,
            or of dicts defining parameter groups. Every group shares one S.
        lr (float, Tensor, optional): α0, the base step size; a 0-d tensor lets a
            scheduler change it under ``torch.compile`` without a recompile
            (default: 1e-3)
        betas (tuple[float, float], optional): β1 and β2, the decay rates of the
            first and second moments (default: (0.9, 0.999))
        beta3 (float, optional): gate strength, in units of 1/‖m‖² (default: 1.0)
        alpha1 (float, optional): cap on the gate, so η never falls below
            lr / (1 + alpha1). ``inf`` removes the cap (default: 10.0)
        eps (float, optional): term added to the denominator (default: 1e-8)
        weight_decay (float, optional): λ, decoupled and scaled by η (default: 1e-5)
        maximize (bool, optional): maximize the objective instead of minimizing it
            (default: False)
        foreach (bool, optional): use the ``torch._foreach_*`` implementation. With
            ``None`` it is used on CUDA and other accelerators, as in
            :class:`torch.optim.AdamW`, and on CPU only when the group's tensors
            average at most 8192 elements, where it measured faster (default: None)
        capturable (bool, optional): keep each step count t on its parameter's
            device and compute the bias corrections there, so that a step reads
            nothing on the host and can be captured with :class:`torch.cuda.graph`.
            It adds a few small device operations to every step, so leave it off
            unless you capture steps by hand (default: False)

    Attributes:
        velocity_sq_norm (Tensor or None): S of the last step, a 0-d tensor of
            float32, or of float64 when a tensor updated in that step is float64
            or complex128. It is ``None`` before the first step and after
            ``load_state_dict``. Reading its value is what synchronizes, not the step.
        effective_lrs (list[Tensor] or None): η of each parameter group in the last
            step, 0-d tensors in group order, ``None`` when S is.

    NOTE: parameters stored in float16 lose small second moments and the term
    ε·√(1 − β2^t) to underflow, which can produce NaN or inf, exactly as in
    :class:`torch.optim.AdamW`. Keep float32 parameters and compute in float16
    with :func:`torch.autocast`. bfloat16 parameters have float32's range and do
    not underflow this way.

    Example:
        >>> optimizer = VRAdam(model.parameters(), lr=1e-3)
        >>> optimizer.zero_grad()
        >>> loss_fn(model(input), target).backward()
        >>> optimizer.step()
        >>> print(optimizer.velocity_sq_norm.item(), optimizer.effective_lrs[0].item())
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = DEFAULTS["lr"],
        betas: tuple[float, float] = (DEFAULTS["beta1"], DEFAULTS["beta2"]),
        beta3: float = DEFAULTS["beta3"],
        alpha1: float = DEFAULTS["alpha1"],
        eps: float = DEFAULTS["eps"],
        weight_decay: float = DEFAULTS["weight_decay"],
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "beta3": beta3,
            "alpha1": alpha1,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
        }
        _check_group(defaults)
        _use_python_numbers(defaults)
        super().__init__(params, defaults)

        # S and the η list of the last step. A dict entry, unlike an attribute set on
        # the optimizer, is written back by torch.compile (checked with torch 2.13).
        self._last_step: dict[str, Any] = {"velocity_sq_norm": None, "effective_lrs": None}

    @property
    def velocity_sq_norm(self) -> Tensor | None:
        """S of the last step as a 0-d tensor, or ``None`` before the first step."""
        return self._last_step["velocity_sq_norm"]

    @property
    def effective_lrs(self) -> list[Tensor] | None:
        """η of each parameter group in the last step as 0-d tensors, or ``None`` before it."""
        return self._last_step["effective_lrs"]

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        # load_state_dict ends here too: S and η of a step taken before the load do
        # not describe the loaded state, so they read None until the next step.
        self._last_step = {"velocity_sq_norm": None, "effective_lrs": None}
        # A checkpoint of another optimizer, torch.optim.AdamW for example, has no
        # beta3 or alpha1: those come from this optimizer's constructor arguments.
        defaults = getattr(self, "defaults", {})
        for group in self.param_groups:
            for key in ("beta3", "alpha1"):
                group.setdefault(key, defaults.get(key, DEFAULTS[key]))
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict`, or by :class:`torch.optim.AdamW`.

        An AdamW checkpoint brings its moments, step counts and hyperparameters.
        β3 and α1, which it lacks, come from this optimizer's constructor. So do
        ``foreach`` and ``capturable``, because they set how this optimizer runs,
        not the state of training. Each step count is placed where this optimizer
        reads it: on the host, or on its parameter's device when capturable.

        The checkpoint's hyperparameters are validated before anything loads, so
        an invalid checkpoint raises with the optimizer unchanged. AdamW's
        ``amsgrad``, ``fused`` and ``differentiable`` keys are dropped, and so is
        AMSGrad's running maximum, with a warning.
        """
        execution = [
            {key: group[key] for key in ("foreach", "capturable")} for group in self.param_groups
        ]
        saved_groups = state_dict.get("param_groups", [])
        for index, (group, settings) in enumerate(zip(saved_groups, execution, strict=False)):
            _check_saved_group(index, group, self.defaults, settings)
        for key, saved_state in state_dict.get("state", {}).items():
            _check_saved_state(key, saved_state)

        super().load_state_dict(state_dict)
        for group, settings in zip(self.param_groups, execution, strict=True):
            group.update(settings)
            for key in _DROPPED_ON_LOAD:
                group.pop(key, None)
            for p in group["params"]:
                state = self.state.get(p)
                if state:
                    _fit_loaded_state(state, p, group["capturable"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group, which joins the shared S from the next step on.

        The group's hyperparameters are validated before anything is added, so an
        invalid group leaves the optimizer as it was.
        """
        if isinstance(param_group, dict):
            _check_group({**self.defaults, **param_group})
            _use_python_numbers(param_group)
        super().add_param_group(param_group)

    def _init_groups(self) -> list[dict[str, Any]]:
        """Collect, per group, the tensors that have a gradient, creating state lazily.

        Every gradient and existing state is checked before any state is created,
        so a sparse gradient, or a parameter cast to another dtype after its state
        was created, raises with the optimizer unchanged.
        """
        states = self.state
        for group_index, group in enumerate(self.param_groups):
            for param_index, p in enumerate(group["params"]):
                grad = p.grad
                if grad is None:
                    continue
                if grad.layout is not torch.strided:
                    raise RuntimeError(
                        "VRAdam does not support sparse gradients: parameter "
                        f"{param_index} of param group {group_index} received a gradient "
                        f"with layout={grad.layout}. Use a dense gradient, for example "
                        "nn.Embedding(..., sparse=False)."
                    )
                # Moments of another dtype would be updated silently in that dtype.
                state = states.get(p)
                if state and "exp_avg" in state and state["exp_avg"].dtype is not p.dtype:
                    raise RuntimeError(
                        f"Invalid state: parameter {param_index} of param group "
                        f"{group_index} is {p.dtype}, but its moments are "
                        f"{state['exp_avg'].dtype}, so the model was cast after the first "
                        "step. Cast the model before creating the optimizer, or call "
                        "optimizer.load_state_dict(optimizer.state_dict()) to cast the state."
                    )

        collected = []
        for group in self.param_groups:
            tensors: dict[str, list[Tensor]] = {
                "params": [],
                "grads": [],
                "exp_avgs": [],
                "exp_avg_sqs": [],
                "state_steps": [],
            }
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "exp_avg" not in state:
                    # Like torch.optim.AdamW, t lives on the host as a float tensor
                    # unless the group is capturable, so in eager mode the bias
                    # corrections cost no device work.
                    step_device = _local(p).device if group["capturable"] else None
                    state["step"] = torch.zeros((), dtype=_step_dtype(), device=step_device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                tensors["params"].append(p)
                tensors["grads"].append(p.grad)
                tensors["exp_avgs"].append(state["exp_avg"])
                tensors["exp_avg_sqs"].append(state["exp_avg_sq"])
                tensors["state_steps"].append(state["step"])
            collected.append(tensors)
        return collected

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step and record S and every group's η.

        Args:
            closure (Callable, optional): a closure that reevaluates the model and
                returns the loss. It runs with gradients enabled.
        """
        self._check_graph_capture()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        collected = self._init_groups()
        foreach_per_group = [
            _use_foreach(group["foreach"], tensors["params"])
            for group, tensors in zip(self.param_groups, collected, strict=True)
        ]

        # Step 1: moments of every tensor in every group, before S can be known.
        for group, tensors, foreach in zip(
            self.param_groups, collected, foreach_per_group, strict=True
        ):
            beta1, beta2 = group["betas"]
            update_moments(
                tensors["grads"],
                tensors["exp_avgs"],
                tensors["exp_avg_sqs"],
                tensors["state_steps"],
                beta1=beta1,
                beta2=beta2,
                maximize=group["maximize"],
                foreach=foreach,
            )

        # Step 2: one S over all groups, because the gate bounds the speed of the
        # whole iterate, not of each group separately.
        sq_norm = velocity_sq_norm(
            [m for tensors in collected for m in tensors["exp_avgs"]],
            foreach=all(foreach_per_group),
            device=self._first_device(),
        )

        # Step 3: η per group, since each group has its own lr, beta3 and alpha1.
        lrs = [
            effective_lr(sq_norm, lr=group["lr"], beta3=group["beta3"], alpha1=group["alpha1"])
            for group in self.param_groups
        ]

        # Step 4: the decoupled decay and the Adam update, scaled by η.
        for group, tensors, lr, foreach in zip(
            self.param_groups, collected, lrs, foreach_per_group, strict=False
        ):
            beta1, beta2 = group["betas"]
            apply_update(
                tensors["params"],
                tensors["exp_avgs"],
                tensors["exp_avg_sqs"],
                tensors["state_steps"],
                lr,
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                foreach=foreach,
                capturable=group["capturable"],
            )

        self._last_step["velocity_sq_norm"] = sq_norm
        self._last_step["effective_lrs"] = lrs
        return loss

    def _check_graph_capture(self) -> None:
        """Raise if a CUDA graph is being captured and a group keeps t on the host.

        Captured host values would be replayed unchanged, so the bias corrections
        would stay those of the capture step.
        """
        if torch.compiler.is_compiling() or not torch.cuda.is_available():
            return
        if not torch.cuda.is_current_stream_capturing():
            return
        # NOTE: only GPU tests cover a real capture, and they skip without a GPU. On
        # the CPU, the meta-device tests show that a capturable step reads no value.
        for index, group in enumerate(self.param_groups):
            if not group["capturable"]:
                raise RuntimeError(
                    "VRAdam.step() is being captured in a CUDA graph, but param group "
                    f"{index} has capturable={group['capturable']!r}. Construct the "
                    "optimizer with capturable=True to keep the step counts on the device."
                )

    def _first_device(self) -> torch.device:
        for group in self.param_groups:
            for p in group["params"]:
                return _local(p).device
        return torch.device("cpu")


def vradam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    beta3: float,
    alpha1: float,
    eps: float,
    weight_decay: float,
    maximize: bool = False,
    foreach: bool | None = None,
    capturable: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""Take one VRAdam step in place over tensors that the caller manages.

    The tensors form one parameter group, and S is taken over all of them. For
    several groups with one shared S, call the four step functions in order, as
    :meth:`VRAdam.step` does. ``state_steps`` contains each tensor's step count t as
    a 0-d float tensor, zero before the first step: on the host, or on the
    parameter's device with ``capturable=True``. ``exp_avgs`` and ``exp_avg_sqs``
    start as zeros shaped like the parameters.

    The lists must have one entry per tensor. Every gradient and moment must be a
    dense tensor with its parameter's shape, dtype and device, and every step
    count a 0-d float32 or float64 tensor. Otherwise ``ValueError`` is raised
    before any tensor changes.
    Hyperparameters are not validated here, as in ``torch.optim``'s functional
    forms: :class:`VRAdam` validates them once, on construction.

    Returns:
        S and η of this step, as 0-d tensors.
    """
    _check_functional_inputs(params, grads, exp_avgs, exp_avg_sqs, state_steps, capturable)
    foreach = _use_foreach(foreach, params)
    update_moments(
        grads,
        exp_avgs,
        exp_avg_sqs,
        state_steps,
        beta1=beta1,
        beta2=beta2,
        maximize=maximize,
        foreach=foreach,
    )
    sq_norm = velocity_sq_norm(exp_avgs, foreach=foreach)
    lr = effective_lr(sq_norm, lr=lr, beta3=beta3, alpha1=alpha1)
    apply_update(
        params,
        exp_avgs,
        exp_avg_sqs,
        state_steps,
        lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        foreach=foreach,
        capturable=capturable,
    )
    return sq_norm, lr


def _check_functional_inputs(
    params, grads, exp_avgs, exp_avg_sqs, state_steps, capturable: bool
) -> None:
    """Raise ValueError, before any tensor changes, unless the lists line up."""
    lists = {
        "params": params,
        "grads": grads,
        "exp_avgs": exp_avgs,
        "exp_avg_sqs": exp_avg_sqs,
        "state_steps": state_steps,
    }
    lengths = {name: len(values) for name, values in lists.items()}
    if len(set(lengths.values())) != 1:
        received = ", ".join(f"{name}={length}" for name, length in lengths.items())
        raise ValueError(
            f"Invalid lists: expected one entry per tensor in each, received {received}."
        )
    for index, param in enumerate(params):
        for name in ("grads", "exp_avgs", "exp_avg_sqs"):
            value = lists[name][index]
            if not isinstance(value, Tensor) or value.shape != param.shape:
                received = (
                    tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                )
                hint = " Leave tensors without a gradient out of every list."
                raise ValueError(
                    f"Invalid {name}[{index}]: expected a tensor of shape "
                    f"{tuple(param.shape)}, received {received}."
                    + (hint if name == "grads" else "")
                )
            device = _local(param).device
            if (
                value.layout != torch.strided
                or value.dtype != param.dtype
                or _local(value).device != device
            ):
                raise ValueError(
                    f"Invalid {name}[{index}]: expected a dense {param.dtype} tensor on "
                    f"{device} like its parameter, received a {value.layout} "
                    f"{value.dtype} tensor on {_local(value).device}."
                )
        step_t = state_steps[index]
        # float16 and bfloat16 stop counting exactly at 2048 and 256.
        if (
            not isinstance(step_t, Tensor)
            or step_t.ndim != 0
            or step_t.dtype not in (torch.float32, torch.float64)
        ):
            received = (
                f"a tensor of shape {tuple(step_t.shape)} and dtype {step_t.dtype}"
                if isinstance(step_t, Tensor)
                else type(step_t).__name__
            )
            raise ValueError(
                f"Invalid state_steps[{index}]: expected a 0-d float32 or float64 "
                f"tensor, received {received}."
            )
        if capturable and step_t.device != _local(param).device:
            raise ValueError(
                f"Invalid state_steps[{index}]: with capturable=True it must be on its "
                f"parameter's device {_local(param).device}, received a tensor on "
                f"{step_t.device}."
            )


def update_moments(
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    beta1: float,
    beta2: float,
    maximize: bool = False,
    foreach: bool = False,
) -> None:
    """Step 1: advance t and the moments m and v of each tensor by its gradient, in place."""
    grads, exp_avgs, exp_avg_sqs = _real_local(grads, exp_avgs, exp_avg_sqs)
    if foreach:
        _multi_tensor_update_moments(
            grads, exp_avgs, exp_avg_sqs, state_steps, beta1=beta1, beta2=beta2, maximize=maximize
        )
    else:
        _single_tensor_update_moments(
            grads, exp_avgs, exp_avg_sqs, state_steps, beta1=beta1, beta2=beta2, maximize=maximize
        )


def velocity_sq_norm(
    exp_avgs: Sequence[Tensor],
    *,
    foreach: bool = False,
    device: torch.device | str | None = None,
) -> Tensor:
    """Step 2: S = Σ ‖m‖², the squared L2 norm of every raw first moment.

    S is accumulated in float32, or in float64 when a moment is float64: never in
    float16 or bfloat16, where ‖m‖² overflows or a running sum stops growing. For
    a sharded tensor (a DTensor, as under FSDP2) each rank sums the squares of its
    local shard, and one all-reduce per sharded mesh dimension makes S the norm of
    the whole model, so every rank computes the same η. Plain tensors (DDP keeps
    full replicas) add no communication.

    Returns:
        S as a 0-d tensor on the device of the first moment (``device`` if there
        is none, CPU by default).
    """
    if len(exp_avgs) == 0:
        return torch.zeros((), dtype=torch.float32, device=device)

    by_sharding = _split_by_sharding(exp_avgs)
    acc_dtype = _accumulation_dtype(t for ts in by_sharding.values() for t in ts)
    out_device = next(iter(by_sharding.values()))[0].device

    total = torch.zeros((), dtype=acc_dtype, device=out_device)
    for sharding, tensors in by_sharding.items():
        tensors = _real(tensors)
        if foreach:
            partial = _multi_tensor_sq_norm(tensors, acc_dtype, out_device)
        else:
            partial = _single_tensor_sq_norm(tensors, acc_dtype, out_device)
        if sharding is not None:
            partial = _all_reduce_over_shards(partial, sharding)
        total = total + partial
    return total


def effective_lr(
    velocity_sq_norm: Tensor, *, lr: float | Tensor, beta3: float, alpha1: float
) -> Tensor:
    """Step 3: η = α0 / (1 + min(β3·S, α1)), one group's gated step size.

    ``torch.clamp`` keeps the gate on the device and behaves like IEEE minimum:
    a NaN in S propagates into η and S = inf saturates the gate at α1.
    """
    gate = torch.clamp(beta3 * velocity_sq_norm, max=alpha1)
    return lr / (1 + gate)


def apply_update(
    params: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    lr: Tensor,
    *,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    foreach: bool = False,
    capturable: bool = False,
) -> None:
    """Step 4: decay θ by η·λ and move it by η·m̂/(√v̂ + ε), in place, with ``lr`` = η.

    With ``capturable=True`` the bias corrections are computed on the device of
    each step count. Otherwise each count is read as a Python float.
    """
    params, exp_avgs, exp_avg_sqs = _real_local(params, exp_avgs, exp_avg_sqs)
    if foreach:
        _multi_tensor_apply_update(
            params,
            exp_avgs,
            exp_avg_sqs,
            state_steps,
            lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            capturable=capturable,
        )
    else:
        _single_tensor_apply_update(
            params,
            exp_avgs,
            exp_avg_sqs,
            state_steps,
            lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            capturable=capturable,
        )


# For-loop bodies: the ground truth that the foreach bodies must match.


def _single_tensor_update_moments(
    grads, exp_avgs, exp_avg_sqs, state_steps, *, beta1, beta2, maximize
):
    for grad, exp_avg, exp_avg_sq, step_t in zip(
        grads, exp_avgs, exp_avg_sqs, state_steps, strict=True
    ):
        if maximize:
            grad = -grad
        step_t += 1
        # Not lerp_: it computes m + w·(g − m), which turns m = ±inf into NaN.
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)


def _single_tensor_sq_norm(exp_avgs, acc_dtype, device):
    norms = []
    for exp_avg in exp_avgs:
        norm = torch.linalg.vector_norm(exp_avg, dtype=acc_dtype)
        norms.append(norm if norm.device == device else norm.to(device))
    return _sum_of_squares(norms)


def _single_tensor_apply_update(
    params, exp_avgs, exp_avg_sqs, state_steps, lr, *, beta1, beta2, eps, weight_decay, capturable
):
    # A traced or device-resident step count cannot be read on the host.
    steps_on_host = not (capturable or torch.compiler.is_compiling())
    lr_copies = {lr.device: lr}
    decay = 1 - lr * weight_decay if _nonzero(weight_decay) else None
    decay_copies = None if decay is None else {decay.device: decay}
    # In eager mode the step scalars are made once per distinct (device, t), so
    # the 0-d product with η costs one small device op per group, not per tensor.
    terms_cache: dict[tuple[torch.device, float], tuple[Tensor, float]] = {}
    for param, exp_avg, exp_avg_sq, step_t in zip(
        params, exp_avgs, exp_avg_sqs, state_steps, strict=True
    ):
        device = param.device
        if decay_copies is not None:
            param.mul_(_on_device(decay_copies, device))

        lr_here = _on_device(lr_copies, device)
        if steps_on_host:
            key = (device, step_t.item())
            if key not in terms_cache:
                terms_cache[key] = _step_terms(lr_here, key[1], beta1, beta2, eps)
            step_size, denom_eps = terms_cache[key]
        else:
            step = step_t.to(_terms_dtype(step_t.device))
            step_size, denom_eps = _step_terms(lr_here, step, beta1, beta2, eps)

        update = exp_avg_sq.sqrt().add_(denom_eps)
        torch.div(exp_avg, update, out=update)
        param.addcmul_(update, step_size)


# Foreach bodies: the same operations over tensors bucketed by device and dtype.


def _multi_tensor_update_moments(
    grads, exp_avgs, exp_avg_sqs, state_steps, *, beta1, beta2, maximize
):
    if len(grads) == 0:
        return
    buckets = Optimizer._group_tensors_by_device_and_dtype(
        [grads, exp_avgs, exp_avg_sqs, state_steps]
    )
    for (device_grads, device_exp_avgs, device_exp_avg_sqs, device_steps), _ in buckets.values():
        if maximize:
            device_grads = torch._foreach_neg(device_grads)
        torch._foreach_add_(device_steps, 1)
        torch._foreach_mul_(device_exp_avgs, beta1)
        torch._foreach_add_(device_exp_avgs, device_grads, alpha=1 - beta1)
        torch._foreach_mul_(device_exp_avg_sqs, beta2)
        torch._foreach_addcmul_(device_exp_avg_sqs, device_grads, device_grads, 1 - beta2)


def _multi_tensor_sq_norm(exp_avgs, acc_dtype, device):
    buckets = Optimizer._group_tensors_by_device_and_dtype([list(exp_avgs)])
    sq_norms = []
    for (device_exp_avgs,), _ in buckets.values():
        norms = torch._foreach_norm(device_exp_avgs, 2, dtype=acc_dtype)
        sq_norms.append(_sum_of_squares(norms).to(device))
    return torch.stack(sq_norms).sum()


def _multi_tensor_apply_update(
    params, exp_avgs, exp_avg_sqs, state_steps, lr, *, beta1, beta2, eps, weight_decay, capturable
):
    if len(params) == 0:
        return
    buckets = Optimizer._group_tensors_by_device_and_dtype(
        [params, exp_avgs, exp_avg_sqs, state_steps]
    )
    steps_on_host = not (capturable or torch.compiler.is_compiling())
    lr_copies = {lr.device: lr}
    decay = 1 - lr * weight_decay if _nonzero(weight_decay) else None
    decay_copies = None if decay is None else {decay.device: decay}
    for (device_params, device_exp_avgs, device_exp_avg_sqs, device_steps), _ in buckets.values():
        device = device_params[0].device
        if decay_copies is not None:
            torch._foreach_mul_(device_params, _on_device(decay_copies, device))

        if steps_on_host:
            terms = [_step_terms(1.0, step_t.item(), beta1, beta2, eps) for step_t in device_steps]
            step_scales = [scale for scale, _ in terms]
            denom_eps = [denom_eps for _, denom_eps in terms]
        else:
            # One stacked computation for the bucket, then a 0-d view per tensor.
            steps = torch.stack(device_steps).to(_terms_dtype(device_steps[0].device))
            step_scales, denom_eps = _step_terms(1.0, steps, beta1, beta2, eps)
            step_scales, denom_eps = step_scales.unbind(), denom_eps.unbind()

        denoms = torch._foreach_sqrt(device_exp_avg_sqs)
        torch._foreach_add_(denoms, denom_eps)
        if device_params[0].dtype == torch.float16:
            _add_scaled_quotient_float16(
                device_params, device_exp_avgs, denoms, _on_device(lr_copies, device), step_scales
            )
            continue

        # No foreach op takes both a tensor scalar (η) and a list of per-tensor
        # scalars, so η divides the denominators in place and the step scalars go
        # to addcdiv_. Scaling m instead would allocate a second full-size buffer.
        # With η = 0 the quotient is m/inf = 0, as η·m̂/(√v̂ + ε) is.
        torch._foreach_div_(denoms, _on_device(lr_copies, device))
        if steps_on_host:
            torch._foreach_addcdiv_(device_params, device_exp_avgs, denoms, step_scales)
        else:
            # addcdiv_ takes per-tensor scalars only as Python numbers, so tensor
            # scalars divide the denominators first.
            torch._foreach_div_(denoms, step_scales)
            torch._foreach_addcdiv_(device_params, device_exp_avgs, denoms)


def _add_scaled_quotient_float16(params, exp_avgs, denoms, lr, step_scales):
    """Add (η·step_scale)·(m/denom) to each float16 parameter, as the for-loop body does.

    The general path divides the denominators by η and by the step scale, which
    can pass float16's maximum of 65504, and m/inf = 0 drops the update. Forming
    1/denom instead overflows when v underflows to 0, and η/denom underflows
    when η is tiny. m/denom stays near 1, and each scale η·step_scale stays a
    0-d tensor of S's dtype, so addcmul_ rounds the product to float16 once.
    This costs one more full-size buffer, in float16 only.
    """
    quotients = torch._foreach_div(exp_avgs, denoms)
    scales = torch._foreach_mul([lr] * len(params), step_scales)
    torch._foreach_addcmul_(params, quotients, scales)


# Helpers.


def _check_group(group: dict[str, Any]) -> None:
    """Raise if a parameter group's hyperparameters are invalid; change nothing."""
    # As constructor keywords these raise TypeError. In a group dict they would
    # otherwise be ignored.
    for key in _ADAMW_ONLY_KEYS:
        if group.get(key):
            raise ValueError(
                f"Invalid {key}: VRAdam has no {key} option, received {key}={group[key]!r} "
                "in a param group. Remove the key."
            )

    betas = group["betas"]
    message = f"Invalid betas: expected a pair (beta1, beta2), received betas={betas!r}."
    if not isinstance(betas, (tuple, list)):
        raise TypeError(message)
    if len(betas) != 2:
        raise ValueError(message)

    # Only lr may be a tensor, as in torch.optim.AdamW: the other hyperparameters
    # enter foreach ops as Python scalars.
    named = {"betas[0]": betas[0], "betas[1]": betas[1]}
    named.update({key: group[key] for key in ("beta3", "alpha1", "eps", "weight_decay")})
    for name, value in named.items():
        if isinstance(value, Tensor):
            raise TypeError(
                f"Invalid {name}: expected a Python float, received a tensor ({value!r}); "
                "only lr may be a tensor."
            )

    lr = group["lr"]
    if isinstance(lr, Tensor):
        if lr.ndim != 0 or not lr.is_floating_point():
            raise ValueError(
                "Invalid lr: a tensor lr must be 0-d and floating-point, received a "
                f"tensor of shape {tuple(lr.shape)} and dtype {lr.dtype}."
            )
        # A CPU tensor is read without a device sync, so its value is checked too.
        # NOTE: an lr tensor on an accelerator is not range-checked.
        if lr.device.type == "cpu":
            validate_hyperparams(lr=lr.item(), names={"lr": "lr"})

    foreach = group["foreach"]
    if foreach is not None and not isinstance(foreach, bool):
        raise TypeError(
            f"Invalid foreach: expected None, True or False, received foreach={foreach!r}."
        )
    capturable = group["capturable"]
    if not isinstance(capturable, bool):
        raise TypeError(
            f"Invalid capturable: expected True or False, received capturable={capturable!r}."
        )
    validate_hyperparams(
        lr=lr,
        beta1=betas[0],
        beta2=betas[1],
        beta3=group["beta3"],
        alpha1=group["alpha1"],
        eps=group["eps"],
        weight_decay=group["weight_decay"],
        maximize=group["maximize"],
        names=_TORCH_NAMES,
    )


def _use_python_numbers(group: dict[str, Any]) -> None:
    """Replace numpy scalars and 0-d arrays among the hyperparameters with Python floats.

    ``torch.load(weights_only=True)`` cannot unpickle numpy objects, so a group
    that kept ``lr=np.float64(1e-3)`` would save a checkpoint that does not load.
    ``betas`` becomes a tuple.
    """

    def plain(value: Any) -> Any:
        return float(value) if isinstance(value, (np.generic, np.ndarray)) else value

    for key in ("lr", "beta3", "alpha1", "eps", "weight_decay"):
        if key in group:
            group[key] = plain(group[key])
    if "betas" in group:
        group["betas"] = tuple(plain(beta) for beta in group["betas"])


def _check_saved_group(
    index: int, group: dict[str, Any], defaults: dict[str, Any], settings: dict[str, Any]
) -> None:
    """Raise if param group ``index`` of a checkpoint cannot load; change nothing.

    ``settings`` are the ``foreach`` and ``capturable`` values that replace the
    checkpoint's.

    Warn about keys whose meaning VRAdam cannot keep: AMSGrad's running maximum,
    and Adam's L2 penalty, which VRAdam would apply as decoupled decay.
    """
    where = f"param group {index} of the checkpoint"
    missing = [key for key in _REQUIRED_ON_LOAD if key not in group]
    if missing:
        raise ValueError(
            f"Invalid checkpoint: {where} lacks {', '.join(map(repr, missing))}, so it does "
            "not come from VRAdam or an Adam-like optimizer."
        )
    hyperparams = {k: v for k, v in group.items() if k not in _DROPPED_ON_LOAD}
    try:
        _check_group({**defaults, **hyperparams, **settings})
    except (TypeError, ValueError) as error:
        raise type(error)(f"{error} The value comes from {where}.") from error

    if group.get("amsgrad"):
        warnings.warn(
            f"{where.capitalize()} has amsgrad=True, but VRAdam has no AMSGrad: its "
            "running maximum max_exp_avg_sq is dropped.",
            stacklevel=3,
        )
    if group.get("decoupled_weight_decay") is False and group["weight_decay"] != 0:
        warnings.warn(
            f"{where.capitalize()} comes from Adam with an L2 penalty of weight_decay="
            f"{group['weight_decay']!r}. VRAdam applies that value as decoupled weight "
            "decay, as AdamW does.",
            stacklevel=3,
        )


def _fit_loaded_state(state: dict[str, Any], param: Tensor, capturable: bool) -> None:
    """Drop AMSGrad's maximum, cast the moments to ``param``'s dtype and place t.

    t goes where the step reads it: on the host, or on ``param``'s device when
    ``capturable``.
    """
    state.pop("max_exp_avg_sq", None)
    # torch casts the moments of floating-point parameters only.
    for key in ("exp_avg", "exp_avg_sq"):
        if key in state and state[key].dtype != param.dtype:
            state[key] = state[key].to(param.dtype)

    if "step" not in state:
        return
    step = state["step"]
    # Older torch releases saved t as a Python number, and torch.optim.Adam
    # converts it to a tensor as well.
    if not isinstance(step, Tensor) or not step.is_floating_point():
        step = torch.as_tensor(step, dtype=_step_dtype())
    # A fused AdamW keeps t on the device even when not capturable, and the host
    # path would then wait for the device once per tensor.
    device = _local(param).device if capturable else "cpu"
    state["step"] = step.to(device)


def _check_saved_state(key: Any, state: Any) -> None:
    """Raise if the checkpoint's state entry ``key`` has only part of Adam's state.

    An entry needs all of ``step``, ``exp_avg`` and ``exp_avg_sq``, or none of them
    (the next step then creates them). A checkpoint of another optimizer with
    Adam's hyperparameters, such as torch.optim.Adamax, would otherwise load and
    then fail at every step.
    """
    where = f"state entry {key!r} of the checkpoint"
    if not isinstance(state, dict):
        raise ValueError(f"Invalid checkpoint: {where} is a {type(state).__name__}, not a dict.")
    names = ("step", "exp_avg", "exp_avg_sq")
    if not any(name in state for name in names):
        return
    missing = [name for name in names if name not in state]
    if missing:
        raise ValueError(
            f"Invalid checkpoint: {where} lacks {', '.join(map(repr, missing))}, so it does "
            "not come from VRAdam or an Adam-like optimizer. Load a checkpoint saved by "
            "VRAdam, torch.optim.AdamW or torch.optim.Adam."
        )
    for name in ("exp_avg", "exp_avg_sq"):
        if not isinstance(state[name], Tensor):
            raise ValueError(
                f"Invalid checkpoint: {name} in {where} is a {type(state[name]).__name__}, "
                "not a tensor."
            )
    step = state["step"]
    is_scalar_tensor = isinstance(step, Tensor) and step.ndim == 0 and not step.is_complex()
    is_number = isinstance(step, (int, float)) and not isinstance(step, bool)
    if not (is_scalar_tensor or is_number):
        raise ValueError(
            f"Invalid checkpoint: step in {where} must be a number or a 0-d real "
            f"tensor, but it is {step!r}."
        )


# On CPU the foreach body wins only while tensors are small, because each foreach
# op streams every tensor through memory instead of one cache-sized tensor at a
# time. benchmarks/torch_foreach_threshold.py measured (torch 2.13, one thread,
# 2M float32 parameters) foreach/for-loop step time of 0.86 at 1024 elements per
# tensor, 0.95 at 4096, 1.00 at 16384 and 1.12 at 50176.
_CPU_FOREACH_MAX_MEAN_NUMEL = 8192


def _use_foreach(foreach: bool | None, params: list[Tensor]) -> bool:
    if foreach is not None:
        return foreach
    _, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    if foreach or not params or torch.compiler.is_compiling():
        return foreach
    if all(_local(p).device.type == "cpu" for p in params):
        mean_numel = sum(p.numel() for p in params) / len(params)
        return mean_numel <= _CPU_FOREACH_MAX_MEAN_NUMEL
    return False


def _step_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _nonzero(weight_decay: float | Tensor) -> bool:
    # A tensor weight decay is applied as given: comparing it would sync.
    return isinstance(weight_decay, Tensor) or weight_decay != 0


def _sum_of_squares(norms: list[Tensor]) -> Tensor:
    stacked = torch.stack(norms)
    return torch.dot(stacked, stacked)


def _on_device(copies: dict[torch.device, Tensor], device: torch.device) -> Tensor:
    """Return the 0-d tensor of ``copies`` on ``device``, copying it there on first use.

    ``copies`` starts as ``{t.device: t}``. It is a plain dict, not a dict subclass,
    because torch.compile in torch 2.4 cannot construct a dict subclass.
    """
    if device not in copies:
        copies[device] = next(iter(copies.values())).to(device, non_blocking=True)
    return copies[device]


def _step_terms(lr, step, beta1: float, beta2: float, eps: float):
    """Return −η·√(1 − β2^t)/(1 − β1^t) and ε·√(1 − β2^t), the scalars of the update.

    m̂/(√v̂ + ε) = (√(1 − β2^t)/(1 − β1^t)) · m/(√v + ε·√(1 − β2^t)), so both bias
    corrections fold into these two scalars, which saves two full-size passes.
    ``step`` is a Python float when t lives on the host, and a tensor of t values
    when it is traced or lives on the device.
    """
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    return lr * (-bias_correction2_sqrt / bias_correction1), eps * bias_correction2_sqrt


def _terms_dtype(device: torch.device) -> torch.dtype:
    """Return the dtype for bias corrections computed on ``device``: float64 where it exists.

    In float32, β2 = 0.999 rounds to 0.99900001, so 1 − β2 would be off by 1.3e-5
    relative at t = 1. The host path computes in Python floats, which are float64.
    """
    return torch.float32 if device.type == "mps" else torch.float64


def _is_dtensor(tensor: Tensor) -> bool:
    return DTensor is not None and isinstance(tensor, DTensor)


def _local(tensor: Tensor) -> Tensor:
    """Return a DTensor's local shard (which aliases it), or the tensor itself.

    Every operation of the step except S is elementwise, so it runs on shards as is.
    """
    return tensor.to_local() if _is_dtensor(tensor) else tensor


def _real(tensors: Iterable[Tensor]) -> list[Tensor]:
    return [torch.view_as_real(t) if t.is_complex() else t for t in tensors]


def _real_local(*tensor_lists: list[Tensor]) -> Sequence[list[Tensor]]:
    """Return the lists with every tensor as its local, real view.

    The lists are parallel (a parameter, its gradient, its moments), so the first
    list decides whether any view is needed. Usually none is, and the lists pass
    through untouched.
    """
    first = tensor_lists[0]
    plain = all(type(t) in _PLAIN_TYPES for t in first)
    if plain and not any(t.is_complex() for t in first):
        return tensor_lists
    return [_real(_local(t) for t in tensors) for tensors in tensor_lists]


def _accumulation_dtype(tensors: Iterable[Tensor]) -> torch.dtype:
    wide = any(t.dtype in (torch.float64, torch.complex128) for t in tensors)
    return torch.float64 if wide else torch.float32


def _split_by_sharding(exp_avgs: Sequence[Tensor]) -> dict[Any, list[Tensor]]:
    """Bucket local tensors by the mesh dimensions over which their S must be summed.

    The key is ``None`` for plain tensors, and ``(mesh, dims)`` for a DTensor
    sharded over mesh dimensions ``dims``. A replicated dimension is left out
    because every rank along it already has the same values.
    """
    buckets: dict[Any, list[Tensor]] = {}
    for exp_avg in exp_avgs:
        key = None
        if _is_dtensor(exp_avg):
            dims = tuple(i for i, p in enumerate(exp_avg.placements) if p.is_shard())
            if any(p.is_partial() for p in exp_avg.placements):
                raise ValueError(
                    "VRAdam cannot take the norm of a DTensor with a Partial placement, "
                    f"received placements={exp_avg.placements}."
                )
            key = (exp_avg.device_mesh, dims) if dims else None
            exp_avg = exp_avg.to_local()
        # Not dict.setdefault, which torch.compile in torch 2.4 cannot trace.
        if key not in buckets:
            buckets[key] = []
        buckets[key].append(exp_avg)
    return buckets


def _all_reduce_over_shards(partial: Tensor, sharding: tuple[Any, tuple[int, ...]]) -> Tensor:
    import torch.distributed._functional_collectives as funcol

    mesh, dims = sharding
    for dim in dims:
        partial = funcol.all_reduce(partial, "sum", (mesh, dim))
    return partial
