"""The goldens against optax.adamw, an implementation of AdamW written independently of vradam.

With β3 = 0 or α1 = 0 the gate is off and VRAdam is AdamW, so ``optax.adamw``
must reproduce every golden trajectory tagged ``adamw-equivalent``. The formulas
agree term by term (optax 0.2.8, ``optax/_src/alias.py`` and ``transform.py``):

* ``scale_by_adam`` computes m̂/(√(v̂ + eps_root) + eps) with bias-corrected m̂ and
  v̂; with ``eps_root = 0`` (its default) that is the spec's m̂/(√v̂ + ε), ε outside
  the square root.
* ``add_decayed_weights(λ)`` adds λ·θ to that direction and
  ``scale_by_learning_rate(α0)`` multiplies the sum by −α0, so
  θ ← θ − α0·(m̂/(√v̂ + ε) + λ·θ) = θ·(1 − α0·λ) − α0·m̂/(√v̂ + ε): decoupled
  decay scaled by the step size, as in the spec with η = α0.

optax keeps one step count per optimizer state, so the adapter gives every
tensor its own state and updates it only when the tensor has a gradient: that
is the spec's per-tensor t, and it makes parameter groups independent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

from vradam.conformance import case_names, run_suite  # noqa: E402
from vradam.conformance.adapter import Adapter, Loss, Moments, Run, StepReport  # noqa: E402
from vradam.hyperparams import Hyperparams  # noqa: E402
from vradam.spec import as_real, from_real  # noqa: E402

# float64 trajectories need 64-bit JAX arrays, which are off by default.
jax.config.update("jax_enable_x64", True)

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}
ADAMW_CASES = case_names(tags=["adamw-equivalent"])

TransformFactory = Callable[[Hyperparams], "optax.GradientTransformation"]


def adamw(hp: Hyperparams) -> optax.GradientTransformation:
    """Return optax's own AdamW with the spec's hyperparameters (η = α0 with the gate off)."""
    return optax.adamw(
        learning_rate=hp.lr, b1=hp.beta1, b2=hp.beta2, eps=hp.eps, weight_decay=hp.weight_decay
    )


def adamw_decay_without_lr(hp: Hyperparams) -> optax.GradientTransformation:
    """Return AdamW with the decay applied after the step size: θ·(1 − λ), a known wrong variant."""
    return optax.chain(
        optax.scale_by_adam(b1=hp.beta1, b2=hp.beta2, eps=hp.eps),
        optax.scale_by_learning_rate(hp.lr),
        optax.add_decayed_weights(-hp.weight_decay),
    )


def adam_eps_inside_sqrt(hp: Hyperparams) -> optax.GradientTransformation:
    """Return AdamW with ε² added under the square root instead of ε outside it."""
    return optax.adamw(
        learning_rate=hp.lr,
        b1=hp.beta1,
        b2=hp.beta2,
        eps=0.0,
        eps_root=hp.eps**2,
        weight_decay=hp.weight_decay,
    )


def closed_loop_loss(loss: Loss, dtype) -> Callable[[list[jax.Array]], jax.Array]:
    """Return the case's loss as a JAX function of the parameter list, for jax.grad."""
    data = {key: jnp.asarray(value, dtype=dtype) for key, value in loss.data.items()}

    def flat(tensors: list[jax.Array]) -> jax.Array:
        return jnp.concatenate([jnp.reshape(t, (-1,)) for t in tensors])

    if loss.name == "quadratic":

        def value(tensors):
            d = flat(tensors) - data["center"]
            return 0.5 * d @ data["hessian"] @ d

    elif loss.name == "rosenbrock":

        def value(tensors):
            x = flat(tensors)
            return jnp.sum(data["b"] * (x[1:] - x[:-1] ** 2) ** 2 + (data["a"] - x[:-1]) ** 2)

    elif loss.name == "logistic":

        def value(tensors):
            x = flat(tensors)
            z = data["features"] @ x[:-1] + x[-1]
            return jnp.mean(jax.nn.softplus(z) - data["labels"] * z)

    else:
        raise ValueError(f"Unknown closed-loop loss {loss.name!r}.")
    return value


