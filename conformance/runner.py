"""Replay the golden cases through an :class:`~vradam.conformance.adapter.Adapter`.

Each case runs twice over:

* free-running: the adapter takes every step from the initial parameters. After
  each step its parameters, S and η are compared with the golden ones, and its
  final moments (t, m, v) are compared at the end.
* single steps: at up to :data:`SINGLE_STEP_CHECKS` steps k, a fresh run loads the
  golden state after step k, cast to the dtype. It takes one step with the golden
  gradient and is compared with the golden step k + 1 under a one-step bound.
  These keep their teeth where a free-running bound grows loose, as it does in
  bfloat16 and float16, and they catch an S accumulated in the wrong precision.

Tolerances come from :mod:`vradam.conformance.tolerances`. NaN positions must
match exactly, and an infinite golden value must be matched by the same infinity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from vradam.conformance import losses, tolerances
from vradam.conformance.adapter import Adapter, Loss, Moments, Run, StepReport
from vradam.conformance.golden_files import (
    GOLDENS_DIR,
    Layout,
    flatten,
    read_manifest,
    read_npz,
    sha256,
    unflatten,
)
from vradam.hyperparams import Hyperparams

__all__ = [
    "SINGLE_STEP_CHECKS",
    "Failure",
    "GoldenCase",
    "Report",
    "assert_conforms",
    "case_names",
    "load_case",
    "run_suite",
]

#: Maximum number of single-step checks per case, spread evenly over its steps.
SINGLE_STEP_CHECKS = 20


@dataclasses.dataclass(frozen=True)
class Failure:
    """One comparison that failed: the first failing step of one check on one tensor."""

    case: str
    mode: str  # "trajectory" or "single-step"
    step: int
    check: str  # "params", "S", "eta", "t", "m", "v", "shape", "nan", "inf" or "error"
    tensor: str
    max_abs_err: float
    max_rel_err: float
    tolerance: float
    detail: str = ""
    #: True when ``Adapter.create`` raised, so nothing of the case was compared.
    setup: bool = False


@dataclasses.dataclass
class Report:
    """Outcome of :func:`run_suite`; ``str(report)`` is a table of failures."""

    adapter: str
    dtype: str
    device: str
    cases_run: list[str] = dataclasses.field(default_factory=list)
    failures: list[Failure] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def failed_cases(self) -> set[str]:
        """Return the names of the cases with at least one failure."""
        return {f.case for f in self.failures}

    def setup_failed(self) -> bool:
        """Return True if ``Adapter.create`` raised in every case run, so nothing was compared."""
        setup_cases = {f.case for f in self.failures if f.setup}
        return bool(self.cases_run) and setup_cases >= set(self.cases_run)

    def __str__(self) -> str:
        head = f"VRAdam conformance of {self.adapter} in {self.dtype} on {self.device}: "
        run = len(self.cases_run)
        if self.ok:
            lines = [head + (f"{run} case conforms." if run == 1 else f"{run} cases conform.")]
        else:
            failed = len(self.failed_cases())
            lines = [head + f"{failed} of {run} {'case' if run == 1 else 'cases'} failed.", ""]
            lines += _table(self.failures)
        for case, reason in self.skipped:
            lines.append(f"skipped {case}: {reason}")
        lines += self.notes
        return "\n".join(lines)


def _format_number(value: float) -> str:
    # The runner stores NaN where a column does not apply (an exception, a NaN
    # mismatch), never as a measured error, so the table shows "-" there.
    return "-" if np.isnan(value) else f"{value:.3e}"


def _table(failures: Sequence[Failure]) -> list[str]:
    header = ("case", "mode", "step", "check", "tensor", "max abs err", "max rel err",
              "tolerance", "detail")
    rows = [
        (f.case, f.mode, str(f.step), f.check, f.tensor, _format_number(f.max_abs_err),
         _format_number(f.max_rel_err), _format_number(f.tolerance), f.detail)
        for f in failures
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


class GoldenCase:
    """One case's golden arrays with accessors in the adapter interface's terms."""

    def __init__(self, name: str, entry: dict, arrays: dict[str, np.ndarray]) -> None:
        self.name = name
        self.entry = entry
        self.arrays = arrays
        self.layout = Layout.from_json(entry["layout"])
        self.steps = int(entry["steps"])
        self.base_hyperparams = [Hyperparams(**hp) for hp in entry["hyperparams"]]
        self.sensitivity = float(entry["sensitivity"])

    @property
    def closed_loop(self) -> bool:
        return self.entry["kind"] == "closed-loop"

    def hyperparams(self, step: int) -> list[Hyperparams]:
        """Return each group's hyperparameters for step ``step`` (1-based)."""
        lrs = self.arrays["lr"][step - 1]
        return [hp.replace(lr=float(lr)) for hp, lr in zip(self.base_hyperparams, lrs, strict=True)]

    def params(self, step: int) -> list[list[np.ndarray]]:
        """Return the golden parameters after ``step`` steps (0: the initial ones)."""
        return unflatten(self.arrays["theta"][step], self.layout)

    def grads(self, step: int) -> list[list[np.ndarray | None]]:
        """Return the gradients used at step ``step`` (1-based), None where absent."""
        nested = unflatten(self.arrays["grad"][step - 1], self.layout)
        present = iter(self.arrays["grad_present"][step - 1])
        return [[g if next(present) else None for g in group] for group in nested]

    def moments(self, step: int) -> Moments:
        """Return the golden (t, m, v) of every tensor after ``step`` steps."""
        exp_avg = unflatten(self.arrays["exp_avg"][step], self.layout, real_view=True)
        exp_avg_sq = unflatten(self.arrays["exp_avg_sq"][step], self.layout, real_view=True)
        counts = iter(self.arrays["step_count"][step].tolist())
        return [
            [(next(counts), m, v) for m, v in zip(group_m, group_v, strict=True)]
            for group_m, group_v in zip(exp_avg, exp_avg_sq, strict=True)
        ]

    def loss(self) -> Loss | None:
        """Return the closed-loop loss, or None for a replay case."""
        if not self.closed_loop:
            return None
        data = {k[len("loss_"):]: v for k, v in self.arrays.items() if k.startswith("loss_")}
        return Loss(self.entry["loss"], data)

    def per_coordinate(self, field: str) -> np.ndarray:
        """Spread a per-group hyperparameter over the flat real layout."""
        values = [getattr(hp, field) for hp in self.base_hyperparams]
        return self._spread(np.asarray(values, dtype=np.float64))

    def group_index(self) -> np.ndarray:
        return self._spread(np.arange(len(self.layout.groups)))

    def _spread(self, per_group: np.ndarray) -> np.ndarray:
        sizes = np.diff(self.layout.offsets)
        per_tensor = per_group[np.asarray(self.layout.tensor_group, dtype=np.int64)]
        return np.repeat(per_tensor, sizes)

    def state(self, step: int) -> dict[str, np.ndarray]:
        """Return the golden flat θ, m, v and t per coordinate after ``step`` steps."""
        sizes = np.diff(self.layout.offsets)
        result = {
            "theta": self.arrays["theta"][step],
            "exp_avg": self.arrays["exp_avg"][step],
            "exp_avg_sq": self.arrays["exp_avg_sq"][step],
            "step_count": np.repeat(self.arrays["step_count"][step], sizes),
        }
        if step > 0:
            result["velocity_sq_norm"] = self.arrays["velocity_sq_norm"][step - 1]
            result["effective_lrs"] = self.arrays["effective_lr"][step - 1]
        return result

    def step_inputs(self, step: int) -> dict[str, np.ndarray]:
        """Return the per-coordinate inputs of :func:`tolerances.propagate` for ``step``."""
        sizes = np.diff(self.layout.offsets)
        return {
            "beta1": self.per_coordinate("beta1"),
            "beta2": self.per_coordinate("beta2"),
            "eps": self.per_coordinate("eps"),
            "weight_decay": self.per_coordinate("weight_decay"),
            "group": self.group_index(),
            "grad": self.arrays["grad"][step - 1],
            "present": np.repeat(self.arrays["grad_present"][step - 1], sizes),
            "beta3": [hp.beta3 for hp in self.base_hyperparams],
            "alpha1": [hp.alpha1 for hp in self.base_hyperparams],
        }


