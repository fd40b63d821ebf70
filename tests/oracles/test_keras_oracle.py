r"""The goldens against keras.optimizers.AdamW on the backend that KERAS_BACKEND selects.

With β3 = 0 or α1 = 0 the gate is off and VRAdam is AdamW, so Keras's own AdamW
must reproduce every golden trajectory tagged ``adamw-equivalent``, on each of the
TensorFlow, JAX and PyTorch backends (the PyTorch backend has its own foreach code).

Keras 3 (3.15.1, ``keras/src/optimizers/adam.py``) computes Adam in the "epsilon
hat" form of Kingma and Ba: with ε_k its ``epsilon``,

.. math::

    \theta \leftarrow \theta - \alpha_0 \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}
        \cdot \frac{m}{\sqrt{v} + \epsilon_k},

adding ε_k to √v before the bias correction of v. The spec adds ε to √v̂:

.. math::

    \alpha_0 \frac{\hat m}{\sqrt{\hat v} + \epsilon}
    = \alpha_0 \frac{m / (1 - \beta_1^t)}{(\sqrt{v} + \epsilon\sqrt{1 - \beta_2^t})
        / \sqrt{1 - \beta_2^t}}
    = \alpha_0 \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}
        \cdot \frac{m}{\sqrt{v} + \epsilon\sqrt{1 - \beta_2^t}}.

So the two are the same function exactly when ε_k = ε·√(1 − β2^t). The adapter
sets that value before every step, from the tensor's own t; only the rounding of
ε_k (computed in float64, then cast) differs. Without the compensation the step
differs by a relative ε·(1 − √(1 − β2^t))/√v, largest while t is small.

Keras applies weight decay before the Adam step as θ ← θ − θ·λ·α0 (its base
learning rate), which is the spec's θ·(1 − η·λ) with η = α0 when the gate is off.

The comparison runs in float64 only. In float32 Keras forms 1 − β2^t in float32,
and rounding β2 = 0.999 to float32 (0.99900001) already moves 1 − β2 by a relative
1.3e-5, so the first step is off by about 6e-6 relative: a property of Keras's
float32 arithmetic, larger than the suite's float32 tolerance, which no choice of
ε_k undoes.

Keras counts steps per optimizer (``iterations``), not per variable, so the
adapter gives every tensor its own optimizer and calls it only when the tensor
has a gradient: that is the spec's per-tensor t, and it makes groups independent.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from vradam.conformance import run_suite  # noqa: E402
from vradam.conformance.adapter import Adapter, Loss, Moments, Run, StepReport  # noqa: E402
from vradam.hyperparams import Hyperparams  # noqa: E402
from vradam.spec import as_real, from_real  # noqa: E402

BACKEND = keras.backend.backend()
if BACKEND == "jax":
    import jax

    # float64 trajectories need 64-bit JAX arrays, which are off by default.
    jax.config.update("jax_enable_x64", True)

# The optimizer keeps its learning rate in a variable of Keras's default float
# type, so float64 runs need that type to be float64. float32 runs are unaffected,
# because every variable here has an explicit dtype.
keras.config.set_floatx("float64")

ops = keras.ops

# The type of the hyperparameters handed to Keras. The TensorFlow backend turns a
# Python float into a float32 tensor before casting it (Keras 3.15.1, TensorFlow
# 2.21), which rounds β2 = 0.999 to 0.99900001, so it gets numpy float64 scalars.
# On the torch backend a numpy scalar times a Keras variable goes through
# np.array and warns, so the other backends get Python floats.
SCALAR = np.float64 if BACKEND == "tensorflow" else float


def to_numpy(tensor) -> np.ndarray:
    """Copy a backend tensor or variable value to a float64 numpy array.

    keras.ops.convert_to_numpy calls np.array on torch and TensorFlow tensors, whose
    __array__ takes no copy argument, and numpy 2.4 warns at every such call.
    """
    if BACKEND == "torch":
        tensor = tensor.detach().cpu().numpy()
    elif BACKEND == "tensorflow":
        tensor = tensor.numpy()
    return np.asarray(tensor, dtype=np.float64)


def compensated_epsilon(hp: Hyperparams, t: int) -> float:
    """Return Keras's ε_k that makes its step equal the spec's at step ``t`` (see above)."""
    return hp.eps * math.sqrt(1.0 - hp.beta2**t)


def uncompensated_epsilon(hp: Hyperparams, t: int) -> float:
    """Return the spec's ε unchanged, which Keras adds before bias correction: a wrong variant."""
    return hp.eps


