"""PNG plots of a study: curves, VRAdam's gate, lr sensitivity, edge of stability, samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import optimizers
from harness.eos import THRESHOLD, EdgeConfig
from harness.study import TaskOutcome
from vradam.hyperparams import DEFAULTS

COLORS = {"vradam": "tab:red", "adamw": "tab:blue", "sgd": "tab:green", "rmsprop": "tab:purple"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(name: str) -> str:
    return COLORS.get(name, "tab:gray")


def _stack(curves: list[list[tuple]]) -> tuple[np.ndarray, np.ndarray]:
    """Return the steps and a (runs, steps) array of values, cut to the shortest run."""
    length = min(len(c) for c in curves)
    steps = np.array([s for s, *_ in curves[0][:length]])
    values = np.array([[v for _, v, *_ in c[:length]] for c in curves], dtype=float)
    return steps, values


def plot_curves(outcome: TaskOutcome, path: Path) -> Path:
    """Plot train loss and validation metric per optimizer: seed mean, min–max band."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, runs in outcome.finals.items():
        runs = [r for r in runs if r.train_curve and r.val_curve]
        if not runs:
            continue
        label = f"{optimizers.get(name).label} ({_setting(outcome.chosen[name])})"
        for ax, attr in zip(axes, ("train_curve", "val_curve"), strict=True):
            steps, values = _stack([getattr(r, attr) for r in runs])
            ax.plot(steps, values.mean(0), color=_color(name), label=label)
            ax.fill_between(steps, values.min(0), values.max(0), color=_color(name), alpha=0.2)
    axes[0].set_title("training loss (batch)")
    axes[1].set_title(f"validation {outcome.task.metric}")
    for ax in axes:
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{outcome.task.title}: chosen settings, mean and range over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_gate(outcome: TaskOutcome, path: Path, name: str = "vradam") -> Path | None:
    """Plot VRAdam's effective lr η and velocity norm S = Σ‖m‖² over training, per seed."""
    runs = [r for r in outcome.finals.get(name, []) if r.gate_curve]
    if not runs:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        steps, sq_norms, lrs = (np.array(c) for c in zip(*run.gate_curve, strict=True))
        axes[0].plot(steps, lrs, alpha=0.8, label=f"seed {run.seed}")
        axes[1].plot(steps, sq_norms, alpha=0.8, label=f"seed {run.seed}")
    hp = outcome.chosen[name]
    axes[0].axhline(hp["lr"], color="k", ls="--", lw=0.8, label="α0 (base lr)")
    axes[0].axhline(
        hp["lr"] / (1 + DEFAULTS["alpha1"]), color="k", ls=":", lw=0.8, label="α0 / (1 + α1)"
    )
    axes[0].set_title("effective learning rate η")
    axes[0].set_yscale("log")
    axes[1].set_title("velocity norm S = Σ‖m‖² (raw first moments)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{outcome.task.title}: VRAdam gate at {_setting(hp)}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_lr_sensitivity(outcome: TaskOutcome, path: Path) -> Path:
    """Plot the validation metric of every tuning run (seed 0) against the learning rate.

    Diverged runs are drawn as crosses on the top edge of the plot.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    finite = [r.val for runs in outcome.tuning.values() for r in runs if not r.diverged]
    top = max(finite) * 1.2 if finite else 1.0
    for name, runs in outcome.tuning.items():
        spec = optimizers.get(name)
        extras = sorted({tuple((k, v) for k, v in r.hparams.items() if k != "lr") for r in runs})
        styles = ["-", "--", ":", "-."]
        for i, extra in enumerate(extras):
            line = [
                r for r in runs if tuple((k, v) for k, v in r.hparams.items() if k != "lr") == extra
            ]
            lrs = np.array([r.hparams["lr"] for r in line])
            vals = np.array([np.nan if r.diverged else r.val for r in line])
            suffix = "" if not extra else " " + " ".join(f"{k}={v:g}" for k, v in extra)
            if spec.lr_scale != 1:
                suffix += f" (lr grid ×{spec.lr_scale:g})"
            ax.plot(
                lrs, vals, styles[i % 4], marker="o", color=_color(name), label=spec.label + suffix
            )
            bad = np.isnan(vals)
            if bad.any():
                ax.plot(lrs[bad], np.full(bad.sum(), top), "x", color=_color(name), ms=9)
    ax.set_xscale("log")
    ax.set_xlabel("base learning rate")
    ax.set_ylabel(f"validation {outcome.task.metric}")
    # A log axis only where the values span more than a decade; otherwise it hides
    # the small differences that matter.
    if finite and max(finite) > 10 * min(finite):
        ax.set_yscale("log")
    ax.set_title(f"{outcome.task.title}\nlearning-rate sensitivity, seed 0 (× = diverged)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_samples(outcome: TaskOutcome, path: Path, side: int = 8) -> Path | None:
    """Plot the diffusion samples of each optimizer's first seed at its chosen setting."""
    with_samples = {
        name: runs[0].artifacts["samples"]
        for name, runs in outcome.finals.items()
        if runs and "samples" in runs[0].artifacts
    }
    if not with_samples:
        return None

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(with_samples), figsize=(4.2 * len(with_samples), 4.5))
    axes = np.atleast_1d(axes)
    for ax, (name, samples) in zip(axes, with_samples.items(), strict=True):
        count = len(samples)
        cols = int(np.ceil(np.sqrt(count)))
        rows = -(-count // cols)
        grid = np.full((rows * (side + 1), cols * (side + 1)), 0.3)  # light gray gaps
        for i, image in enumerate(samples):
            r, c = divmod(i, cols)
            grid[r * (side + 1) : r * (side + 1) + side, c * (side + 1) : c * (side + 1) + side] = (
                image.reshape(side, side) + 1
            ) / 2
        ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{optimizers.get(name).label} ({_setting(outcome.chosen[name])})")
        ax.axis("off")

    seed = next(iter(outcome.finals.values()))[0].seed
    fig.suptitle(f"{outcome.task.title}: samples, seed {seed}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_edge_of_stability(curves: dict, path: Path, config: EdgeConfig) -> Path:
    """Plot loss, η·(preconditioned sharpness) against the stability threshold, and η."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    colors = {"AdamW": _color("adamw"), "VRAdam": _color("vradam")}
    for label, c in curves.items():
        steps = np.arange(1, len(c["loss"]) + 1)
        color = colors.get(label, "tab:gray")
        axes[0].plot(steps, c["loss"], color=color, lw=0.8, label=label)
        axes[1].plot(steps, c["edge"], color=color, lw=0.8, label=label)
        axes[2].plot(steps, c["lr"], color=color, lw=0.8, label=label)

    axes[0].set_yscale("log")
    # Both runs first converge to about 1e-40 before they reach the edge. The axis
    # shows the regime at the edge, where the losses stay within a few decades of 1e-4.
    axes[0].set_ylim(1e-9, 1e3)
    axes[0].set_ylabel("loss ½ xᵀHx")
    axes[1].axhline(
        THRESHOLD,
        color="k",
        ls="--",
        lw=0.8,
        label=f"stability threshold 2(1+β1)/(1−β1) = {THRESHOLD:g}",
    )
    axes[1].set_ylabel("η · max h/(√v̂+ε)")
    axes[1].set_yscale("log")
    axes[2].axhline(
        config.lr / (1 + DEFAULTS["alpha1"]), color="k", ls=":", lw=0.8, label="α0 / (1 + α1)"
    )
    axes[2].set_ylabel("effective lr η")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("step")

    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"Edge of stability on a quadratic: curvatures 1 to 100, lr {config.lr:g}, "
        f"β2 0.99, VRAdam β3 {config.beta3:g}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _setting(hparams: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in hparams.items())
