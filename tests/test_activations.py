"""Activations: values against the plain formulas, float64 gradient checks, dtypes, stability."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tests.gradcheck import assert_close_grad, numeric_grad
from kconf.engine import activations
from kconf.engine.activations import ACTIVATIONS, SELU_ALPHA, SELU_SCALE


def _gelu_reference(x):
    """x * Phi(x) element by element with math.erf."""
    flat = [v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.ravel()]
    return np.array(flat).reshape(x.shape)


def _softmax_reference(x):
    """Softmax over the last axis, row by row."""
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        e = np.exp(x[idx] - x[idx].max())
        out[idx] = e / e.sum()
    return out


REFERENCES = {
    "linear": lambda x: x,
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": _softmax_reference,
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1.0),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1.0)),
    "softplus": lambda x: np.log(1.0 + np.exp(x)),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "gelu": _gelu_reference,
    "hard_sigmoid": lambda x: np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0,
    "swish": lambda x: x / (1.0 + np.exp(-x)),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "relu6": lambda x: np.minimum(np.maximum(x, 0.0), 6.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "hard_silu": lambda x: x * np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0,
    "hard_swish": lambda x: x * np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0,
    "mish": lambda x: x * np.tanh(np.log(1.0 + np.exp(x))),
    "log_softmax": lambda x: np.log(_softmax_reference(x)),
    "exponential": np.exp,
}

NAMES = sorted(ACTIVATIONS)


def _inputs(seed=0, shape=(3, 7)):
    """Float64 inputs spread over [-5, 5] (the saturating and the linear regions)."""
    return np.random.default_rng(seed).uniform(-5.0, 5.0, size=shape)


def test_registry_has_the_keras_names_and_the_silu_alias():
    keras_names = {"linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus",
                   "softsign", "gelu", "hard_sigmoid", "swish", "relu6", "leaky_relu",
                   "hard_silu", "mish", "log_softmax", "exponential"}
    assert set(ACTIVATIONS) == keras_names | {"silu", "hard_swish"}
    assert ACTIVATIONS["silu"] is ACTIVATIONS["swish"]
    assert ACTIVATIONS["hard_swish"] is ACTIVATIONS["hard_silu"]
    assert set(REFERENCES) == set(ACTIVATIONS)


def test_get():
    assert activations.get(None) is activations.linear
    assert activations.get("relu") is activations.relu
    assert activations.get(activations.tanh) is activations.tanh
    with pytest.raises(KeyError):
        activations.get("reluu")


@pytest.mark.parametrize("name", NAMES)
def test_values_match_the_formula(name):
    x = _inputs()
    y, _ = ACTIVATIONS[name](x)
    np.testing.assert_allclose(y, REFERENCES[name](x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_float64(name):
    x = _inputs(seed=1)
    r = np.random.default_rng(2).standard_normal(x.shape)
    f = ACTIVATIONS[name]
    _, backward = f(x)
    analytic = backward(r)
    numeric = numeric_grad(lambda: float((f(x)[0] * r).sum()), x)
    assert_close_grad(analytic, numeric, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_dtype_is_preserved(name, dtype):
    x = _inputs(seed=3).astype(dtype)
    y, backward = ACTIVATIONS[name](x)
    dz = backward(np.ones_like(x))
    assert y.dtype == dtype, f"{name} output {y.dtype}"
    assert dz.dtype == dtype, f"{name} gradient {dz.dtype}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [n for n in NAMES if n != "exponential"])  # exp overflows
def test_large_inputs_do_not_overflow(name, dtype):
    x = np.array([[-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0]], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y, backward = ACTIVATIONS[name](x)
        dz = backward(np.ones_like(x))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dz)), name


def test_saturation_values():
    x = np.array([-100.0, 100.0])
    np.testing.assert_allclose(activations.sigmoid(x)[0], [0.0, 1.0], atol=1e-40)
    np.testing.assert_allclose(activations.softplus(x)[0], [0.0, 100.0], atol=1e-40)
    np.testing.assert_allclose(activations.gelu(x)[0], [0.0, 100.0], atol=1e-40)


def test_keras3_hard_sigmoid_is_relu6_based():
    # Keras 3: relu6(x + 3) / 6, not Keras 2's 0.2 x + 0.5.
    y, _ = activations.hard_sigmoid(np.array([-4.0, -3.0, 0.0, 1.0, 3.0, 4.0]))
    np.testing.assert_allclose(y, [0.0, 0.0, 0.5, 0.5 + 1 / 6, 1.0, 1.0])


def test_selu_constants():
    y, _ = activations.selu(np.array([1.0, -50.0]))
    np.testing.assert_allclose(y, [1.0507009873554805, -1.0507009873554805 * 1.6732632423543772])


def test_softmax_last_axis_sums_to_one():
    x = np.random.default_rng(4).standard_normal((2, 3, 5)) * 50
    y, _ = activations.softmax(x)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0)


def test_erf_matches_math_erf():
    x = np.linspace(-8.0, 8.0, 4001)
    ref = np.array([math.erf(v) for v in x])
    assert np.abs(activations.erf(x) - ref).max() < 1e-15
    x32 = x.astype(np.float32)
    ref32 = np.array([math.erf(float(v)) for v in x32])
    out32 = activations.erf(x32)
    assert out32.dtype == np.float32
    assert np.abs(out32 - ref32).max() <= 6e-8  # correctly rounded: half an ulp below 1


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_in_place_variant_gives_the_same_values_and_gradients_bit_for_bit(name):
    fn = activations.get(name)
    z = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)
    z[0, :3] = 0.0  # relu's kink
    dy = np.random.default_rng(5).standard_normal(z.shape).astype(np.float32)
    y, backward = fn(z.copy())
    owned = z.copy()
    y_in_place, backward_in_place = activations.in_place(fn)(owned)
    assert np.array_equal(y, y_in_place)
    assert np.array_equal(backward(dy), backward_in_place(dy))
    if activations.has_in_place(fn):
        assert y_in_place is owned  # it did write into its input, and returned it


def test_kinks_take_kerass_side():
    # relu6: slope 0 at 0 and at 6; hard_silu: slope (2x + 3)/6 inside, 0 below -3, 1 above 3
    x = np.array([-4.0, -3.0, 0.0, 1.5, 3.0, 4.0, 6.0])
    _, back = activations.relu6(x)
    np.testing.assert_array_equal(back(np.ones_like(x)), [0, 0, 0, 1, 1, 1, 0])
    y, back = activations.hard_silu(x)
    np.testing.assert_allclose(y, [0.0, 0.0, 0.0, 1.5 * 4.5 / 6, 3.0, 4.0, 6.0])
    np.testing.assert_allclose(back(np.ones_like(x))[[0, 3, 5]], [0.0, 1.0, 1.0])


def test_log_softmax_is_stable_and_normalised():
    x = np.array([[1000.0, 0.0, -1000.0]])
    y, _ = activations.log_softmax(x)
    np.testing.assert_allclose(y, [[0.0, -1000.0, -2000.0]])
    z = np.random.default_rng(6).standard_normal((4, 5))
    np.testing.assert_allclose(np.exp(activations.log_softmax(z)[0]).sum(-1), 1.0)


def test_gelu_approximate_tanh_form_and_gradient():
    x = _inputs(seed=7)
    y, backward = activations.gelu_approximate(x)
    c = math.sqrt(2.0 / math.pi)
    np.testing.assert_allclose(y, 0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x ** 3))),
                               rtol=1e-12)
    assert np.abs(y - _gelu_reference(x)).max() < 1e-3  # close to the exact form
    r = np.random.default_rng(8).standard_normal(x.shape)
    numeric = numeric_grad(lambda: float((activations.gelu_approximate(x)[0] * r).sum()), x)
    assert_close_grad(backward(r), numeric, "gelu_approximate")


@pytest.mark.parametrize("slope", [0.0, 0.3, 1.5])
def test_leaky_relu_and_elu_with_arguments(slope):
    x = _inputs(seed=9)
    r = np.random.default_rng(10).standard_normal(x.shape)
    for f, ref in ((activations.leaky_relu_with, np.where(x >= 0, x, slope * x)),
                   (activations.elu_with, np.where(x > 0, x, slope * np.expm1(x)))):
        y, backward = f(x, slope)
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-14)
        numeric = numeric_grad(lambda: float((f(x, slope)[0] * r).sum()), x)
        assert_close_grad(backward(r), numeric, f.__name__)


@pytest.mark.parametrize("shape", [(32, 8, 8, 16), (4096,), (3, 5), (0, 4), (7, 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_on_lines_of_zeros_is_numpys_maximum_bit_for_bit(shape, dtype):
    """relu and its in-place form (rows against a line of zeros where the size allows) give
    np.maximum(z, 0)'s bits: -0.0 and NaN included, and the in-place one writes into z."""
    z = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    flat = z.reshape(-1)
    flat[::5], flat[1::7], flat[2::11] = -0.0, np.nan, 0.0
    expected = np.maximum(z, 0)
    bits = np.int64 if dtype == np.float64 else np.int32
    y, _ = activations.relu(z)
    np.testing.assert_array_equal(y.view(bits), expected.view(bits))
    written = z.copy()
    y, backward = activations.in_place(activations.relu)(written)
    assert y is written
    np.testing.assert_array_equal(y.view(bits), expected.view(bits))
    np.testing.assert_array_equal(backward(np.ones_like(z)), (expected > 0).astype(dtype))