def closed_loop_loss(loss: Loss, dtype: str) -> Callable[[list], object]:
    """Return the case's loss written with keras.ops, differentiable on every backend.

    Products are elementwise followed by sums: keras.ops.matmul of two float64
    tensors returns float32 on the torch backend (Keras 3.15.1).
    """
    data = {key: ops.convert_to_tensor(value, dtype=dtype) for key, value in loss.data.items()}

    def flat(tensors):
        return ops.concatenate([ops.reshape(t, (-1,)) for t in tensors])

    if loss.name == "quadratic":

        def value(tensors):
            d = flat(tensors) - data["center"]
            return 0.5 * ops.sum(d * ops.sum(data["hessian"] * d, axis=1))

    elif loss.name == "rosenbrock":

        def value(tensors):
            x = flat(tensors)
            return ops.sum(data["b"] * (x[1:] - x[:-1] ** 2) ** 2 + (data["a"] - x[:-1]) ** 2)

    elif loss.name == "logistic":

        def value(tensors):
            x = flat(tensors)
            z = ops.sum(data["features"] * x[:-1], axis=1) + x[-1]
            return ops.mean(ops.softplus(z) - data["labels"] * z)

    else:
        raise ValueError(f"Unknown closed-loop loss {loss.name!r}.")
    return value