def load_case(name: str, folder: Path = GOLDENS_DIR, manifest: dict | None = None) -> GoldenCase:
    """Load one golden case, checking its SHA-256 against the manifest."""
    manifest = manifest or read_manifest(folder)
    entry = manifest["cases"][name]
    path = Path(folder) / entry["file"]
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise RuntimeError(
            f"Golden file {path} is corrupt: SHA-256 {digest} differs from the manifest's "
            f"{entry['sha256']}. Reinstall vradam; in a source checkout, regenerate the "
            "goldens with `python -m vradam.conformance.generate conformance/goldens`."
        )
    return GoldenCase(name, entry, read_npz(path))


def case_names(tags: Iterable[str] | None = None) -> list[str]:
    """Return the names of the cases, in catalogue order, that carry every tag in ``tags``."""
    required = set(tags or ())
    cases = read_manifest()["cases"]
    return [name for name, entry in cases.items() if required <= set(entry["tags"])]


def run_suite(
    adapter: Adapter,
    *,
    dtype: str = "float64",
    device: str = "cpu",
    cases: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
) -> Report:
    """Run the golden cases through ``adapter`` in ``dtype`` on ``device``.

    ``cases`` restricts the run to those names and ``tags`` to cases carrying every
    listed tag. Cases whose dtypes exclude ``dtype`` (complex cases in bfloat16 and
    float16, for example) are listed in ``report.skipped``.
    """
    if dtype not in tolerances.UNIT_ROUNDOFF:
        raise ValueError(
            f"Invalid dtype: expected one of {tuple(tolerances.UNIT_ROUNDOFF)}, received {dtype!r}."
        )
    if dtype not in adapter.dtypes:
        raise ValueError(
            f"Adapter {adapter.name!r} does not run dtype {dtype!r}; "
            f"it declares dtypes={adapter.dtypes!r}."
        )

    manifest = read_manifest()
    names = case_names(tags)
    if cases is not None:
        requested = list(cases)
        unknown = [n for n in requested if n not in manifest["cases"]]
        if unknown:
            raise ValueError(f"Unknown case names {unknown}; known: {list(manifest['cases'])}.")
        names = [n for n in names if n in requested]

    report = Report(adapter=adapter.name, dtype=dtype, device=device)
    unreported: set[str] = set()
    for name in names:
        golden = load_case(name, manifest=manifest)
        if dtype not in golden.entry["dtypes"]:
            report.skipped.append((name, f"does not apply to {dtype}"))
            continue
        report.cases_run.append(name)
        checker = _CaseChecker(golden, adapter, dtype, device, report, unreported)
        try:
            checker.check_trajectory()
            checker.check_single_steps()
        except _SetupError as error:
            cause = error.__cause__
            report.failures.append(Failure(
                name, checker.mode, checker.current_step, "error", "-", np.nan, np.nan, np.nan,
                f"Adapter.create raised {type(cause).__name__}: {cause}", setup=True,
            ))
        except Exception as error:
            report.failures.append(Failure(
                name, checker.mode, checker.current_step, "error", "-", np.nan, np.nan, np.nan,
                f"{type(error).__name__}: {error}",
            ))
    for quantity in sorted(unreported):
        report.notes.append(f"note: the adapter did not report {quantity}; it was not compared.")
    return report


