"""The faster forms that resnet_small's step uses give the general forms' numbers:
BatchNormalization in training on channels-last inputs (sums as products with ones, the
input gradient from the weight gradients' sums) and the plain ReLU layer."""
from __future__ import annotations

import numpy as np
import pytest

from kconf.engine.layers.batch_normalization import BatchNormalization
from kconf.engine.layers.relu import ReLU


def _bn(args, channels, dtype):
    layer = BatchNormalization(**args)
    layer.build((None, 3, channels), np.random.default_rng(0), dtype=dtype)
    rng = np.random.default_rng(1)
    for name in layer.weights:
        layer.weights[name] = (rng.random(channels) + 0.5).astype(dtype)
    return layer


def _train_step(layer, x, dy):
    for grad in layer.grads.values():
        grad[...] = 0
    state = {k: layer.weights[k].copy() for k in ("moving_mean", "moving_variance")}
    y, backward = layer.forward(x, training=True)
    dx = backward(dy)
    after = {k: layer.weights[k].copy() for k in state}
    layer.weights.update({k: v.copy() for k, v in state.items()})  # as before the call
    return y, dx, {k: g.copy() for k, g in layer.grads.items()}, after


@pytest.mark.parametrize("args", [{}, {"scale": False}, {"center": False},
                                  {"center": False, "scale": False},
                                  {"momentum": 0.9, "epsilon": 0.1}])
def test_channels_last_batch_normalization_equals_the_general_form(args):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 5, 6, 3)) * 3 + 1
    dy = rng.standard_normal(x.shape)
    layer = _bn(args, 3, np.float64)
    fast = _train_step(layer, x, dy)
    # the same array in Fortran order is not C-contiguous: the general form runs
    general = _train_step(layer, np.asfortranarray(x), dy)
    for got, want in zip(fast[:2], general[:2]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for part in (2, 3):
        assert fast[part].keys() == general[part].keys()
        for name in fast[part]:
            np.testing.assert_allclose(fast[part][name], general[part][name],
                                       rtol=1e-12, atol=1e-12, err_msg=name)
    assert not np.allclose(fast[3]["moving_mean"], 0)  # the state moved


def test_channels_last_batch_normalization_without_the_input_gradient():
    layer = _bn({}, 2, np.float32)
    x = np.random.default_rng(3).standard_normal((3, 4, 2)).astype(np.float32)
    y, backward = layer.forward(x, training=True)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert backward(np.ones_like(y), need_dx=False) is None
    np.testing.assert_allclose(layer.grads["beta"], [12.0, 12.0])


def test_plain_relu_layer_is_the_rectifier_and_masks_its_gradient():
    x = np.array([[-2.0, 0.0, 3.0], [1.5, -0.5, 2.0]], dtype=np.float32)
    y, backward = ReLU().forward(x)
    np.testing.assert_array_equal(y, [[0, 0, 3], [1.5, 0, 2]])
    assert y.dtype == np.float32
    np.testing.assert_array_equal(backward(np.full_like(x, 2.0)), [[0, 0, 2], [2, 0, 2]])
    y, _ = ReLU(threshold=1.0).forward(x)  # the general form still serves the others
    np.testing.assert_array_equal(y, [[0, 0, 3], [1.5, 0, 2]])
