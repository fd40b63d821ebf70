"""Command line: run the tasks, then write the report, the JSON results and the plots."""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from harness import eos, plots, report
from harness.study import run_study
from harness.tasks import TASKS
from harness.tasks.base import format_hparams

EDGE_TASK = "eos"
ALL_TASKS = (*TASKS, EDGE_TASK)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="compare",
        description="Compare VRAdam with AdamW and other baselines on real tasks at equal "
        "step budgets, with tuning on a validation split and several seeds.",
    )
    parser.add_argument(
        "--tier",
        choices=("quick", "full", "tiny"),
        default="quick",
        help="budget: quick (minutes, 8×8 digits), full (Fashion-MNIST, "
        "longer runs, wider grids), tiny (seconds; a smoke test whose "
        "numbers mean nothing). Default: quick.",
    )
    parser.add_argument(
        "--tasks",
        default=",".join(ALL_TASKS),
        help=f"comma-separated subset of {','.join(ALL_TASKS)} (default: all)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="seeds per optimizer at the chosen setting (default: 3, and 5 for gflownet)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: runs/<tier>-<date>-<time>)"
    )
    # One thread is the default because these models are small. With two threads on
    # a busy 2-core machine, a Fashion-MNIST CNN step took 956 ms against 65 ms with
    # one, because OpenMP threads wait for each other.
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default: 1; try 2 or more on an idle "
        "machine for the full tier)",
    )
    args = parser.parse_args(argv)

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in ALL_TASKS]
    if unknown or not tasks:
        parser.error(
            f"--tasks: unknown task(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(ALL_TASKS)}"
        )
    args.tasks = tasks
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be at least 1, received {args.seeds}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, received {args.threads}")
    # mkdir(exist_ok=True) accepts an existing folder but raises FileExistsError for a file.
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(
            f"--out: {args.out} exists and is not a directory; pass a new or existing "
            "folder for the report, results and plots"
        )
    if args.out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        args.out = Path("runs") / f"{args.tier}-{stamp}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # torch allows this once per process; a second main() in tests keeps the first.
    start = time.perf_counter()
    # Read at the start: commits made while the run goes on must not be credited with it.
    machine = report.machine_info(args.threads)

    def log(result):
        value = "diverged" if result.diverged else f"val {result.val:.4g}  test {result.test:.4g}"
        tqdm.write(
            f"  {result.task:9s} {result.optimizer:8s} {format_hparams(result.hparams):22s} "
            f"seed {result.seed}  {value}  ({result.seconds:.1f} s)"
        )

    outcomes, task_plots = [], {}
    # Load every dataset before training anything, so a missing one fails at once.
    prepared = {}
    for name in args.tasks:
        if name == EDGE_TASK:
            continue
        task = TASKS[name](args.tier)
        try:
            prepared[name] = (task, task.prepare())
        except FileNotFoundError as error:
            print(f"compare: task {name!r} cannot run: {error}", file=sys.stderr)
            return 2

    args.out.mkdir(parents=True, exist_ok=True)
    for name, (task, data) in prepared.items():
        print(f"{task.title} [{task.name}]: {task.metric}, lower is better", flush=True)
        seeds = args.seeds if args.seeds is not None else task.seeds
        outcome = run_study(task, data, task.optimizers[args.tier], seeds, on_result=log)
        outcomes.append(outcome)
        task_plots[name] = {
            "training and validation curves": plots.plot_curves(
                outcome, args.out / f"{name}_curves.png"
            ),
            "VRAdam effective lr and velocity norm": plots.plot_gate(
                outcome, args.out / f"{name}_gate.png"
            ),
            "learning-rate sensitivity": plots.plot_lr_sensitivity(
                outcome, args.out / f"{name}_lr_sensitivity.png"
            ),
        }
        if name == "ddpm":
            task_plots[name]["samples"] = plots.plot_samples(outcome, args.out / "ddpm_samples.png")

    edge = None
    if EDGE_TASK in args.tasks:
        from harness import optimizers

        print("Edge of stability on a quadratic [eos]", flush=True)
        config = eos.EdgeConfig() if args.tier != "tiny" else eos.EdgeConfig(steps=200)
        curves = eos.run_edge_of_stability(
            {"AdamW": optimizers.get("adamw"), "VRAdam": optimizers.get("vradam")}, config
        )
        skip = config.steps // 3
        edge = {
            "config": vars(config),
            "skip": skip,
            "summary": eos.summarize(curves, skip),
            "plot": plots.plot_edge_of_stability(
                curves, args.out / "edge_of_stability.png", config
            ),
        }

    meta = {
        "command": shlex.join(["./compare", *(sys.argv[1:] if argv is None else argv)]),
        "tier": args.tier,
        "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_seconds": time.perf_counter() - start,
        "machine": machine,
    }
    md = report.write_markdown(
        args.out / "report.md", meta=meta, outcomes=outcomes, plots=task_plots, edge=edge
    )
    js = report.write_json(args.out / "results.json", meta=meta, outcomes=outcomes, edge=edge)

    if outcomes:
        header, rows = report.summary_rows(outcomes)
        print("\n" + report.console_table(header, rows) + "\n")
        for o in outcomes:
            print(f"{o.task.name}: {report.compare(o)}")
    if edge is not None:
        for label, s in edge["summary"].items():
            print(f"eos: {label} peak loss {s['peak_loss']:.3g}, smallest lr {s['min_lr']:.3g}")
    written = [md, js, *sorted(args.out.glob("*.png"))]
    print(f"\nWrote {len(written)} files in {meta['wall_seconds']:.0f} s:")
    for path in written:
        print(f"  {path}")
    return 0
