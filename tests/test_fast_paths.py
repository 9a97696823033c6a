"""The faster forms that resnet_small's step uses give the general forms' numbers:
BatchNormalization in training on channels-last inputs (sums as blocked products with ones,
the input gradient from the weight gradients' sums) and the plain ReLU layer; the blocked
sums round about as a float64 sum does."""
from __future__ import annotations

import numpy as np
import pytest

from kconf.engine.kernels.channels import SUM_ROWS, column_sums
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


@pytest.mark.parametrize("n", [1, SUM_ROWS - 1, SUM_ROWS, 37 * SUM_ROWS + 5])
def test_column_sums_add_every_row_once(n):
    rows = np.random.default_rng(n).standard_normal((n, 3))
    np.testing.assert_allclose(column_sums(rows), rows.sum(axis=0), rtol=1e-13, atol=1e-13)
    assert column_sums(rows.astype(np.float32)).dtype == np.float32


def test_batch_statistics_and_their_gradients_round_as_a_float64_sum_would():
    """32768 pixels of 16 channels with a mean of 10 (resnet_small's first layers): a running
    float32 sum over the pixels is 30 times farther from the exact mean than ``column_sums``,
    and the layer's float32 outputs and gradients stay close to its float64 ones."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((32, 32, 32, 16)) * 2 + 10).astype(np.float32)
    dy = (rng.standard_normal(x.shape) + 0.5).astype(np.float32)
    rows = x.reshape(-1, 16)
    exact = rows.sum(axis=0, dtype=np.float64)
    running = np.cumsum(rows, axis=0, dtype=np.float32)[-1]  # one float32 sum, row by row
    assert np.max(np.abs(running - exact) / exact) > 1e-6
    assert np.max(np.abs(column_sums(rows) - exact) / exact) < 1.2e-7  # about one rounding

    def step(dtype):
        layer = BatchNormalization()
        layer.build((None, 32, 32, 16), np.random.default_rng(0), dtype=dtype)
        y, backward = layer.forward(x.astype(dtype), training=True)
        dx = backward(dy.astype(dtype))
        return {"y": y, "dx": dx, **layer.grads, "moving_mean": layer.weights["moving_mean"]}

    got, want = step(np.float32), step(np.float64)
    # the errors of a running float32 sum here: y 2.6e-6, dx 4.8e-6, gamma 6.2e-4, beta
    # 1.3e-6, moving_mean 2.1e-6 (of each one's largest value)
    bounds = {"y": 5e-7, "dx": 5e-7, "gamma": 5e-5, "beta": 2e-7, "moving_mean": 2e-7}
    for name, bound in bounds.items():
        error = np.max(np.abs(got[name] - want[name])) / np.max(np.abs(want[name]))
        assert error < bound, (name, error)


def test_plain_relu_layer_is_the_rectifier_and_masks_its_gradient():
    x = np.array([[-2.0, 0.0, 3.0], [1.5, -0.5, 2.0]], dtype=np.float32)
    y, backward = ReLU().forward(x)
    np.testing.assert_array_equal(y, [[0, 0, 3], [1.5, 0, 2]])
    assert y.dtype == np.float32
    np.testing.assert_array_equal(backward(np.full_like(x, 2.0)), [[0, 0, 2], [2, 0, 2]])
    y, _ = ReLU(threshold=1.0).forward(x)  # the general form still serves the others
    np.testing.assert_array_equal(y, [[0, 0, 3], [1.5, 0, 2]])