def backend_gradients(value: Callable[[list], object], tensors: list) -> list:
    """Return the gradients of ``value`` at ``tensors`` from the backend's own autodiff."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        sources = [tf.convert_to_tensor(t) for t in tensors]
        with tf.GradientTape() as tape:
            tape.watch(sources)
            result = value(sources)
        return tape.gradient(result, sources)
    if BACKEND == "jax":
        return jax.grad(value)([ops.convert_to_tensor(t) for t in tensors])
    if BACKEND == "torch":
        import torch

        sources = [ops.convert_to_tensor(t).detach().clone().requires_grad_(True) for t in tensors]
        return list(torch.autograd.grad(value(sources), sources))
    raise ValueError(f"No autodiff for Keras backend {BACKEND!r}.")


class KerasRun(Run):
    def __init__(
        self,
        params: Sequence[Sequence[np.ndarray]],
        hyperparams: Sequence[Hyperparams],
        *,
        dtype: str,
        loss: Loss | None,
        epsilon: Callable[[Hyperparams, int], float],
    ) -> None:
        self._dtype = dtype
        self._epsilon = epsilon
        # Complex tensors are optimized as their real view, the spec's definition.
        self._like = [[np.asarray(p) for p in group] for group in params]
        self._variables = [
            [keras.Variable(as_real(np.asarray(p)), dtype=dtype) for p in group] for group in params
        ]
        self._optimizers = []
        for variables, hp in zip(self._variables, hyperparams, strict=True):
            group_optimizers = []
            for variable in variables:
                optimizer = keras.optimizers.AdamW(
                    learning_rate=hp.lr,
                    weight_decay=hp.weight_decay,
                    beta_1=hp.beta1,
                    beta_2=hp.beta2,
                    epsilon=hp.eps,
                )
                optimizer.build([variable])
                group_optimizers.append(optimizer)
            self._optimizers.append(group_optimizers)
        self._loss = None if loss is None else closed_loop_loss(loss, dtype)

    def step(self, grads, hyperparams) -> StepReport:
        if grads is None:
            # Closed loop: the gradient of the case's loss, by the backend's autodiff.
            tensors = [v.value for group in self._variables for v in group]
            per_tensor = backend_gradients(self._loss, tensors)
            grads, start = [], 0
            for group in self._variables:
                grads.append(per_tensor[start : start + len(group)])
                start += len(group)

        for variables, optimizers, group_grads, hp in zip(
            self._variables, self._optimizers, grads, hyperparams, strict=True
        ):
            for variable, optimizer, grad in zip(variables, optimizers, group_grads, strict=True):
                if grad is None:
                    continue
                if isinstance(grad, np.ndarray) or np.isscalar(grad):
                    grad = as_real(np.asarray(grad))
                grad = ops.convert_to_tensor(grad, dtype=self._dtype)
                if hp.maximize:
                    grad = -grad
                # Set this step's hyperparameters, because α0 changes in the schedule
                # case. Keras runs eagerly here, so it reads the attributes each step.
                t = int(to_numpy(optimizer.iterations.value)) + 1
                optimizer.learning_rate = hp.lr
                optimizer.weight_decay = SCALAR(hp.weight_decay)
                optimizer.beta_1 = SCALAR(hp.beta1)
                optimizer.beta_2 = SCALAR(hp.beta2)
                optimizer.epsilon = SCALAR(self._epsilon(hp, t))
                optimizer.apply([grad], [variable])

        # AdamW has no S or η, so the runner skips those comparisons.
        return StepReport(None, None)

    def params(self) -> list[list[np.ndarray]]:
        return [
            [from_real(to_numpy(v.value), like) for v, like in zip(group, likes, strict=True)]
            for group, likes in zip(self._variables, self._like, strict=True)
        ]

    def moments(self) -> Moments:
        # Keras has no public accessor for one variable's slots. Each optimizer here
        # owns exactly one variable, so its slots are the first of each list.
        return [
            [
                (
                    int(to_numpy(opt.iterations.value)),
                    to_numpy(opt._momentums[0].value),
                    to_numpy(opt._velocities[0].value),
                )
                for opt in optimizers
            ]
            for optimizers in self._optimizers
        ]

    def load(self, params, moments) -> None:
        for variables, optimizers, group_params, group_moments in zip(
            self._variables, self._optimizers, params, moments, strict=True
        ):
            for variable, opt, param, (count, mu, nu) in zip(
                variables, optimizers, group_params, group_moments, strict=True
            ):
                variable.assign(as_real(np.asarray(param)).astype(self._dtype))
                opt.iterations.assign(count)
                opt._momentums[0].assign(np.asarray(mu).astype(self._dtype))
                opt._velocities[0].assign(np.asarray(nu).astype(self._dtype))


class KerasAdapter(Adapter):
    """keras.optimizers.AdamW, with ε compensated for its epsilon-hat form."""

    dtypes = ("float64",)  # float32 is excluded for the reason in the module docstring

    def __init__(
        self,
        epsilon: Callable[[Hyperparams, int], float] = compensated_epsilon,
        name: str = f"keras-{BACKEND}.AdamW",
    ) -> None:
        self.epsilon = epsilon
        self.name = name

    def create(self, params, hyperparams, *, dtype, device, loss) -> Run:
        if device != "cpu":
            raise ValueError(f"The Keras oracle runs on the CPU only, received device={device!r}.")
        return KerasRun(params, hyperparams, dtype=dtype, loss=loss, epsilon=self.epsilon)


def test_keras_backend_matches_environment() -> None:
    assert BACKEND == os.environ.get("KERAS_BACKEND", BACKEND)


def test_keras_adamw_matches_goldens() -> None:
    report = run_suite(KerasAdapter(), dtype="float64", tags=["adamw-equivalent"])
    assert report.ok, str(report)


def test_keras_adamw_runs_every_case() -> None:
    report = run_suite(KerasAdapter(), dtype="float64", tags=["adamw-equivalent"])
    assert not report.skipped, report.skipped


def test_uncompensated_epsilon_fails() -> None:
    adapter = KerasAdapter(uncompensated_epsilon, name="keras AdamW, epsilon hat")
    report = run_suite(adapter, dtype="float64", tags=["adamw-equivalent"])
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
    value = closed_loop_loss(Loss(name, data), "float64")
    grads = backend_gradients(value, [ops.convert_to_tensor(t, dtype="float64") for t in tensors])
    flat = np.concatenate([np.reshape(to_numpy(g), -1) for g in grads])
    x = np.concatenate([np.reshape(t, -1) for t in tensors])
    np.testing.assert_allclose(flat, losses.gradient(name, data, x), rtol=1e-12, atol=1e-12)
