"""TimeDistributed: its weight sharing, values against the inner layer on each step, shapes.

The checks every layer goes through (shapes, float64 gradients of the input and of every
weight of the inner layer, sharing, float32, no per-call state, round trips, FLOPs) are the
standard layer test, ``tests/test_layer_standard.py``; a wrapped stand-in model goes through
its numeric checks here.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.layer_test import CHECKS, LayerCase
from kconf.engine.layers import (
    Add,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPooling2D,
    TimeDistributed,
    WeightSpec,
)
from kconf.errors import ShapeError


class _TwoDense(Layer):
    """A stand-in for a model used as a layer: tanh(x @ W1 + b1) @ W2, weights named by part."""

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)

    def weight_specs(self, input_shape):
        return [WeightSpec("first/kernel", (input_shape[-1], 3), "glorot_uniform"),
                WeightSpec("first/bias", (3,)),
                WeightSpec("second/kernel", (3, 2), "glorot_uniform")]

    def forward(self, x, training=False, rng=None):
        w1, b1, w2 = (self.weights[k] for k in ("first/kernel", "first/bias", "second/kernel"))
        h = np.tanh(x @ w1 + b1)

        def backward(dy):
            self.grads["second/kernel"] += h.T @ dy
            dz = (dy @ w2.T) * (1 - h * h)
            self.grads["first/kernel"] += x.T @ dz
            self.grads["first/bias"] += dz.sum(axis=0)
            return dz @ w1.T

        return h @ w2, backward


#: A model used as a layer, which no layer arguments can write: the numeric checks of the
#: standard layer test on it (the registered layers' cases are in tests/layer_cases.py).
MODEL_CASE = LayerCase("model_as_layer", {}, (2, 3, 4),
                       (("first/kernel", (4, 3)), ("first/bias", (3,)),
                        ("second/kernel", (3, 2))))


@pytest.mark.parametrize("check", list(CHECKS))
def test_a_wrapped_model_passes_the_numeric_checks(check):
    CHECKS[check](lambda: TimeDistributed(_TwoDense()), MODEL_CASE)


# --- weights are the inner layer's -------------------------------------------------------------

def test_weights_and_specs_are_the_inner_layers():
    dense = Dense(7)
    td = TimeDistributed(dense)
    assert td.weight_specs((None, 10, 5)) == dense.weight_specs((None, 5))
    assert td.count_params((None, 10, 5)) == 42
    assert td.weights == {} and td.grads == {}
    td.build((None, 10, 5), np.random.default_rng(0))
    assert dense.built and td.built
    assert td.weights is dense.weights and td.grads is dense.grads
    assert [(k, w.shape, w.dtype) for k, w in td.weights.items()] == [
        ("kernel", (5, 7), np.float32), ("bias", (7,), np.float32)]
    assert "weights" not in vars(td) and "grads" not in vars(td)


def test_wrapping_a_built_layer_shares_its_weights_and_gradients():
    dense = Dense(3)
    dense.build((None, 4), np.random.default_rng(0), dtype=np.float64)
    kernel, bias = dense.weights["kernel"], dense.weights["bias"]
    td = TimeDistributed(dense)
    td.build((None, 6, 4), np.random.default_rng(99), dtype=np.float64)  # must not re-initialise
    assert td.weights["kernel"] is kernel and td.weights["bias"] is bias
    x = np.random.default_rng(1).standard_normal((2, 6, 4))
    y, backward = td.forward(x)
    dense.zero_grads()
    backward(np.ones_like(y))
    np.testing.assert_allclose(dense.grads["kernel"], x.reshape(-1, 4).T @ np.ones((12, 3)))
    np.testing.assert_allclose(dense.grads["bias"], np.full(3, 12.0))
    # a direct call of the same Dense adds into the same grads
    y2, back2 = dense.forward(x[:, 0])
    back2(np.ones_like(y2))
    np.testing.assert_allclose(dense.grads["bias"], np.full(3, 14.0))


def test_get_and_set_weights_go_to_the_inner_layer():
    dense = Dense(2)
    td = TimeDistributed(dense)
    td.build((None, 3, 4), np.random.default_rng(0))
    new = [np.full((4, 2), 0.5, np.float32), np.array([1.0, -1.0], np.float32)]
    kernel = dense.weights["kernel"]
    td.set_weights(new)
    assert dense.weights["kernel"] is kernel  # in place
    for got, want in zip(dense.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(td.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="expects 2 weight arrays"):
        td.set_weights(new[:1])


def test_wrapped_dense_equals_dense_on_each_step():
    td = TimeDistributed(Dense(3, activation="tanh"))
    td.build((None, 5, 4), np.random.default_rng(0), dtype=np.float64)
    td.weights["bias"][...] = [0.1, -0.2, 0.3]
    x = np.random.default_rng(1).standard_normal((2, 5, 4))
    y, _ = td.forward(x)
    for t in range(5):
        step, _ = td.layer.forward(x[:, t])
        np.testing.assert_allclose(y[:, t], step, rtol=1e-12)
    k, b = td.weights["kernel"], td.weights["bias"]
    np.testing.assert_allclose(y, np.tanh(np.einsum("ntd,du->ntu", x, k) + b), rtol=1e-12)


def test_wrapped_conv_equals_conv_on_each_step():
    td = TimeDistributed(Conv2D(3, 2, padding="same"))
    td.build((None, 4, 5, 5, 2), np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((2, 4, 5, 5, 2))
    y, backward = td.forward(x)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    dx = backward(dy)
    for t in range(4):
        step, step_back = td.layer.forward(x[:, t])
        np.testing.assert_allclose(y[:, t], step, rtol=1e-12)
        np.testing.assert_allclose(dx[:, t], step_back(dy[:, t]), rtol=1e-12, atol=1e-12)


# --- shapes and errors ------------------------------------------------------------------------

@pytest.mark.parametrize("inner, input_shape, expected", [
    (Dense(8), (None, 10, 16), (None, 10, 8)),
    (Dense(8), (None, None, 16), (None, None, 8)),
    (Dense(8), (4, 10, 16), (4, 10, 8)),
    (Conv2D(64, 3), (None, 10, 299, 299, 3), (None, 10, 297, 297, 64)),
    (MaxPooling2D(), (None, 5, 8, 8, 3), (None, 5, 4, 4, 3)),
    (Flatten(), (None, 5, 2, 3), (None, 5, 6)),
])
def test_compute_output_shape(inner, input_shape, expected):
    assert TimeDistributed(inner).compute_output_shape(input_shape) == expected


def test_rank_below_three_is_a_shape_error():
    with pytest.raises(ShapeError) as info:
        TimeDistributed(Dense(3)).compute_output_shape((None, 5))
    assert str(info.value) == ("TimeDistributed needs inputs of rank 3 or more (batch, time, ...), "
                               "got input shape (None, 5)")


def test_inner_shape_errors_name_the_wrapper():
    with pytest.raises(ShapeError, match=r"TimeDistributed\(Conv2D\) on input shape "
                                         r"\(None, 4, 8, 8\): Conv2D expects images"):
        TimeDistributed(Conv2D(2, 3)).compute_output_shape((None, 4, 8, 8))


def test_multi_input_inner_layer_is_a_shape_error():
    with pytest.raises(ShapeError, match="one input"):
        TimeDistributed(Add()).compute_output_shape((None, 3, 4))


def test_wraps_only_layers():
    with pytest.raises(TypeError, match="Layer instance"):
        TimeDistributed("Dense")
