"""Value tests of the core layers (Dense, Activation, Dropout, Flatten, Conv2D, MaxPooling2D,
InputLayer) against naive loop references written here, their weight layouts and shape rules.

The checks every registered layer goes through (output shape, float64 gradients, sharing,
float32, no per-call state, Keras layout, round trips, FLOPs) are the standard layer test,
``tests/test_layer_standard.py``; the conv cases here are its Conv2D cases.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from tests.layer_cases import CASES
from tests.layer_test import built, inputs, make_layer
from kconf.engine.layers import (
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    InputLayer,
    MaxPooling2D,
    WeightSpec,
)
from kconf.errors import ShapeError


# --- weights: Keras layout, order and names ---------------------------------------------------

def test_dense_weight_layout():
    layer = Dense(7)
    assert layer.weight_specs((None, 5)) == [WeightSpec("kernel", (5, 7), "glorot_uniform"),
                                             WeightSpec("bias", (7,), "zeros")]
    assert layer.count_params((None, 5)) == 42
    assert [s.name for s in Dense(3, use_bias=False).weight_specs((None, 4))] == ["kernel"]
    layer.build((None, 5), np.random.default_rng(0))
    assert [(k, w.shape, w.dtype) for k, w in layer.weights.items()] == [
        ("kernel", (5, 7), np.float32), ("bias", (7,), np.float32)]
    assert not layer.weights["bias"].any()


def test_conv2d_weight_layout():
    layer = Conv2D(16, (3, 5), kernel_initializer="he_normal", bias_initializer="ones")
    specs = layer.weight_specs((None, 32, 32, 4))
    assert specs == [WeightSpec("kernel", (3, 5, 4, 16), "he_normal"),
                     WeightSpec("bias", (16,), "ones")]
    assert layer.count_params((None, 32, 32, 4)) == 3 * 5 * 4 * 16 + 16
    assert [s.name for s in Conv2D(2, 3, use_bias=False).weight_specs((None, 8, 8, 1))] == [
        "kernel"]


def test_weightless_layers_have_no_weights():
    for layer, shape in [(InputLayer((3,)), None), (Activation("relu"), (None, 3)),
                         (Dropout(0.5), (None, 3)), (Flatten(), (None, 2, 2)),
                         (MaxPooling2D(), (None, 4, 4, 1))]:
        assert layer.weight_specs(shape) == []
        assert layer.count_params(shape) == 0


def test_conv2d_and_pooling_accept_ints_and_pairs():
    assert Conv2D(1, 3).kernel_size == (3, 3)
    assert Conv2D(1, [2, 3], strides=[1, 2]).strides == (1, 2)
    assert MaxPooling2D(3).strides == (3, 3)
    assert MaxPooling2D((2, 3), strides=1).strides == (1, 1)
    assert Conv2D(1, 3, padding="SAME").padding == "same"


# --- shapes ------------------------------------------------------------------------------------

def test_input_layer_shape():
    layer = InputLayer(shape=(28, 28, 1))
    assert layer.n_inputs == 0
    assert layer.compute_output_shape(None) == (None, 28, 28, 1)
    assert InputLayer(shape=[10], batch_size=32).compute_output_shape(None) == (32, 10)


@pytest.mark.parametrize("layer, input_shape, expected", [
    (Conv2D(8, 3), (None, 100, 100, 3), (None, 98, 98, 8)),
    (Conv2D(8, 3, strides=2), (None, 100, 100, 3), (None, 49, 49, 8)),
    (Conv2D(8, 3, padding="same"), (None, 100, 100, 3), (None, 100, 100, 8)),
    (Conv2D(8, 3, strides=2, padding="same"), (None, 7, 8, 3), (None, 4, 4, 8)),
    (Conv2D(8, (1, 5)), (None, None, None, 3), (None, None, None, 8)),
    (Conv2D(8, (1, 5)), (4, 6, None, 3), (4, 6, None, 8)),
    (MaxPooling2D(), (None, 98, 98, 32), (None, 49, 49, 32)),
    (MaxPooling2D(), (None, 5, 7, 2), (None, 2, 3, 2)),
    (MaxPooling2D(padding="same"), (None, 5, 7, 2), (None, 3, 4, 2)),
    (MaxPooling2D(3, strides=2), (None, 7, 8, 1), (None, 3, 3, 1)),
    (MaxPooling2D(2), (None, None, 4, 1), (None, None, 2, 1)),
    (Flatten(), (None, 3, 4, 5), (None, 60)),
    (Flatten(), (None,), (None, 1)),
    (Dense(4), (None, 7, 3), (None, 7, 4)),
    (Activation("softmax"), (None, 3, 2), (None, 3, 2)),
    (Dropout(0.2), (None, 9), (None, 9)),
])
def test_compute_output_shape(layer, input_shape, expected):
    assert layer.compute_output_shape(input_shape) == expected


@pytest.mark.parametrize("layer, input_shape, fragment", [
    (Conv2D(4, 3), (None, 8, 8), "rank 4"),
    (Conv2D(4, 3), (None, 8, 8, 3, 1), "rank 4"),
    (Conv2D(4, 3), (None, 8, 8, None), "channels"),
    (Conv2D(4, 5), (None, 4, 8, 3), "larger than the input height"),
    (Conv2D(4, (1, 9)), (None, 4, 8, 3), "larger than the input width"),
    (MaxPooling2D(), (None, 8, 8), "rank 4"),
    (MaxPooling2D(3), (None, 2, 8, 1), "larger than the input height"),
    (Flatten(), (None, 3, None), "known"),
    (Dense(3), (None, None), "known last dimension"),
    (Dense(3), (None,), "known last dimension"),
])
def test_shape_errors(layer, input_shape, fragment):
    with pytest.raises(ShapeError, match=fragment):
        layer.compute_output_shape(input_shape)


def test_shape_error_message_names_the_layer_and_shape():
    with pytest.raises(ShapeError) as info:
        Conv2D(4, 3).compute_output_shape((None, 8, 8))
    assert str(info.value) == ("Conv2D expects images (batch, height, width, channels) "
                               "(rank 4 with the batch axis), got input shape (None, 8, 8)")


def test_same_padding_fits_small_inputs():
    # 'same' never fails: a 5x5 kernel on a 2x2 image still gives 2x2.
    assert Conv2D(1, 5, padding="same").compute_output_shape((None, 2, 2, 1)) == (None, 2, 2, 1)


# --- values against naive references -----------------------------------------------------------

def _same_pads(length, size, stride):
    """(before, after) of TensorFlow's 'same' rule, written out for the references."""
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + size - length, 0)
    return total // 2, total - total // 2


