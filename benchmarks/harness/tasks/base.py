"""Task interface, the result record of one run, and the shared torch training loop."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tqdm.auto import tqdm

from harness.optimizers import OptimizerSpec, read_gate


@dataclass
class RunResult:
    """Everything one training run measured, in plain Python types."""

    task: str
    optimizer: str
    hparams: dict[str, float]
    seed: int
    steps: int
    val: float  # the task's metric on the validation split, nan if diverged
    test: float  # the same metric on the test split, nan if diverged
    diverged: bool = False
    extra: dict[str, float] = field(default_factory=dict)  # secondary test metrics
    train_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, train loss)
    val_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, val metric)
    # (step, S, η of the first parameter group), VRAdam only
    gate_curve: list[tuple[int, float, float]] = field(default_factory=list)
    seconds: float = 0.0  # wall time, for information only; never used to compare
    # Large outputs kept in memory for plots and left out of the JSON, e.g. samples.
    artifacts: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Return the result as JSON-ready data; nan becomes None."""

        def clean(x):
            return None if isinstance(x, float) and not math.isfinite(x) else x

        return {
            "task": self.task,
            "optimizer": self.optimizer,
            "hparams": self.hparams,
            "seed": self.seed,
            "steps": self.steps,
            "val": clean(self.val),
            "test": clean(self.test),
            "diverged": self.diverged,
            "extra": {k: clean(v) for k, v in self.extra.items()},
            "train_curve": [[s, clean(v)] for s, v in self.train_curve],
            "val_curve": [[s, clean(v)] for s, v in self.val_curve],
            "gate_curve": [[s, clean(a), clean(b)] for s, a, b in self.gate_curve],
            "seconds": round(self.seconds, 3),
        }


class Task:
    """A benchmark task: fixed numpy data, a model, a metric and a budget per tier.

    Subclasses set the class attributes and implement :meth:`prepare` and
    :meth:`run`. Lower metric values are better for every task.
    """

    name: str = ""
    title: str = ""
    metric: str = ""  # what ``RunResult.val`` and ``.test`` measure, with units
    lr_grid: ClassVar[Mapping[str, Sequence[float]]] = {}  # per tier, for adaptive methods
    optimizers: ClassVar[Mapping[str, Sequence[str]]] = {}  # registry names per tier
    seeds: int = 3  # default number of seeds at the chosen settings
    # NOTE: every task builds torch models only. Another framework's optimizers need
    # a task runner with the same model in that framework. The numpy data, batch
    # schedules and metrics can be reused as they are.
    framework: str = "torch"

    def __init__(self, tier: str):
        if tier not in ("quick", "full", "tiny"):
            raise ValueError(f"tier must be 'quick', 'full' or 'tiny', received {tier!r}")
        self.tier = tier
        self.config = self.make_config(tier)

    def make_config(self, tier: str) -> Any:
        raise NotImplementedError

    def prepare(self) -> Any:
        """Load or build the task's data as numpy arrays, identical for every run."""
        raise NotImplementedError

    def run(
        self, data: Any, spec: OptimizerSpec, hparams: dict[str, float], seed: int
    ) -> RunResult:
        raise NotImplementedError


def format_hparams(hparams: Mapping[str, float]) -> str:
    """Return ``lr=0.003 beta3=1`` style text for progress bars and tables."""
    return " ".join(f"{k}={v:g}" for k, v in hparams.items())


def train_torch(
    *,
    task: str,
    spec: OptimizerSpec,
    hparams: dict[str, float],
    seed: int,
    param_groups: Sequence[Mapping[str, Any]],
    loss_at: Callable[[int], Any],
    evaluate: Callable[[], float],
    steps: int,
    eval_every: int,
    log_every: int = 10,
) -> tuple[RunResult, Any]:
    """Train for a fixed number of steps and return the result and the optimizer.

    ``loss_at(step)`` returns the training loss of the step's batch as a tensor;
    ``evaluate()`` returns the validation metric. A non-finite training loss stops
    the run and marks it diverged. The caller fills in ``val`` and ``test``.
    """
    lr = hparams["lr"]
    extra = {k: v for k, v in hparams.items() if k != "lr"}
    groups = [dict(g) for g in param_groups]
    for group in groups:
        # A group may ask for a multiple of the tuned lr, e.g. a GFlowNet's log Z.
        scale = group.pop("lr_scale", None)
        if scale is not None:
            group["lr"] = lr * scale
    optimizer = spec.factory(groups, lr, **extra)

    result = RunResult(
        task=task,
        optimizer=spec.name,
        hparams=dict(hparams),
        seed=seed,
        steps=steps,
        val=math.nan,
        test=math.nan,
    )
    start = time.perf_counter()
    desc = f"{task} {spec.name} {format_hparams(hparams)} seed {seed}"
    # disable=None hides the bar when stderr is not a terminal (logs, CI).
    with tqdm(
        total=steps, desc=desc, leave=False, dynamic_ncols=True, mininterval=0.5, disable=None
    ) as bar:
        for step in range(1, steps + 1):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_at(step)
            loss.backward()
            optimizer.step()

            if step % log_every == 0 or step == steps:
                value = float(loss.detach())
                result.train_curve.append((step, value))
                gate = read_gate(optimizer)
                if gate is not None:
                    result.gate_curve.append((step, gate[0], gate[1][0]))
                if not math.isfinite(value):
                    result.diverged = True
                    break
                bar.set_postfix(loss=f"{value:.4g}", refresh=False)
            if step % eval_every == 0 or step == steps:
                metric = evaluate()
                result.val_curve.append((step, metric))
                if not math.isfinite(metric):
                    result.diverged = True
                    break
            bar.update(1)
    result.seconds = time.perf_counter() - start
    return result, optimizer