class OptaxRun(Run):
    def __init__(
        self,
        params: Sequence[Sequence[np.ndarray]],
        hyperparams: Sequence[Hyperparams],
        *,
        dtype: str,
        loss: Loss | None,
        transform: TransformFactory,
    ) -> None:
        self._dtype = DTYPES[dtype]
        self._transform = transform
        # Complex tensors are optimized as their real view, the spec's definition;
        # optax's own complex Adam keeps one v per complex entry, which is not that.
        self._like = [[np.asarray(p) for p in group] for group in params]
        self._params = [
            [jnp.asarray(as_real(p), dtype=self._dtype) for p in group] for group in params
        ]
        self._states = [
            [transform(hp).init(p) for p in group]
            for group, hp in zip(self._params, hyperparams, strict=True)
        ]
        self._loss = None if loss is None else jax.grad(closed_loop_loss(loss, self._dtype))

    def step(self, grads, hyperparams) -> StepReport:
        if grads is None:
            # Closed loop: the gradient of the case's loss, by JAX's own autodiff.
            per_tensor = self._loss([p for group in self._params for p in group])
            grads, start = [], 0
            for group in self._params:
                grads.append(per_tensor[start : start + len(group)])
                start += len(group)

        for params, states, group_grads, hp in zip(
            self._params, self._states, grads, hyperparams, strict=True
        ):
            # A fresh transform per step carries this step's hyperparameters (the
            # learning-rate schedule case changes α0); its state layout never changes.
            transform = self._transform(hp)
            for i, grad in enumerate(group_grads):
                if grad is None:
                    continue
                grad = jnp.asarray(as_real(np.asarray(grad)), dtype=self._dtype)
                if hp.maximize:
                    grad = -grad
                updates, states[i] = transform.update(grad, states[i], params[i])
                params[i] = optax.apply_updates(params[i], updates)

        # AdamW has no S or η, so the runner skips those comparisons.
        return StepReport(None, None)

    def params(self) -> list[list[np.ndarray]]:
        return [
            [
                from_real(np.asarray(p, dtype=np.float64), like)
                for p, like in zip(group, likes, strict=True)
            ]
            for group, likes in zip(self._params, self._like, strict=True)
        ]

    def moments(self) -> Moments:
        return [
            [
                (
                    int(adam.count),
                    np.asarray(adam.mu, dtype=np.float64),
                    np.asarray(adam.nu, dtype=np.float64),
                )
                for adam in (state[0] for state in states)
            ]
            for states in self._states
        ]

    def load(self, params, moments) -> None:
        self._params = [
            [jnp.asarray(as_real(np.asarray(p)), dtype=self._dtype) for p in group]
            for group in params
        ]
        for states, group_moments in zip(self._states, moments, strict=True):
            for i, (count, mu, nu) in enumerate(group_moments):
                adam = states[i][0]._replace(
                    count=jnp.asarray(count, dtype=jnp.int32),
                    mu=jnp.asarray(mu, dtype=self._dtype),
                    nu=jnp.asarray(nu, dtype=self._dtype),
                )
                states[i] = (adam, *states[i][1:])


class OptaxAdapter(Adapter):
    """optax.adamw (or a variant given by ``transform``) as a conformance adapter."""

    dtypes = ("float64", "float32")

    def __init__(self, transform: TransformFactory = adamw, name: str = "optax.adamw") -> None:
        self.transform = transform
        self.name = name

    def create(self, params, hyperparams, *, dtype, device, loss) -> Run:
        if device != "cpu":
            raise ValueError(f"The optax oracle runs on the CPU only, received device={device!r}.")
        return OptaxRun(params, hyperparams, dtype=dtype, loss=loss, transform=self.transform)


def test_adamw_equivalent_cases_exist() -> None:
    assert len(ADAMW_CASES) >= 2


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_optax_adamw_matches_goldens(dtype: str) -> None:
    report = run_suite(OptaxAdapter(), dtype=dtype, tags=["adamw-equivalent"])
    assert report.ok, str(report)


def test_optax_adamw_runs_every_case() -> None:
    report = run_suite(OptaxAdapter(), dtype="float64", tags=["adamw-equivalent"])
    assert not report.skipped, report.skipped


@pytest.mark.parametrize(
    "transform", [adamw_decay_without_lr, adam_eps_inside_sqrt], ids=lambda f: f.__name__
)
def test_wrong_variant_fails(transform: TransformFactory) -> None:
    report = run_suite(
        OptaxAdapter(transform, name=transform.__name__), dtype="float64", tags=["adamw-equivalent"]
    )
    assert not report.ok


@pytest.mark.parametrize("name", ["quadratic", "rosenbrock", "logistic"])
def test_closed_loop_gradient_matches_reference(name: str) -> None:
    from vradam.conformance import losses

    rng = np.random.default_rng(0)
    data = {
        "quadratic": lambda: {"hessian": np.diag([1.0, 2.0, 3.0]), "center": rng.normal(size=3)},
        "rosenbrock": lambda: {"a": np.float64(1.0), "b": np.float64(100.0)},
        "logistic": lambda: {
            "features": rng.normal(size=(8, 2)),
            "labels": (rng.random(8) < 0.5).astype(np.float64),
        },
    }[name]()
    tensors = [rng.normal(size=(2,)), rng.normal(size=())]
    grad = jax.grad(closed_loop_loss(Loss(name, data), jnp.float64))(
        [jnp.asarray(t) for t in tensors]
    )
    flat = np.concatenate([np.reshape(np.asarray(g), -1) for g in grad])
    x = np.concatenate([np.reshape(t, -1) for t in tensors])
    np.testing.assert_allclose(flat, losses.gradient(name, data, x), rtol=1e-12, atol=1e-12)