def assert_conforms(
    adapter: Adapter,
    *,
    dtype: str,
    device: str = "cpu",
    cases: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
) -> None:
    """Run the suite and raise AssertionError, with the failure table, if any case fails.

    A selection that runs no case also fails, so a misspelled tag cannot pass.
    """
    report = run_suite(adapter, dtype=dtype, device=device, cases=cases, tags=tags)
    if not report.cases_run:
        raise AssertionError(
            f"No case ran in {dtype}: cases={cases!r} and tags={tags!r} select nothing "
            f"that applies to this dtype (skipped: {report.skipped})."
        )
    if not report.ok:
        raise AssertionError(str(report))


class _SetupError(Exception):
    """Wraps an exception from ``Adapter.create``, which is its ``__cause__``."""


class _CaseChecker:
    """Compares one adapter with one golden case and appends failures to a report."""

    def __init__(self, golden: GoldenCase, adapter: Adapter, dtype: str, device: str,
                 report: Report, unreported: set[str]) -> None:
        self.golden = golden
        self.adapter = adapter
        self.dtype = dtype
        self.device = device
        self.report = report
        self.unreported = unreported
        self.u = tolerances.UNIT_ROUNDOFF[dtype]
        self.u_acc = tolerances.accumulator_roundoff(dtype)
        self.mode = "trajectory"
        self.current_step = 0
        self._seen: set[tuple[str, str, str]] = set()

    def check_trajectory(self) -> None:
        golden = self.golden
        self.mode = "trajectory"
        run = self._create(golden.params(0), golden.hyperparams(1), golden.loss())
        zeros = np.zeros(golden.layout.size)
        bounds = tolerances.rounding_bounds(golden.state(0)["theta"], zeros, zeros, self.u)
        # Closed loop: errors in θ feed back through the gradient, so the measured
        # sensitivity of the spec's own trajectory scales every bound.
        # NOTE: that sensitivity is a linearized estimate from one perturbation of
        # θ0, not a proven bound on the feedback.
        scale = tolerances.SLACK * golden.sensitivity
        for step in range(1, golden.steps + 1):
            self.current_step = step
            grads = None if golden.closed_loop else golden.grads(step)
            reported = run.step(grads, golden.hyperparams(step))
            grad_error = 0.0
            if golden.closed_loop:
                loss = golden.loss()
                grad_error = losses.gradient_error_bound(
                    loss.name, loss.data, golden.state(step - 1)["theta"], self.u
                )
            step_bounds = self._propagate(bounds, step, grad_error)
            bounds = step_bounds.state
            self._compare_step(step, run, reported, step_bounds, scale)
        self._compare_moments(golden.steps, run, bounds, scale)

    def check_single_steps(self) -> None:
        golden = self.golden
        self.mode = "single-step"
        count = min(golden.steps, SINGLE_STEP_CHECKS)
        starts = np.unique(np.linspace(0, golden.steps - 1, count).round().astype(int))
        for start in starts.tolist():
            step = start + 1
            self.current_step = step
            hyperparams = golden.hyperparams(step)
            # A replay run (no loss), so the golden gradient drives the step even in
            # closed-loop cases: this checks the optimizer, not the autodiff.
            run = self._create(golden.params(start), hyperparams, None)
            run.load(golden.params(start), golden.moments(start))
            reported = run.step(golden.grads(step), hyperparams)
            state = golden.state(start)
            bounds = tolerances.rounding_bounds(
                state["theta"], state["exp_avg"], state["exp_avg_sq"], self.u
            )
            step_bounds = self._propagate(bounds, step, 0.0)
            self._compare_step(step, run, reported, step_bounds, tolerances.SLACK)
            self._compare_moments(step, run, step_bounds.state, tolerances.SLACK)

    def _create(self, params, hyperparams: list[Hyperparams], loss: Loss | None) -> Run:
        try:
            return self.adapter.create(params, hyperparams, dtype=self.dtype,
                                       device=self.device, loss=loss)
        except Exception as error:
            raise _SetupError from error

    def _propagate(self, bounds: tolerances.Bounds, step: int, grad_error):
        golden = self.golden
        with np.errstate(all="ignore"):
            return tolerances.propagate(
                bounds, golden.state(step - 1), golden.state(step), golden.step_inputs(step),
                u=self.u, u_acc=self.u_acc, grad_error=grad_error,
            )

    def _compare_step(self, step: int, run: Run, reported: StepReport,
                      step_bounds: tolerances.StepBounds, scale: float) -> None:
        golden = self.golden
        expected = golden.state(step)
        actual = flatten(_checked_shapes(run.params(), golden.layout), golden.layout)
        self._compare_tensors(step, "params", actual, expected["theta"],
                              scale * step_bounds.state.theta)

        if reported is None or reported.velocity_sq_norm is None:
            self.unreported.add("S")
        else:
            self._compare_scalar(step, "S", "-", reported.velocity_sq_norm,
                                 float(expected["velocity_sq_norm"]),
                                 scale * step_bounds.velocity_sq_norm)
        if reported is None or reported.effective_lrs is None:
            self.unreported.add("η")
            return
        lrs = list(reported.effective_lrs)
        if len(lrs) != len(golden.layout.groups):
            self._fail(step, "eta", "-", np.nan, np.nan, np.nan,
                       f"{len(lrs)} values reported for {len(golden.layout.groups)} groups")
            return
        for group, (value, want, err) in enumerate(
            zip(lrs, expected["effective_lrs"], step_bounds.effective_lrs, strict=True)
        ):
            self._compare_scalar(step, "eta", f"group {group}", value, float(want), scale * err)

    def _compare_moments(self, step: int, run: Run, bounds: tolerances.Bounds,
                         scale: float) -> None:
        golden = self.golden
        expected = golden.state(step)
        moments = run.moments()
        counts = [t for group in moments for t, _, _ in group]
        want_counts = golden.arrays["step_count"][step].tolist()
        for index, (count, want) in enumerate(zip(counts, want_counts, strict=True)):
            if int(count) != want:
                self._fail(step, "t", golden.layout.label(index), abs(int(count) - want),
                           np.nan, 0.0, f"t = {count}, expected {want}")
        exp_avg = flatten([[m for _, m, _ in g] for g in moments], golden.layout)
        exp_avg_sq = flatten([[v for _, _, v in g] for g in moments], golden.layout)
        self._compare_tensors(step, "m", exp_avg, expected["exp_avg"], scale * bounds.exp_avg)
        self._compare_tensors(step, "v", exp_avg_sq, expected["exp_avg_sq"],
                              scale * bounds.exp_avg_sq)

    def _compare_tensors(self, step: int, check: str, actual: np.ndarray, expected: np.ndarray,
                         tolerance: np.ndarray) -> None:
        layout = self.golden.layout
        for index in range(len(layout.tensors)):
            part = layout.tensor_slice(index)
            self._compare_values(step, check, layout.label(index), actual[part], expected[part],
                                 tolerance[part])

    def _compare_scalar(self, step: int, check: str, tensor: str, actual: float,
                        expected: float, tolerance: float) -> None:
        self._compare_values(step, check, tensor, np.array([float(actual)]),
                             np.array([expected]), np.array([tolerance]))

    def _compare_values(self, step: int, check: str, tensor: str, actual: np.ndarray,
                        expected: np.ndarray, tolerance: np.ndarray) -> None:
        nan_mismatch = np.isnan(actual) != np.isnan(expected)
        if np.any(nan_mismatch):
            self._fail(step, check, tensor, np.nan, np.nan, 0.0,
                       f"NaN at {np.count_nonzero(np.isnan(actual))} positions, "
                       f"expected at {np.count_nonzero(np.isnan(expected))}")
            return
        infinite = np.isinf(expected) | np.isinf(actual)
        if np.any(actual[infinite] != expected[infinite]):
            self._fail(step, check, tensor, np.inf, np.inf, 0.0,
                       "infinite values differ from the golden ones")
            return
        finite = np.isfinite(expected) & np.isfinite(actual)
        if not np.any(finite):
            return
        error = np.abs(actual[finite] - expected[finite])
        # A bound that came out NaN allows no error at all rather than any error.
        allowed = np.nan_to_num(tolerance[finite], nan=0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.where(error > allowed, error / allowed, 0.0)
        if not np.any(excess > 0):
            return
        worst = int(np.argmax(excess))
        magnitude = abs(expected[finite][worst])
        relative = error[worst] / magnitude if magnitude > 0 else np.inf
        self._fail(step, check, tensor, float(np.max(error)), float(relative),
                   float(allowed[worst]))

    def _fail(self, step: int, check: str, tensor: str, abs_err: float, rel_err: float,
              tolerance: float, detail: str = "") -> None:
        # Only the first failing step of each check on each tensor is listed, so a
        # trajectory that diverges at step 3 does not fill the table with every later step.
        key = (self.mode, check, tensor)
        if key in self._seen:
            return
        self._seen.add(key)
        self.report.failures.append(Failure(
            self.golden.name, self.mode, step, check, tensor, abs_err, rel_err, tolerance, detail
        ))


def _checked_shapes(params: Sequence[Sequence[np.ndarray]], layout: Layout):
    got = [[np.shape(p) for p in group] for group in params]
    want = [[shape for shape, _ in group] for group in layout.groups]
    if got != want:
        raise ValueError(f"parameter shapes {got} differ from the golden shapes {want}")
    return params