def _naive_conv(x, kernel, bias, strides, padding):
    """Direct loop over samples, output pixels and filters."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    sh, sw = strides
    if padding == "same":
        (pt, pb), (pl, pr) = _same_pads(h, kh, sh), _same_pads(w, kw, sw)
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho = (x.shape[1] - kh) // sh + 1
    wo = (x.shape[2] - kw) // sw + 1
    out = np.zeros((n, ho, wo, f))
    for b, i, j, o in itertools.product(range(n), range(ho), range(wo), range(f)):
        patch = x[b, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
        out[b, i, j, o] = (patch * kernel[:, :, :, o]).sum() + bias[o]
    return out


def _naive_pool(x, pool, strides, padding):
    """Direct loop; returns the output and, per output cell, the input index of the first max."""
    n, h, w, c = x.shape
    (ph, pw), (sh, sw) = pool, strides
    pads = ((0, 0), (0, 0))
    if padding == "same":
        pads = (_same_pads(h, ph, sh), _same_pads(w, pw, sw))
    xpad = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=-np.inf)
    ho = (xpad.shape[1] - ph) // sh + 1
    wo = (xpad.shape[2] - pw) // sw + 1
    out = np.zeros((n, ho, wo, c))
    where = {}
    for b, i, j, ch in itertools.product(range(n), range(ho), range(wo), range(c)):
        window = xpad[b, i * sh:i * sh + ph, j * sw:j * sw + pw, ch]
        k = int(np.argmax(window))  # first maximum in row-major order
        out[b, i, j, ch] = window.flat[k]
        where[b, i, j, ch] = (b, i * sh + k // pw - pads[0][0], j * sw + k % pw - pads[1][0], ch)
    return out, where


@pytest.mark.parametrize("filters, kernel_size, strides, padding, shape", [
    (3, (3, 3), (1, 1), "valid", (2, 6, 5, 2)),
    (3, (3, 3), (1, 1), "same", (2, 6, 5, 2)),
    (2, (3, 3), (2, 2), "same", (1, 6, 7, 3)),
    (2, (2, 2), (2, 2), "same", (1, 5, 5, 1)),
    (4, (2, 4), (3, 1), "same", (2, 7, 6, 2)),
    (4, (1, 3), (2, 3), "valid", (2, 7, 9, 2)),
    (1, (5, 5), (1, 1), "same", (1, 3, 4, 1)),
    (3, (3, 3), (1, 1), "valid", (2, 6, 5, 24)),  # shifted rows
    (2, (3, 2), (1, 1), "same", (3, 5, 4, 40)),  # shifted rows, padded
])
def test_conv2d_matches_naive_loops(filters, kernel_size, strides, padding, shape):
    layer = Conv2D(filters, kernel_size, strides=strides, padding=padding)
    rng = np.random.default_rng(0)
    layer.build((None, *shape[1:]), rng, dtype=np.float64)
    layer.weights["bias"] = rng.standard_normal(filters)
    x = rng.standard_normal(shape)
    y, _ = layer.forward(x)
    expected = _naive_conv(x, layer.weights["kernel"], layer.weights["bias"], strides, padding)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


CONV_CASES = CASES["Conv2D"]


def _conv(case) -> Conv2D:
    return make_layer("Conv2D", case.args)


@pytest.mark.parametrize("block", [1, 2])
@pytest.mark.parametrize("case", CONV_CASES, ids=[case.id for case in CONV_CASES])
def test_conv2d_blocks_of_the_batch_give_the_same_results(case, block, monkeypatch):
    """The im2col matrix is built a block of images at a time; blocks of 1 and of 2 images
    (3 images: the last block is short) give what one block of the whole batch gives."""
    from kconf.engine import kernels

    x = inputs(dataclasses.replace(case, shape=(3, *case.shape[1:])))
    layer = built(lambda: _conv(case), case)
    y, backward = layer.forward(x)
    r = np.random.default_rng(11).standard_normal(y.shape)
    layer.zero_grads()
    dx = backward(r)
    grads = {k: g.copy() for k, g in layer.grads.items()}

    monkeypatch.setattr(kernels.geometry, "batch_block", lambda n, bytes_per_image: min(n, block))
    y_blocked, backward = layer.forward(x)
    layer.zero_grads()
    np.testing.assert_allclose(y_blocked, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backward(r), dx, rtol=1e-12, atol=1e-12)
    for name, grad in grads.items():
        np.testing.assert_allclose(layer.grads[name], grad, rtol=1e-12, atol=1e-12)


def test_the_shifted_cases_run_on_shifted_rows_and_the_others_on_im2col():
    from kconf.engine import kernels

    for case in CONV_CASES:
        layer = _conv(case)
        spatial = case.shape[1:3]
        pads = kernels.paddings(spatial, layer.kernel_size, layer.strides, layer.padding)
        takes = kernels.uses_shifted_rows(spatial, pads, layer.kernel_size, layer.strides,
                                          case.shape[3], layer.filters, layer.dilation_rate,
                                          layer.groups)
        assert takes == ("shifted" in case.id), case.id


def test_conv2d_block_size_follows_the_byte_budget(monkeypatch):
    from kconf.engine import kernels

    monkeypatch.setattr(kernels.geometry, "BLOCK_BYTES", 1000)
    assert kernels.batch_block(32, 300) == 3
    assert kernels.batch_block(32, 5000) == 1  # an image larger than the budget: one at a time
    assert kernels.batch_block(2, 10) == 2


@pytest.mark.parametrize("n, bytes_per_image, sizes", [
    (32, 590_000, [4] * 8),  # 5 blocks of at most 7 images: 8 of 4
    (32, 150_000, [8] * 4),  # one block of 28 and one of 4: 4 of 8
    (32, 10, [8] * 4),  # the whole batch fits one block: 4 of 8
    (30, 600_000, [4] * 6 + [3] * 2),  # the larger blocks first
    (3, 10, [1] * 3),  # at most one block per image
])
def test_convolution_blocks_are_even_and_a_multiple_of_four(n, bytes_per_image, sizes):
    from kconf.engine import kernels

    blocks = kernels.even_blocks(n, bytes_per_image)
    assert [number for number, _ in blocks] == list(range(len(sizes)))
    assert [b.stop - b.start for _, b in blocks] == sizes
    assert blocks[0][1].start == 0 and all(
        a.stop == b.start for (_, a), (_, b) in zip(blocks, blocks[1:])) and blocks[-1][1].stop == n


def test_conv2d_same_padding_puts_the_odd_pixel_bottom_right():
    # 4x4 image 0..15, 2x2 kernel of ones, 'same': pad_total 1 -> 0 before, 1 after, so the last
    # row and column sum over the zero padding (TensorFlow's rule, not Caffe's/PyTorch's).
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    layer = Conv2D(1, 2, padding="same", use_bias=False)
    layer.build((None, 4, 4, 1), np.random.default_rng(0), dtype=np.float64)
    layer.weights["kernel"][...] = 1.0
    y, _ = layer.forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[10, 14, 18, 10],
                                                  [26, 30, 34, 18],
                                                  [42, 46, 50, 26],
                                                  [25, 27, 29, 15]])
    # 3x3 kernel, stride 2 on 6 pixels: out 3, pad_total 1 -> again 0 before, 1 after.
    x = np.arange(36.0).reshape(1, 6, 6, 1)
    layer = Conv2D(1, 3, strides=2, padding="same", use_bias=False)
    layer.build((None, 6, 6, 1), np.random.default_rng(0), dtype=np.float64)
    layer.weights["kernel"][...] = 0.0
    layer.weights["kernel"][0, 0, 0, 0] = 1.0  # picks the window's top-left pixel
    y, _ = layer.forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], x[0, ::2, ::2, 0])


def test_conv2d_activation_and_bias():
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 3))
    layer = Conv2D(2, 3, activation="relu")
    layer.build((None, 4, 4, 3), np.random.default_rng(0), dtype=np.float64)
    layer.weights["bias"][...] = [0.5, -0.5]
    y, _ = layer.forward(x)
    expected = _naive_conv(x, layer.weights["kernel"], layer.weights["bias"], (1, 1), "valid")
    np.testing.assert_allclose(y, np.maximum(expected, 0), atol=1e-12)


@pytest.mark.parametrize("pool, strides, padding, shape", [
    ((2, 2), (2, 2), "valid", (2, 4, 6, 3)),
    ((2, 2), (2, 2), "valid", (1, 5, 5, 2)),
    ((2, 2), (2, 2), "same", (1, 5, 5, 2)),
    ((3, 3), (3, 3), "same", (2, 7, 8, 1)),
    ((3, 3), (2, 2), "valid", (1, 7, 7, 2)),
    ((3, 3), (1, 1), "same", (1, 5, 4, 2)),
    ((2, 3), (1, 2), "same", (2, 5, 6, 1)),
])
def test_max_pooling_matches_naive_loops(pool, strides, padding, shape):
    layer = MaxPooling2D(pool, strides=strides, padding=padding)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    y, backward = layer.forward(x)
    expected, where = _naive_pool(x, pool, strides, padding)
    np.testing.assert_array_equal(y, expected)
    dy = rng.standard_normal(y.shape)
    dx_expected = np.zeros_like(x)
    for out_index, in_index in where.items():
        dx_expected[in_index] += dy[out_index]
    np.testing.assert_allclose(backward(dy), dx_expected, rtol=1e-12, atol=1e-12)


def test_max_pooling_ties_route_to_the_first_maximum_and_overlaps_add():
    x = np.ones((1, 4, 4, 1))
    layer = MaxPooling2D(3, strides=1)  # four overlapping windows, all values tied
    y, backward = layer.forward(x)
    dx = backward(np.ones_like(y))
    expected = np.zeros((4, 4))
    expected[:2, :2] = 1.0  # each window's top-left cell wins
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)
    # Overlap: one global maximum inside all four windows receives all four gradients.
    x = np.zeros((1, 4, 4, 1))
    x[0, 1, 2, 0] = 5.0
    y, backward = layer.forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 5], [5, 5]])
    dx = backward(np.arange(1.0, 5.0).reshape(1, 2, 2, 1))
    assert dx[0, 1, 2, 0] == 10.0 and dx.sum() == 10.0


@pytest.mark.parametrize("pool", [(2, 2), (3, 2)])
def test_tiled_max_pooling_routes_ties_to_the_first_maximum(pool):
    """Windows that tile the input (relu outputs: many all-zero windows, some with two equal
    maxima) route each window's gradient to its first maximum in row-major order only."""
    rng = np.random.default_rng(4)
    x = np.maximum(rng.integers(-3, 3, size=(3, 6, 8, 2)), 0).astype(np.float32)
    layer = MaxPooling2D(pool)
    y, backward = layer.forward(x)
    expected, where = _naive_pool(x, pool, pool, "valid")
    np.testing.assert_array_equal(y, expected)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx_expected = np.zeros_like(x)
    for out_index, in_index in where.items():
        dx_expected[in_index] += dy[out_index]
    dx = backward(dy)
    np.testing.assert_array_equal(dx, dx_expected)
    assert (dx != 0).sum() == (dy != 0).sum()  # one cell per window, ties included


