"""The catalogue of conformance cases: small declarative records, built from fixed seeds.

Each :class:`Case` states what it guards in one line. :meth:`Case.build` turns the
record into initial parameters, per-step gradients and hyperparameters. Only the
golden generator calls it. The runner reads everything back from the goldens, so
an implementation under test never depends on numpy's random streams.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Literal, NamedTuple

import numpy as np

from vradam.hyperparams import Hyperparams

__all__ = [
    "ALL_DTYPES",
    "CASES",
    "Case",
    "CaseData",
    "GroupSpec",
    "TensorSpec",
    "find_case",
    "markdown_table",
]

ALL_DTYPES = ("float64", "float32", "bfloat16", "float16")
WIDE_DTYPES = ("float64", "float32")
# float16 only where every stored value is a normal float16 number; with β2 = 0.999
# a gradient under 0.25 already makes v subnormal. The generator checks the ranges.
DEFAULT_DTYPES = ("float64", "float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One parameter tensor: its shape, initial values and the gradients it receives.

    The gradient at step k (1-based) is
    ``grad_scale · ramp_k · (grad_bias·s + grad_noise·z_k)`` with ``s`` a fixed
    random ±1 pattern and ``z_k`` standard normal noise, so ``grad_bias`` sets how
    consistently the gradient points one way.
    """

    shape: tuple[int, ...]
    init_scale: float = 1.0
    init: tuple[float, ...] | None = None  # explicit row-major initial values
    grad_scale: float = 1.0
    grad_bias: float = 0.0
    grad_noise: float = 1.0
    complex: bool = False
    absent_steps: frozenset[int] = frozenset()  # steps at which the gradient is None
    special: tuple[tuple[int, int, float], ...] = ()  # (step, flat index, value), e.g. inf


@dataclasses.dataclass(frozen=True)
class GroupSpec:
    """One parameter group: its tensors and its base hyperparameters."""

    tensors: tuple[TensorSpec, ...]
    hyperparams: Hyperparams = dataclasses.field(default_factory=Hyperparams)


def _constant(step: int, steps: int) -> float:
    return 1.0


def _warmup_quadratic(step: int, steps: int) -> float:
    # Linear warmup over 5 steps, then quadratic decay, so α0 changes at every step.
    # Only arithmetic, no cos: the goldens must not depend on the platform's libm.
    warmup = min(1.0, step / 5)
    return warmup * (1.0 - (step - 1) / steps) ** 2


#: Learning-rate schedules by name: step (1-based), total steps -> multiplier of α0.
SCHEDULES: Mapping[str, Callable[[int, int], float]] = {
    "constant": _constant,
    "warmup-quadratic": _warmup_quadratic,
}


class CaseData(NamedTuple):
    """A built case: everything the generator needs to run the spec."""

    params: list[list[np.ndarray]]  # initial parameters, float64 or complex128
    grads: list[list[list[np.ndarray | None]]]  # per step, per group, per tensor
    hyperparams: list[list[Hyperparams]]  # per step, per group
    loss_data: dict[str, np.ndarray]  # empty for replay cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One conformance case."""

    name: str
    guards: str  # one line: what an implementation gets wrong if it fails this case
    tags: tuple[str, ...]
    kind: Literal["replay", "closed-loop"]
    steps: int
    groups: tuple[GroupSpec, ...]
    dtypes: tuple[str, ...] = DEFAULT_DTYPES
    seed: int = 0
    schedule: str = "constant"
    grad_ramp: tuple[float, float] = (1.0, 1.0)  # gradient scale, linear from first to last
    loss: str | None = None  # closed-loop only: a name in vradam.conformance.losses
    loss_params: tuple[tuple[str, float], ...] = ()

    def build(self) -> CaseData:
        """Draw initial parameters, gradients and losses from the case's fixed seed."""
        rng = np.random.default_rng(self.seed)
        params = [[_initial(spec, rng) for spec in group.tensors] for group in self.groups]
        signs = [[_draw(rng, spec, np.sign) for spec in group.tensors] for group in self.groups]

        grads = []
        hyperparams = []
        for step in range(1, self.steps + 1):
            ramp = _ramp(self.grad_ramp, step, self.steps)
            step_grads = []
            for group, group_signs in zip(self.groups, signs, strict=True):
                step_grads.append([
                    _gradient(spec, sign, rng, step, ramp)
                    for spec, sign in zip(group.tensors, group_signs, strict=True)
                ])
            grads.append(step_grads)
            factor = SCHEDULES[self.schedule](step, self.steps)
            hyperparams.append([
                g.hyperparams.replace(lr=g.hyperparams.lr * factor) for g in self.groups
            ])

        loss_data = _loss_data(self, params, rng) if self.kind == "closed-loop" else {}
        if self.kind == "closed-loop":
            grads = [[[None] * len(g.tensors) for g in self.groups]] * self.steps
        return CaseData(params, grads, hyperparams, loss_data)


