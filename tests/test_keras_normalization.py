"""The normalization layers against Keras 3 (fixtures of tests/fixtures/layers/
make_normalization.py): outputs at inference, BatchNormalization's output and moving statistics
after one training call, and the gradients of the input and trainable weights in training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.layer_test import make_layer

HERE = Path(__file__).resolve().parent / "fixtures" / "layers"
TABLE = json.loads((HERE / "normalization.json").read_text())
NUMBERS = np.load(HERE / "normalization.npz")["numbers"]
TOL = {"rtol": 1e-4, "atol": 1e-5}


def array(key: str) -> np.ndarray:
    """One of Keras's arrays, by its key (``bn/x``)."""
    offset, shape = TABLE["arrays"][key]
    return NUMBERS[offset:offset + int(np.prod(shape))].reshape(shape)


def layer_of(case: str):
    """kconf's layer of the case, from its arguments as a config writes them, with Keras's
    weights set; and its input."""
    entry = TABLE["cases"][case]
    x = array(f"{case}/x")
    layer = make_layer(entry["layer"], entry["args"])
    layer.build((None, *x.shape[1:]), np.random.default_rng(0))
    assert list(layer.weights) == entry["weights"]  # Keras's names, in Keras's order
    layer.set_weights([array(f"{case}/w/{name}") for name in entry["weights"]])
    return layer, x


@pytest.mark.parametrize("case", sorted(TABLE["cases"]))
def test_inference_output_equals_keras(case):
    layer, x = layer_of(case)
    before = layer.get_weights()
    y, _ = layer.forward(x, training=False)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, array(f"{case}/y"), **TOL)
    for old, new in zip(before, layer.get_weights()):  # inference moves no state
        assert np.array_equal(old, new)


@pytest.mark.parametrize("case", sorted(TABLE["cases"]))
def test_training_call_and_its_gradients_equal_keras(case):
    entry = TABLE["cases"][case]
    layer, x = layer_of(case)
    y, backward = layer.forward(x, training=True)
    expected = f"{case}/y_train" if f"{case}/y_train" in TABLE["arrays"] else f"{case}/y"
    np.testing.assert_allclose(y, array(expected), **TOL)
    for name in entry["weights"]:
        if name in layer.state_names:  # moving = moving·momentum + batch·(1 − momentum)
            np.testing.assert_allclose(layer.weights[name], array(f"{case}/after/{name}"),
                                       err_msg=name, **TOL)
    layer.zero_grads()
    r = array(f"{case}/r")
    dx = backward(r)
    keras_dx = array(f"{case}/grad/x")
    if case == "unit":  # a zero sample: y = x·1e12 there; JAX's rsqrt(0) gradient is NaN
        zero = np.isnan(keras_dx)
        assert zero.any() and np.all(x[zero] == 0)
        np.testing.assert_allclose(dx[zero], 1e12 * r[zero], rtol=1e-6)
        dx, keras_dx = dx[~zero], keras_dx[~zero]
    np.testing.assert_allclose(dx, keras_dx, err_msg="x", **TOL)
    for name in entry["trainable_weights"]:
        np.testing.assert_allclose(layer.grads[name], array(f"{case}/grad/{name}"),
                                   err_msg=name, **TOL)


def test_batch_normalization_fixtures_cover_training_frozen_and_state():
    cases = TABLE["cases"]
    bn = [c for c, e in cases.items() if e["layer"] == "BatchNormalization"]
    assert all(f"{c}/after/moving_mean" in TABLE["arrays"] for c in bn)
    assert cases["bn_frozen"]["trainable_weights"] == []  # Keras: frozen, nothing trained
    # a frozen layer runs in inference mode in training: its state does not move
    assert np.array_equal(array("bn_frozen/after/moving_mean"), array("bn_frozen/w/moving_mean"))
    assert np.array_equal(array("bn_frozen/y_train"), array("bn_frozen/y"))
    assert not np.allclose(array("bn/after/moving_mean"), array("bn/w/moving_mean"))
