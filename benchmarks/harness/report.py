"""The Markdown report, the JSON results and the console table of a harness run."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from pathlib import Path
from typing import Any

from harness import optimizers
from harness.study import TaskOutcome, compare
from harness.tasks.base import format_hparams

REPO_ROOT = Path(__file__).resolve().parents[2]

SETUP = (
    f"Optimizers: VRAdam with α1 = 10 and β3 tuned; AdamW; both with decoupled weight "
    f"decay λ = {optimizers.WEIGHT_DECAY:g} and betas (0.9, 0.999). SGD with Nesterov "
    f"momentum 0.9 searches the learning-rate grid times {optimizers.get('sgd').lr_scale:g}, "
    "because its step is in gradient units; RMSProp uses α = 0.99."
)


def machine_info(threads: int) -> dict[str, Any]:
    """Return what a reader needs to reproduce the run: commit, versions, CPU, threads."""
    import numpy
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain"],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            != ""
        )
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "threads": threads,
    }


def _fmt(x: float) -> str:
    return "diverged" if not math.isfinite(x) else f"{x:.4g}"


def summary_rows(outcomes: list[TaskOutcome]) -> tuple[list[str], list[list[str]]]:
    """Return the header and rows of the results table: test metric, mean ± std (seeds)."""
    names = [n for n in optimizers.REGISTRY if any(n in o.finals for o in outcomes)]
    header = ["task", "metric (test, lower is better)"] + [optimizers.get(n).label for n in names]
    rows = []
    for o in outcomes:
        cells = [o.task.name, o.task.metric]
        for n in names:
            if n not in o.finals:
                cells.append("-")
            else:
                s = o.summary(n)
                cells.append(f"{s.text()} (n={s.n + s.diverged})")
        rows.append(cells)
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def console_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _mean_extra(runs, key: str) -> float:
    values = [r.extra[key] for r in runs if key in r.extra]
    return sum(values) / len(values)


def task_section(o: TaskOutcome, plots: dict[str, Path], out: Path) -> str:
    """Return the Markdown section of one task: setup, tuning grid, seeds, verdict, plots."""
    t = o.task
    lines = [
        f"## {t.title}",
        "",
        f"Task `{t.name}`, metric: {t.metric}, lower is better. Configuration: `{t.config}`.",
        "",
    ]

    lines += [
        "### Tuning (seed 0, validation split)",
        "",
        "| optimizer | setting | validation | chosen |",
        "|---|---|---|---|",
    ]
    for name, runs in o.tuning.items():
        for r in runs:
            mark = "yes" if o.chosen.get(name) == r.hparams else ""
            val = "diverged" if r.diverged else _fmt(r.val)
            lines.append(
                f"| {optimizers.get(name).label} | {format_hparams(r.hparams)} | {val} | {mark} |"
            )
    lines.append("")

    lines += [
        "### Chosen settings over seeds (test split)",
        "",
        "| optimizer | setting | test mean ± std | per seed | other metrics (mean) |",
        "|---|---|---|---|---|",
    ]
    for name, runs in o.finals.items():
        setting = format_hparams(o.chosen[name]) if name in o.chosen else "all diverged"
        per_seed = ", ".join("diverged" if r.diverged else f"{r.test:.4g}" for r in runs)
        keys = sorted({k for r in runs if not r.diverged for k in r.extra})
        other = ", ".join(f"{k} {_mean_extra(runs, k):.4g}" for k in keys)
        lines.append(
            f"| {optimizers.get(name).label} | {setting} | {o.summary(name).text()} | "
            f"{per_seed} | {other} |"
        )
    lines += ["", f"**VRAdam against AdamW:** {compare(o)}", ""]

    for caption, path in plots.items():
        if path is not None:
            lines += [f"![{caption}]({path.relative_to(out).as_posix()})", ""]
    return "\n".join(lines)


def write_markdown(
    path: Path,
    *,
    meta: dict,
    outcomes: list[TaskOutcome],
    plots: dict[str, dict[str, Path]],
    edge: dict | None,
) -> Path:
    """Write the report; returns ``path``."""
    out = path.parent
    header, rows = summary_rows(outcomes)
    lines = [
        "# VRAdam benchmark report",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Tier `{meta['tier']}`, finished {meta['finished']}, {meta['wall_seconds']:.0f} s "
        "wall time. Every comparison uses the same number of steps per run; wall time is "
        "shown for information only.",
        "",
        "| machine | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in meta["machine"].items()]
    lines += ["", SETUP, "", "## Results", "", markdown_table(header, rows), ""]
    if outcomes:
        lines += [
            "Each optimizer tried its learning-rate grid (VRAdam also its β3 grid) with "
            "seed 0 and kept the setting with the best validation metric. The table shows "
            "the test metric of that setting over fresh seeds 1..n as mean ± sample "
            "standard deviation. A difference counts as beyond seed noise when it exceeds twice "
            "its standard error. That is a rule of thumb, not a significance test: with 3 to 5 "
            "seeds a two-sided 95% t-test needs about 2.3 to 4.3 standard errors.",
            "",
        ]
        lines += [f"- {o.task.title}: {compare(o)}" for o in outcomes]
        lines.append("")
    for o in outcomes:
        lines.append(task_section(o, plots.get(o.task.name, {}), out))
    if edge is not None:
        lines += [
            "## Edge of stability",
            "",
            "A quadratic with curvatures 1 to 100. Momentum with β1 = 0.9 is stable while "
            "η times the preconditioned curvature stays under 38. Both optimizers use lr "
            f"{edge['config']['lr']:g} and β2 = 0.99, VRAdam β3 = "
            f"{edge['config']['beta3']:g}. Statistics over the steps after "
            f"{edge['skip']}:",
            "",
            "| optimizer | peak loss | median loss | smallest η | median η·sharpness |",
            "|---|---|---|---|---|",
        ]
        for label, s in edge["summary"].items():
            lines.append(
                f"| {label} | {s['peak_loss']:.3g} | {s['median_loss']:.3g} | "
                f"{s['min_lr']:.3g} | {s['median_edge']:.3g} |"
            )
        lines += ["", f"![edge of stability]({edge['plot'].relative_to(out).as_posix()})", ""]
    path.write_text("\n".join(lines))
    return path


def write_json(path: Path, *, meta: dict, outcomes: list[TaskOutcome], edge: dict | None) -> Path:
    """Write every run, the chosen settings and the summaries as JSON; returns ``path``."""

    def summary_json(o, name):
        s = o.summary(name)
        return {
            "mean": s.mean if s.n else None,
            "std": s.std if s.n > 1 else None,
            "n": s.n,
            "diverged": s.diverged,
        }

    doc = {
        "meta": meta,
        "tasks": {
            o.task.name: {
                "title": o.task.title,
                "metric": o.task.metric,
                "config": vars(o.task.config)
                if hasattr(o.task.config, "__dict__")
                else str(o.task.config),
                "chosen": o.chosen,
                "summary": {name: summary_json(o, name) for name in o.finals},
                "verdict": compare(o),
                "tuning": {n: [r.to_json() for r in runs] for n, runs in o.tuning.items()},
                "finals": {n: [r.to_json() for r in runs] for n, runs in o.finals.items()},
            }
            for o in outcomes
        },
    }
    if edge is not None:
        doc["edge_of_stability"] = {"config": edge["config"], "summary": edge["summary"]}
    path.write_text(json.dumps(doc, indent=1, default=str))
    return path
