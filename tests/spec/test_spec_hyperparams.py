"""validate_hyperparams and Hyperparams: every rule, its message, and what passes through."""

from __future__ import annotations

import decimal
import fractions
import math

import numpy as np
import pytest

from vradam import DEFAULTS, Hyperparams, validate_hyperparams

INVALID = [
    ("lr", -1e-3),
    ("lr", math.inf),
    ("lr", math.nan),
    ("beta1", -0.1),
    ("beta1", 1.0),
    ("beta1", math.nan),
    ("beta2", -0.5),
    ("beta2", 1.5),
    ("beta2", math.nan),
    ("beta3", -1.0),
    ("beta3", math.inf),
    ("beta3", math.nan),
    ("alpha1", -1.0),
    ("alpha1", math.nan),
    ("eps", -1e-8),
    ("eps", math.inf),
    ("eps", math.nan),
    ("weight_decay", -1e-5),
    ("weight_decay", math.inf),
    ("weight_decay", math.nan),
]

VALID_EDGES = [
    ("lr", 0.0),
    ("beta1", 0.0),
    ("beta2", 0.0),
    ("beta1", 0.999999),
    ("beta3", 0.0),
    ("alpha1", 0.0),
    ("alpha1", math.inf),
    ("eps", 0.0),
    ("weight_decay", 0.0),
    ("lr", 1),
    ("beta3", np.float32(2.0)),
]


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_raises_value_error(name, value):
    with pytest.raises(ValueError, match=f"Invalid {name}:"):
        validate_hyperparams(**{name: value})


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_message_echoes_value(name, value):
    with pytest.raises(ValueError) as info:
        validate_hyperparams(**{name: value})
    assert f"{name}={value!r}" in str(info.value)


@pytest.mark.parametrize(("name", "value"), VALID_EDGES)
def test_valid_edge_accepted(name, value):
    validate_hyperparams(**{name: value})


@pytest.mark.parametrize("value", ["0.1", None, True, 1j, [0.9], (0.9,)])
def test_non_number_raises_type_error(value):
    with pytest.raises(TypeError, match="Invalid lr"):
        validate_hyperparams(lr=value)


def test_numpy_scalar_checked():
    with pytest.raises(ValueError, match="beta1"):
        validate_hyperparams(beta1=np.float64(1.0))


def test_numpy_0d_array_checked():
    with pytest.raises(ValueError, match="Invalid lr"):
        validate_hyperparams(lr=np.array(-1.0))


def test_numpy_array_must_be_scalar():
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        validate_hyperparams(lr=np.array([0.1, 0.2]))


@pytest.mark.parametrize(
    "value", [decimal.Decimal("0.001"), fractions.Fraction(1, 1000), object(), np.True_]
)
def test_unknown_object_raises_type_error(value):
    with pytest.raises(TypeError, match="Invalid lr"):
        validate_hyperparams(lr=value)


def test_torch_tensor_passes_unchecked():
    torch = pytest.importorskip("torch")
    validate_hyperparams(lr=torch.tensor(-1.0), beta1=torch.tensor(2.0))


def test_names_map_message():
    with pytest.raises(ValueError, match=r"Invalid betas\[0\].*betas\[0\]=1.2"):
        validate_hyperparams(beta1=1.2, names={"beta1": "betas[0]"})


def test_maximize_must_be_bool():
    with pytest.raises(TypeError, match="maximize=1"):
        validate_hyperparams(maximize=1)


def test_defaults_valid():
    validate_hyperparams(**DEFAULTS)


def test_hyperparams_defaults_match():
    hp = Hyperparams()
    for name, value in DEFAULTS.items():
        assert getattr(hp, name) == value, name


def test_hyperparams_defaults_values():
    assert dict(DEFAULTS) == {
        "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "beta3": 1.0, "alpha1": 10.0,
        "eps": 1e-8, "weight_decay": 1e-5,
    }


def test_hyperparams_validates():
    with pytest.raises(ValueError, match="eps"):
        Hyperparams(eps=-1.0)


def test_hyperparams_replace_validates():
    with pytest.raises(ValueError, match="alpha1"):
        Hyperparams().replace(alpha1=-2.0)


def test_hyperparams_replace_keeps_original():
    hp = Hyperparams()
    assert hp.replace(lr=0.5).lr == 0.5
    assert hp.lr == DEFAULTS["lr"]