def test_max_pooling_same_padding_never_wins():
    # All-negative input: zero padding would win; -inf padding must not. 3x3, pool 2, 'same':
    # out 2x2, pad_total 1 -> the padding is after (bottom/right).
    x = -np.arange(9.0).reshape(1, 3, 3, 1)
    layer = MaxPooling2D(2, padding="same")
    y, backward = layer.forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, -2], [-6, -8]])
    dx = backward(np.ones_like(y))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 0, 1], [0, 0, 0], [1, 0, 1]])


def test_dense_values_rank2_and_rank3():
    layer = Dense(3, activation="tanh")
    layer.build((None, 4), np.random.default_rng(0), dtype=np.float64)
    layer.weights["bias"][...] = [0.1, 0.2, 0.3]
    x = np.random.default_rng(1).standard_normal((2, 5, 4))
    y, _ = layer.forward(x)
    k, b = layer.weights["kernel"], layer.weights["bias"]
    for i, t in itertools.product(range(2), range(5)):
        np.testing.assert_allclose(y[i, t], np.tanh(x[i, t] @ k + b), rtol=1e-12)


def test_flatten_is_c_order():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    y, backward = Flatten().forward(x)
    np.testing.assert_array_equal(y, [np.arange(12.0), np.arange(12.0, 24.0)])
    np.testing.assert_array_equal(backward(y), x)