def _draw(rng: np.random.Generator, spec: TensorSpec, transform=None) -> np.ndarray:
    values = np.asarray(rng.standard_normal(spec.shape))
    if spec.complex:
        values = values + 1j * rng.standard_normal(spec.shape)
    if transform is not None:
        if spec.complex:
            return np.sign(values.real) + 1j * np.sign(values.imag)
        return transform(values)
    return values


def _initial(spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    if spec.init is not None:
        return np.asarray(spec.init, dtype=np.float64).reshape(spec.shape)
    return spec.init_scale * _draw(rng, spec)


def _ramp(ramp: tuple[float, float], step: int, steps: int) -> float:
    first, last = ramp
    fraction = 0.0 if steps == 1 else (step - 1) / (steps - 1)
    return first + (last - first) * fraction


def _gradient(
    spec: TensorSpec, sign: np.ndarray, rng: np.random.Generator, step: int, ramp: float
) -> np.ndarray | None:
    # Noise is drawn even for an absent gradient so that one tensor's absence does not
    # shift every other tensor's random stream.
    noise = _draw(rng, spec)
    if step in spec.absent_steps:
        return None
    grad = spec.grad_scale * ramp * (spec.grad_bias * sign + spec.grad_noise * noise)
    for special_step, index, special_value in spec.special:
        if special_step == step:
            grad.reshape(-1)[index] = special_value
    return grad


def _loss_data(
    case: Case, params: list[list[np.ndarray]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    options = dict(case.loss_params)
    size = sum(p.size for group in params for p in group)
    if case.loss == "quadratic":
        # H = Q diag(λ) Qᵀ with Q a product of two Householder reflections and λ
        # evenly spaced. Only arithmetic and numpy sums, no LAPACK or BLAS, so the
        # goldens do not depend on the linear-algebra build.
        q = np.eye(size)
        for _ in range(2):
            v = rng.standard_normal(size)
            q = q - np.sum(q * v, axis=1)[:, None] * (2.0 * v / np.sum(v * v))[None, :]
        eigenvalues = np.linspace(options["min_eigenvalue"], options["max_eigenvalue"], size)
        hessian = np.sum(q[:, None, :] * eigenvalues * q[None, :, :], axis=2)
        hessian = 0.5 * (hessian + hessian.T)
        return {"hessian": hessian, "center": rng.standard_normal(size)}
    if case.loss == "rosenbrock":
        return {"a": np.float64(options["a"]), "b": np.float64(options["b"])}
    if case.loss == "logistic":
        count = int(options["samples"])
        dim = size - 1
        features = rng.standard_normal((count, dim))
        true_weights = rng.standard_normal(dim)
        logits = np.sum(features * true_weights, axis=1) + 0.5
        # Labels from a noisy threshold (arithmetic only, no exp).
        labels = (logits + rng.standard_normal(count) > 0).astype(np.float64)
        return {"features": features, "labels": labels}
    raise ValueError(f"Unknown loss for case {case.name!r}: {case.loss!r}.")


def _tensors(*shapes: tuple[int, ...], **options: object) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(shape=shape, **options) for shape in shapes)


_HP = Hyperparams()
_MIXED = _tensors((3, 4), (5,), ())

CASES: tuple[Case, ...] = (
    Case(
        name="defaults",
        guards="the update with every hyperparameter at its default",
        tags=("replay", "defaults"),
        kind="replay",
        steps=20,
        groups=(GroupSpec(_MIXED),),
    ),
    Case(
        name="no-weight-decay",
        guards="weight_decay = 0 leaves the decay factor out exactly",
        tags=("replay", "weight-decay"),
        kind="replay",
        steps=20,
        seed=1,
        groups=(GroupSpec(_MIXED, _HP.replace(lr=1e-2, weight_decay=0.0)),),
    ),
    Case(
        name="strong-weight-decay",
        guards="decay is scaled by the gated η, not by α0, while the gate is active",
        tags=("replay", "weight-decay"),
        kind="replay",
        steps=20,
        seed=2,
        groups=(
            GroupSpec(
                _tensors((4, 3), (6,), init_scale=3.0, grad_scale=3.0, grad_bias=1.0),
                _HP.replace(lr=5e-2, weight_decay=0.5, beta3=1.0),
            ),
        ),
    ),
    Case(
        name="beta3-zero",
        guards="β3 = 0 turns the gate off: the step is AdamW",
        tags=("replay", "adamw-equivalent"),
        kind="replay",
        steps=20,
        seed=3,
        groups=(GroupSpec(_MIXED, _HP.replace(lr=1e-2, beta3=0.0, weight_decay=1e-2)),),
    ),
    Case(
        name="alpha1-zero",
        guards="α1 = 0 caps the gate at zero: the step is AdamW",
        tags=("replay", "adamw-equivalent"),
        kind="replay",
        steps=20,
        seed=4,
        groups=(
            GroupSpec(
                _tensors((3, 4), (5,), (), grad_scale=10.0),
                _HP.replace(lr=1e-2, alpha1=0.0, weight_decay=1e-2),
            ),
        ),
    ),
    Case(
        name="adamw-groups",
        guards="β3 = 0 across groups, absent gradients, maximize and a schedule: still AdamW",
        tags=("replay", "adamw-equivalent", "groups", "absent-gradients", "maximize", "schedule"),
        kind="replay",
        steps=20,
        seed=24,
        schedule="warmup-quadratic",
        groups=(
            GroupSpec(
                (
                    TensorSpec((3, 2), grad_bias=0.5),
                    TensorSpec((4,), grad_bias=1.0, absent_steps=frozenset({2, 3, 9})),
                ),
                _HP.replace(lr=2e-2, beta3=0.0, weight_decay=1e-2),
            ),
            GroupSpec(
                (TensorSpec((5,), grad_scale=2.0, absent_steps=frozenset({4, 5})),),
                _HP.replace(lr=5e-3, beta3=0.0, weight_decay=0.1, maximize=True),
            ),
        ),
    ),
    Case(
        name="adamw-quadratic",
        guards="closed loop with α1 = 0 on a quadratic: the framework's AdamW must agree",
        tags=("closed-loop", "adamw-equivalent"),
        kind="closed-loop",
        steps=60,
        seed=25,
        loss="quadratic",
        loss_params=(("min_eigenvalue", 0.5), ("max_eigenvalue", 20.0)),
        groups=(GroupSpec(_tensors((3,), (2,)), _HP.replace(lr=5e-2, alpha1=0.0)),),
    ),
    Case(
        name="gate-unsaturated",
        guards="β3·S below α1: η follows S continuously",
        tags=("replay", "gate"),
        kind="replay",
        steps=20,
        seed=5,
        groups=(GroupSpec(_tensors((8,), (2, 2), grad_bias=1.0), _HP.replace(beta3=0.5)),),
    ),
    Case(
        name="gate-saturated",
        guards="β3·S far above α1: η sits at α0/(1 + α1)",
        tags=("replay", "gate"),
        kind="replay",
        steps=20,
        seed=6,
        groups=(GroupSpec(_tensors((8,), (2, 2), grad_scale=30.0, grad_bias=1.0)),),
    ),
    Case(
        name="gate-crossing-cap",
        guards="β3·S growing through α1 mid-trajectory: min switches branch",
        tags=("replay", "gate"),
        kind="replay",
        steps=40,
        seed=7,
        grad_ramp=(0.2, 2.0),
        groups=(GroupSpec(_tensors((6,), (3, 2), grad_bias=1.0), _HP.replace(lr=1e-2)),),
    ),
    Case(
        name="shapes",
        guards="tensors of many shapes, including 0-d and zero-size, share one S",
        tags=("replay", "shapes"),
        kind="replay",
        steps=12,
        seed=8,
        groups=(GroupSpec(_tensors((2, 3, 4), (7,), (), (0,), (3, 0), (1, 1), grad_bias=0.5)),),
    ),
    Case(
        name="groups",
        guards="groups with different α0, β3, α1 and λ share one global S",
        tags=("replay", "groups"),
        kind="replay",
        steps=20,
        seed=9,
        groups=(
            GroupSpec(_tensors((4,), (2, 2), grad_bias=1.0), _HP.replace(lr=1e-2, beta3=2.0)),
            GroupSpec(
                _tensors((3,), grad_scale=3.0, grad_bias=1.0),
                _HP.replace(lr=3e-2, beta3=0.3, alpha1=4.0, weight_decay=1e-2),
            ),
            GroupSpec(_tensors((5,), ()), _HP.replace(lr=1e-3, beta3=0.0, alpha1=6.0)),
        ),
    ),
    Case(
        name="absent-gradients",
        guards="a None gradient skips the tensor, leaves it out of S, and keeps its t",
        tags=("replay", "absent-gradients"),
        kind="replay",
        steps=15,
        seed=10,
        groups=(
            GroupSpec((
                TensorSpec((4,), grad_bias=1.0, absent_steps=frozenset({1, 2, 7})),
                TensorSpec((2, 3), grad_bias=1.0, absent_steps=frozenset({5, 6, 9, 10, 11})),
            )),
            GroupSpec(
                (TensorSpec((3,), grad_scale=2.0, absent_steps=frozenset({3, 4, 5, 6, 7, 8})),),
                _HP.replace(lr=2e-3),
            ),
        ),
    ),
    Case(
        name="maximize",
        guards="maximize negates the gradient in one group and not in another",
        tags=("replay", "maximize"),
        kind="replay",
        steps=15,
        seed=11,
        groups=(
            GroupSpec(_tensors((4,), (), grad_bias=1.0), _HP.replace(maximize=True, lr=1e-2)),
            GroupSpec(_tensors((3,), grad_bias=1.0), _HP.replace(lr=1e-2)),
        ),
    ),
    Case(
        name="complex",
        guards="complex tensors as their real view: v per component, S = Σ|m|²",
        tags=("replay", "complex"),
        kind="replay",
        steps=15,
        seed=12,
        dtypes=WIDE_DTYPES,
        groups=(
            GroupSpec(
                (
                    TensorSpec((2, 3), complex=True, grad_bias=0.5),
                    TensorSpec((4,), grad_bias=0.5),
                    TensorSpec((), complex=True, grad_scale=2.0),
                ),
                _HP.replace(lr=1e-2, weight_decay=1e-2),
            ),
        ),
    ),
    Case(
        name="inf-gradient",
        guards="+inf in one gradient saturates η at α0/(1 + α1) for every other tensor",
        tags=("replay", "nonfinite"),
        kind="replay",
        steps=5,
        seed=13,
        groups=(
            GroupSpec((TensorSpec((4,), special=((2, 1, math.inf),)), TensorSpec((3,)))),
            GroupSpec(_tensors((2,)), _HP.replace(lr=1e-2)),
        ),
    ),
    Case(
        name="nan-gradient",
        guards="NaN in one gradient propagates through S and η into every tensor",
        tags=("replay", "nonfinite"),
        kind="replay",
        steps=4,
        seed=14,
        groups=(
            GroupSpec((TensorSpec((4,), special=((2, 0, math.nan),)), TensorSpec((3,)))),
            GroupSpec(_tensors((2,)), _HP.replace(lr=1e-2)),
        ),
    ),
    Case(
        name="lr-schedule",
        guards="α0 changing at every step, as a scheduler sets it, in two groups",
        tags=("replay", "schedule"),
        kind="replay",
        steps=30,
        seed=15,
        schedule="warmup-quadratic",
        groups=(
            GroupSpec(_tensors((5,), (2, 2), grad_bias=1.0), _HP.replace(lr=5e-2)),
            GroupSpec(_tensors((3,)), _HP.replace(lr=1e-2, beta3=0.2)),
        ),
    ),
    Case(
        name="long-trajectory",
        guards="600 steps: drift that no short case shows",
        tags=("replay", "long"),
        kind="replay",
        steps=600,
        seed=16,
        groups=(
            GroupSpec(
                _tensors((4, 3), (8,), (), grad_bias=0.3),
                _HP.replace(lr=3e-3, weight_decay=1e-2),
            ),
        ),
    ),
    Case(
        name="tiny-gradients",
        guards="gradients near 1e-8, so ε matters and must sit outside the square root",
        tags=("replay", "epsilon"),
        kind="replay",
        steps=15,
        seed=17,
        dtypes=("float64", "float32", "bfloat16"),
        groups=(GroupSpec(_tensors((5,), (2, 3), grad_scale=1e-8, grad_bias=0.5)),),
    ),
    Case(
        name="float16-norm-overflow",
        guards="‖m‖² above the float16 maximum 65504 must not overflow S and saturate the gate",
        tags=("replay", "low-precision"),
        kind="replay",
        steps=8,
        seed=18,
        dtypes=ALL_DTYPES,
        groups=(
            GroupSpec(
                # |g| stays under 255 so that g² fits in float16 as well.
                _tensors((32,), grad_scale=20.0, grad_bias=5.0),
                _HP.replace(lr=1e-2, beta1=0.5, beta3=1e-5),
            ),
        ),
    ),
    Case(
        name="bfloat16-small-terms",
        guards="S of one large and 300 small tensors must keep the small terms",
        tags=("replay", "low-precision"),
        kind="replay",
        steps=6,
        seed=19,
        dtypes=ALL_DTYPES,
        groups=(
            GroupSpec(
                (
                    TensorSpec((256,), grad_scale=0.6, grad_bias=1.0, grad_noise=0.1),
                    *_tensors(*[(2,)] * 300, grad_scale=0.3, grad_bias=1.0, grad_noise=0.1),
                ),
                # β2 = 0.99 keeps v = (1 − β2)·g² a normal float16 number.
                _HP.replace(lr=1e-2, beta1=0.5, beta2=0.99, beta3=0.02),
            ),
        ),
    ),
    Case(
        name="float16-groups",
        guards="groups, maximize and absent gradients with every value a normal float16 number",
        tags=("replay", "low-precision", "groups", "maximize", "absent-gradients"),
        kind="replay",
        steps=12,
        seed=23,
        dtypes=ALL_DTYPES,
        groups=(
            GroupSpec(
                (
                    TensorSpec((3, 4), grad_bias=1.0, grad_noise=0.2),
                    TensorSpec((), grad_scale=2.0, grad_bias=1.0, grad_noise=0.2,
                               absent_steps=frozenset({2, 3, 8})),
                ),
                _HP.replace(lr=2e-2, beta2=0.99, beta3=0.5),
            ),
            GroupSpec(
                _tensors((5,), grad_scale=0.7, grad_bias=1.0, grad_noise=0.2),
                _HP.replace(lr=5e-2, beta2=0.99, beta3=2.0, alpha1=3.0, maximize=True,
                            weight_decay=1e-2),
            ),
        ),
    ),
    Case(
        name="quadratic",
        guards="closed loop on a 6-dimensional quadratic with condition number 100",
        tags=("closed-loop",),
        kind="closed-loop",
        steps=100,
        seed=20,
        loss="quadratic",
        loss_params=(("min_eigenvalue", 0.5), ("max_eigenvalue", 50.0)),
        groups=(GroupSpec(_tensors((4,), (2,)), _HP.replace(lr=5e-2, beta3=0.05)),),
    ),
    Case(
        name="rosenbrock",
        guards="closed loop on the 4-dimensional Rosenbrock function",
        tags=("closed-loop",),
        kind="closed-loop",
        steps=150,
        seed=21,
        loss="rosenbrock",
        loss_params=(("a", 1.0), ("b", 100.0)),
        groups=(
            GroupSpec(
                (TensorSpec((2,), init=(-1.2, 1.0)), TensorSpec((2,), init=(-0.5, 0.8))),
                _HP.replace(lr=1e-2, beta3=1e-3, weight_decay=0.0),
            ),
        ),
    ),
    Case(
        name="logistic",
        guards="closed loop on logistic regression over 64 fixed samples, in two groups",
        tags=("closed-loop",),
        kind="closed-loop",
        steps=100,
        seed=22,
        loss="logistic",
        loss_params=(("samples", 64),),
        groups=(
            GroupSpec(_tensors((5,), init_scale=0.1), _HP.replace(lr=5e-2, beta3=1e3)),
            GroupSpec(
                _tensors((1,), init_scale=0.1),
                _HP.replace(lr=5e-2, beta3=1e3, weight_decay=0.0),
            ),
        ),
    ),
)


def markdown_table(cases: tuple[Case, ...] = CASES) -> str:
    """Return the catalogue as a Markdown table, as docs/conformance.md shows it."""
    lines = [
        "| case | kind | steps | dtypes | tags | guards |",
        "|---|---|---|---|---|---|",
    ]
    for case in cases:
        tags = ", ".join(t for t in case.tags if t not in ("replay", "closed-loop"))
        lines.append(
            f"| `{case.name}` | {case.kind} | {case.steps} | {', '.join(case.dtypes)} "
            f"| {tags} | {case.guards.replace('|', chr(92) + '|')} |"
        )
    return "\n".join(lines) + "\n"


def find_case(name: str) -> Case:
    """Return the case called ``name``."""
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"Unknown conformance case {name!r}; known cases: {[c.name for c in CASES]}.")
