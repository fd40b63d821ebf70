"""VRAdam's hyperparameters: their defaults and the one place they are validated.

Every adapter calls :func:`validate_hyperparams` on the values a user passes, so an
invalid value is rejected with the same message whatever the framework.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping

import numpy as np

__all__ = ["DEFAULTS", "Hyperparams", "validate_hyperparams"]


#: Defaults shared by every backend, in the order of the update rule.
DEFAULTS: Mapping[str, float] = {
    "lr": 1e-3,  # α0, the base step size
    "beta1": 0.9,  # decay of the first moment m
    "beta2": 0.999,  # decay of the second moment v
    "beta3": 1.0,  # gate strength, in units of 1/‖m‖²
    "alpha1": 10.0,  # cap on the gate: η never falls below α0 / (1 + α1)
    "eps": 1e-8,
    "weight_decay": 1e-5,  # λ, decoupled and scaled by η
}

# Each rule: its statement for error messages, and its test on the value as a float.
_RULES: Mapping[str, tuple[str, object]] = {
    "lr": ("a finite number >= 0", lambda x: 0.0 <= x < math.inf),
    "beta1": ("a number in [0, 1)", lambda x: 0.0 <= x < 1.0),
    "beta2": ("a number in [0, 1)", lambda x: 0.0 <= x < 1.0),
    "beta3": ("a finite number >= 0", lambda x: 0.0 <= x < math.inf),
    # alpha1 = inf is the uncapped gate α0 / (1 + β3·S), which is a meaningful choice.
    "alpha1": ("a number >= 0 (inf removes the cap)", lambda x: x >= 0.0),
    "eps": ("a finite number >= 0", lambda x: 0.0 <= x < math.inf),
    "weight_decay": ("a finite number >= 0", lambda x: 0.0 <= x < math.inf),
}

# Python objects that are never a hyperparameter, even where they convert to a number.
_NEVER_NUMBERS = (str, bytes, bool, complex, list, tuple, dict, set, type(None))


def _is_array_like(value: object) -> bool:
    """Return whether ``value`` is a framework array: a tensor, a JAX array or a tracer."""
    return hasattr(value, "shape") and hasattr(value, "dtype")


def validate_hyperparams(
    *,
    lr: object = DEFAULTS["lr"],
    beta1: object = DEFAULTS["beta1"],
    beta2: object = DEFAULTS["beta2"],
    beta3: object = DEFAULTS["beta3"],
    alpha1: object = DEFAULTS["alpha1"],
    eps: object = DEFAULTS["eps"],
    weight_decay: object = DEFAULTS["weight_decay"],
    maximize: object = False,
    names: Mapping[str, str] | None = None,
) -> None:
    """Raise if a hyperparameter given as a Python scalar is out of range.

    Rules: ``lr``, ``beta3``, ``eps`` and ``weight_decay`` are finite and >= 0;
    ``beta1`` and ``beta2`` lie in [0, 1); ``alpha1`` is >= 0 and may be ``inf``;
    ``maximize`` is a bool. NaN fails every rule.

    Python and numpy real numbers, and 0-d numpy arrays, are checked. A framework
    array (a torch tensor, a JAX array or tracer) passes through unchecked, because
    reading its value could force a device sync or fail under tracing. Adapters
    check the ones they can read cheaply. Any other object raises ``TypeError``.

    Args:
      names: the name a user typed for each spec name, for example
        ``{"beta1": "betas[0]"}`` in PyTorch, so the message points at the
        argument the user actually passed.

    Raises:
      ValueError: a real number is out of range. The message names the argument
        and echoes the value received.
      TypeError: the value is not a number at all (a string, None, a bool, ...).
    """
    names = names or {}
    values = {
        "lr": lr,
        "beta1": beta1,
        "beta2": beta2,
        "beta3": beta3,
        "alpha1": alpha1,
        "eps": eps,
        "weight_decay": weight_decay,
    }
    for key, value in values.items():
        name = names.get(key, key)
        rule, is_valid = _RULES[key]
        message = f"Invalid {name}: expected {rule}, received {name}={value!r}."

        if isinstance(value, np.ndarray):
            if value.ndim != 0:
                raise ValueError(
                    f"Invalid {name}: expected a scalar, received an array of shape {value.shape}."
                )
            value = value[()]
        if isinstance(value, _NEVER_NUMBERS) or isinstance(value, np.bool_):
            raise TypeError(message)
        if isinstance(value, numbers.Real):
            # Fraction and other exotic reals convert to float but fail in array
            # arithmetic later, so only int, float and numpy numbers are accepted.
            if not isinstance(value, (int, float, np.number)):
                raise TypeError(message)
            if not is_valid(float(value)):
                raise ValueError(message)
        elif not _is_array_like(value):
            raise TypeError(message)

    if not isinstance(maximize, bool):
        name = names.get("maximize", "maximize")
        raise TypeError(f"Invalid {name}: expected True or False, received {name}={maximize!r}.")


@dataclasses.dataclass(frozen=True)
class Hyperparams:
    """Hyperparameters of one parameter group, validated on construction.

    Field names follow PyTorch where it has one (``lr``, ``eps``, ``weight_decay``)
    and the symbols of the VRAdam paper (arXiv 2505.13196) otherwise. ``lr`` is α0
    and ``weight_decay`` is λ.
    """

    lr: float = DEFAULTS["lr"]
    beta1: float = DEFAULTS["beta1"]
    beta2: float = DEFAULTS["beta2"]
    beta3: float = DEFAULTS["beta3"]
    alpha1: float = DEFAULTS["alpha1"]
    eps: float = DEFAULTS["eps"]
    weight_decay: float = DEFAULTS["weight_decay"]
    maximize: bool = False

    def __post_init__(self) -> None:
        validate_hyperparams(**dataclasses.asdict(self))

    def replace(self, **changes: object) -> Hyperparams:
        """Return a copy with some fields changed, validated like the original."""
        return dataclasses.replace(self, **changes)