def test_input_layer_is_identity():
    x = np.random.default_rng(0).standard_normal((2, 3))
    y, backward = InputLayer((3,)).forward(x)
    assert y is x
    assert backward(x) is x


def test_dropout_inference_is_identity():
    x = np.random.default_rng(0).standard_normal((4, 5))
    y, backward = Dropout(0.5).forward(x, training=False, rng=np.random.default_rng(1))
    assert y is x
    y, _ = Dropout(0.0).forward(x, training=True, rng=np.random.default_rng(1))
    assert y is x


def test_dropout_training_mask_and_scale():
    x = np.random.default_rng(0).standard_normal((50, 40)).astype(np.float32)
    y, backward = Dropout(0.3).forward(x, training=True, rng=np.random.default_rng(5))
    # 0.3 · 2**b is whole for no b < 32: 32 random bits per unit (the generator's raw 64-bit
    # words, low half first) against rate · 2**32
    bits = np.random.default_rng(5).bit_generator.random_raw(1000).view(np.uint32)
    keep = (bits >= round(0.3 * 2**32)).reshape(x.shape)
    np.testing.assert_allclose(y, np.where(keep, x / np.float32(0.7), 0.0), rtol=1e-6)
    assert y.dtype == np.float32
    assert abs((~keep).mean() - 0.3) < 0.03
    dy = np.ones_like(x)
    np.testing.assert_allclose(backward(dy), np.where(keep, 1 / 0.7, 0.0), rtol=1e-6)


