"""Tuning picks the best validation run; the verdict compares the gap with seed noise."""

import math

from harness import optimizers
from harness.study import TaskOutcome, choose, compare
from harness.tasks.base import RunResult


def result(optimizer, val, test=None, seed=0, diverged=False, **hparams):
    return RunResult(
        task="t",
        optimizer=optimizer,
        hparams={"lr": 1e-3, **hparams},
        seed=seed,
        steps=1,
        val=val,
        test=val if test is None else test,
        diverged=diverged,
    )


def outcome_with(vradam, adamw):
    outcome = TaskOutcome(task=None)
    outcome.finals = {
        "vradam": [result("vradam", 0, t) for t in vradam],
        "adamw": [result("adamw", 0, t) for t in adamw],
    }
    return outcome


def test_choose_lowest_val():
    runs = [result("adamw", 0.5), result("adamw", 0.2), result("adamw", 0.9)]
    assert choose(runs) is runs[1]


def test_choose_skips_diverged():
    runs = [result("adamw", math.nan, diverged=True), result("adamw", 0.7)]
    assert choose(runs) is runs[1]


def test_choose_all_diverged():
    assert choose([result("adamw", math.nan, diverged=True)]) is None


def test_compare_beyond_noise():
    text = compare(outcome_with([1.0, 1.01, 0.99], [2.0, 2.01, 1.99]))
    assert text.startswith("VRAdam is better than AdamW by 1,")
    assert text.endswith("beyond seed noise.")


def test_compare_within_noise():
    text = compare(outcome_with([1.0, 1.5, 0.5], [1.1, 1.6, 0.6]))
    assert text.endswith("not beyond seed noise.")


def test_compare_needs_two_seeds():
    assert compare(outcome_with([1.0], [2.0])).startswith("Not compared")


def test_summary_excludes_diverged():
    outcome = outcome_with([1.0, 3.0], [1.0, 1.0])
    outcome.finals["vradam"].append(result("vradam", math.nan, diverged=True))
    summary = outcome.summary("vradam")
    assert (summary.mean, summary.n, summary.diverged) == (2.0, 2, 1)


def test_grid_crosses_extras():
    grid = optimizers.get("vradam").grid([1e-3, 1e-2], "quick")
    assert len(grid) == 2 * len(optimizers.get("vradam").extra_grid["beta3"]["quick"])
    assert {"lr": 1e-2, "beta3": 10.0} in grid


def test_grid_scales_sgd():
    assert optimizers.get("sgd").grid([1e-3], "quick") == [{"lr": 1e-3 * 30}]


def test_registry_rejects_duplicate():
    import pytest

    with pytest.raises(ValueError, match="already registered"):
        optimizers.register(optimizers.get("adamw"))


def test_study_rejects_other_framework():
    import dataclasses

    import pytest
    from harness.study import run_study
    from harness.tasks import TASKS

    spec = dataclasses.replace(optimizers.get("adamw"), name="jax-adamw", framework="jax")
    optimizers.REGISTRY["jax-adamw"] = spec
    try:
        with pytest.raises(ValueError, match="'jax-adamw' is a jax optimizer"):
            run_study(TASKS["gflownet"]("tiny"), None, ["jax-adamw"], seeds=1)
    finally:
        del optimizers.REGISTRY["jax-adamw"]
