"""Fair comparison on one task: tune every optimizer on validation, then rerun seeds.

Each optimizer tries every setting of its grid with seed 0 and keeps the one
with the best validation metric. The chosen setting then runs with the fresh
seeds 1..n, and their test metric is reported as mean ± sample standard
deviation. The tuning run is not reused: it won a selection among the grid's
settings, and VRAdam's grid is larger, so reusing it would favour VRAdam.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness import optimizers
from harness.tasks.base import RunResult, Task


@dataclass
class Summary:
    """Test metric over seeds at the chosen setting."""

    mean: float
    std: float  # sample standard deviation (ddof = 1); nan for one seed
    n: int
    diverged: int  # seeds whose run diverged; they are left out of mean and std

    def text(self, digits: int = 4) -> str:
        if self.n == 0:
            return "every setting diverged" if self.diverged == 0 else "every seed diverged"
        body = f"{self.mean:.{digits}g}"
        if self.n > 1:
            body += f" ± {self.std:.2g}"
        return body + (f" ({self.diverged} diverged)" if self.diverged else "")


@dataclass
class TaskOutcome:
    """Everything measured on one task."""

    task: Task
    tuning: dict[str, list[RunResult]] = field(default_factory=dict)
    chosen: dict[str, dict[str, float]] = field(default_factory=dict)
    finals: dict[str, list[RunResult]] = field(default_factory=dict)

    def summary(self, name: str) -> Summary:
        values = [r.test for r in self.finals[name] if not r.diverged]
        diverged = len(self.finals[name]) - len(values)
        if not values:
            return Summary(math.nan, math.nan, 0, diverged)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        return Summary(float(np.mean(values)), std, len(values), diverged)


def choose(runs: Sequence[RunResult]) -> RunResult | None:
    """Return the run with the lowest validation metric, or None if all diverged."""
    finite = [r for r in runs if not r.diverged and math.isfinite(r.val)]
    return min(finite, key=lambda r: r.val) if finite else None


def run_study(
    task: Task,
    data,
    names: Sequence[str],
    seeds: int,
    on_result: Callable[[RunResult], None] = lambda result: None,
) -> TaskOutcome:
    """Tune each named optimizer on ``task`` with seed 0, then run its choice with seeds 1..n."""
    outcome = TaskOutcome(task=task)
    for name in names:
        spec = optimizers.get(name)
        if spec.framework != task.framework:
            raise ValueError(
                f"optimizer {name!r} is a {spec.framework} optimizer, but task {task.name!r} "
                f"trains {task.framework} models; register a {task.framework} entry instead."
            )
        outcome.tuning[name] = []
        for hparams in spec.grid(task.lr_grid[task.tier], task.tier):
            result = task.run(data, spec, hparams, seed=0)
            outcome.tuning[name].append(result)
            on_result(result)

        best = choose(outcome.tuning[name])
        if best is None:
            outcome.finals[name] = []
            continue
        outcome.chosen[name] = best.hparams
        outcome.finals[name] = []
        for seed in range(1, seeds + 1):
            result = task.run(data, spec, best.hparams, seed=seed)
            outcome.finals[name].append(result)
            on_result(result)
    return outcome


def compare(outcome: TaskOutcome, name: str = "vradam", baseline: str = "adamw") -> str:
    """Return one plain sentence: is ``name``'s advantage over ``baseline`` beyond seed noise?

    The difference of means counts as real when it exceeds twice its standard
    error √(s₁²/n₁ + s₂²/n₂). That is a rule of thumb, not a significance test:
    with 3 to 5 seeds a two-sided 95% t-test needs about 2.3 to 4.3 standard
    errors, so "beyond seed noise" is a weak claim and "within" a strong one.
    """
    if name not in outcome.finals or baseline not in outcome.finals:
        return "Not compared: both optimizers must run on this task."
    a, b = outcome.summary(name), outcome.summary(baseline)
    label_a, label_b = optimizers.get(name).label, optimizers.get(baseline).label
    if a.n < 2 or b.n < 2:
        return (
            f"Not compared: {label_a} has {a.n} and {label_b} has {b.n} finished seeds; "
            "at least two each are needed to estimate seed noise."
        )

    diff = a.mean - b.mean
    stderr = math.sqrt(a.std**2 / a.n + b.std**2 / b.n)
    better = "better" if diff < 0 else "worse"
    threshold = f"2 × standard error of the difference = {2 * stderr:.2g}"
    if abs(diff) > 2 * stderr:
        return (
            f"{label_a} is {better} than {label_b} by {abs(diff):.3g}, more than "
            f"{threshold}: beyond seed noise."
        )
    return (
        f"{label_a} is {better} than {label_b} by {abs(diff):.3g}, within "
        f"{threshold}: not beyond seed noise."
    )