@pytest.mark.parametrize("rate, dtype", [(0.5, np.uint8), (0.25, np.uint8),
                                         (2 ** -12, np.uint16), (0.1, np.uint32)])
def test_dropout_draws_the_fewest_bits_that_give_the_rate_exactly(rate, dtype):
    x = np.ones((7, 9), dtype=np.float32)
    y, _ = Dropout(rate).forward(x, training=True, rng=np.random.default_rng(3))
    per_word = 8 // np.dtype(dtype).itemsize
    words = np.random.default_rng(3).bit_generator.random_raw(-(-63 // per_word))
    bits = words.view(dtype)[:63].reshape(x.shape)
    threshold = round(rate * 2 ** (8 * np.dtype(dtype).itemsize))
    np.testing.assert_array_equal(y != 0, bits >= threshold)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_drops_the_rate_on_average_and_keeps_the_expectation(rate):
    x = np.ones((400, 500), dtype=np.float32)
    y, _ = Dropout(rate).forward(x, training=True, rng=np.random.default_rng(0))
    assert abs((y == 0).mean() - rate) < 0.005  # 200,000 units: the std is at most 0.0012
    assert abs(y.mean() - 1.0) < 0.02


def test_dropout_needs_an_rng_in_training_and_a_valid_rate():
    with pytest.raises(ValueError, match="rng"):
        Dropout(0.5).forward(np.ones((2, 2)), training=True)
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_float32_conv_and_pool_close_to_float64():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 9, 3))
    conv = Conv2D(4, 3, padding="same", activation="relu")
    conv.build((None, 9, 9, 3), rng, dtype=np.float64)
    y64, _ = conv.forward(x)
    conv.weights = {k: v.astype(np.float32) for k, v in conv.weights.items()}
    conv.zero_grads()
    y32, _ = conv.forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
