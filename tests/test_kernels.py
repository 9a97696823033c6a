"""Convolution and pooling kernels (kconf.engine.kernels) on 1, 2 and 3 spatial axes.

The 2-D layers that call them have their own tests (tests/test_layers.py); these check the
kernels where no layer uses them yet: padding arithmetic against its definition, windows
against plain indexing, im2col convolution and max pooling against naive loops, and their
gradients against float64 finite differences.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kconf.engine import kernels
from kconf.engine.ops import Ops


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_padding_arithmetic_follows_its_definition(padding):
    for length, size, stride in itertools.product(range(1, 12), range(1, 6), range(1, 5)):
        out = kernels.output_length(length, size, stride, padding)
        before, after = kernels.padding_amounts(length, size, stride, padding)
        if padding == "valid":
            assert out == len(range(0, length - size + 1, stride))  # the windows that fit
            assert (before, after) == (0, 0)
            continue
        assert out == math.ceil(length / stride)
        # the least padding that lets ``out`` windows fit, the odd one after (TensorFlow)
        needed = next(t for t in itertools.count() if (out - 1) * stride + size <= length + t)
        assert before + after == needed and after - before in (0, 1)
    assert kernels.output_length(None, 3, 1, padding) is None


def test_per_axis_helpers_apply_the_one_axis_rules_to_every_spatial_axis():
    spatial, window, strides = (7, 8, 5), (3, 2, 5), (2, 3, 1)
    assert kernels.output_shape(spatial, window, strides, "valid") == (3, 3, 1)
    assert kernels.output_shape(spatial, window, strides, "same") == (4, 3, 5)
    assert kernels.paddings(spatial, window, strides, "same") == ((1, 1), (0, 0), (2, 2))
    assert kernels.output_shape((None, 4), (2, 2), (1, 1), "valid") == (None, 3)
    x = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    assert kernels.pad(x, ((0, 0),)) is x
    padded = kernels.pad(x, ((1, 2),), value=-1.0)
    assert padded.shape == (2, 6, 2)
    np.testing.assert_array_equal(padded[:, 1:4], x)
    assert (padded[:, [0, 4, 5]] == -1).all()


@pytest.mark.parametrize("spatial, window, strides", [
    ((9,), (3,), (2,)),
    ((5, 6), (2, 3), (1, 2)),
    ((4, 5, 3), (2, 2, 3), (2, 1, 1)),
])
def test_windows_and_window_slices_index_the_input_as_written(spatial, window, strides):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *spatial, 3))
    out = kernels.output_shape(spatial, window, strides, "valid")
    view = kernels.windows(x, out, window, strides)
    assert view.shape == (2, *out, *window, 3)
    for o in itertools.product(*map(range, out)):
        for k in kernels.window_offsets(window):
            position = tuple(i * s + j for i, s, j in zip(o, strides, k))
            np.testing.assert_array_equal(view[(slice(None), *o, *k)],
                                          x[(slice(None), *position)])
    offsets = kernels.window_offsets(window)
    assert offsets[0] == (0,) * len(window) and len(offsets) == math.prod(window)
    assert offsets == sorted(offsets)  # row-major
    for k in offsets:
        cells = kernels.window_slice(x, k, strides, out)
        np.testing.assert_array_equal(cells, view[(slice(None), *(slice(None),) * len(out),
                                                   *k)])


def _naive_conv(xpad, kernel, strides, out_shape):
    """z[b, *o, :] = Σ over the window of xpad[b, *(o·s + k), :] @ kernel[*k]."""
    d = len(out_shape)
    z = np.zeros((xpad.shape[0], *out_shape, kernel.shape[-1]))
    for o in itertools.product(*map(range, out_shape)):
        patch = xpad[(slice(None), *(slice(i * s, i * s + k) for i, s, k in
                                     zip(o, strides, kernel.shape[:d])))]
        z[(slice(None), *o)] = np.tensordot(patch, kernel, axes=(range(1, d + 2), range(d + 1)))
    return z


CONVOLUTIONS = [  # spatial, window, strides, padding, cin, cout
    ((7,), (3,), (1,), "valid", 2, 3),
    ((8,), (4,), (3,), "same", 3, 2),
    ((5, 6), (3, 2), (2, 1), "same", 2, 2),
    ((4, 5, 3), (2, 3, 2), (1, 2, 1), "same", 2, 3),
    ((4, 4, 5), (3, 2, 2), (1, 1, 2), "valid", 1, 2),
    # strided: dx phase by phase, some reached by no tap (a window of 2, stride 3); 1×1
    ((6, 5), (1, 1), (2, 2), "valid", 3, 2),
    ((7,), (2,), (3,), "valid", 2, 2),
    ((9, 8), (3, 3), (2, 2), "same", 2, 3),
    # 2-D, stride 1: on shifted rows as well as im2col (whose dx is then a convolution)
    ((5, 6), (3, 3), (1, 1), "valid", 4, 3),
    ((4, 5), (2, 4), (1, 1), "same", 3, 2),
]
KINDS = [("im2col", case) for case in CONVOLUTIONS] + [
    ("shifted", case) for case in CONVOLUTIONS if len(case[1]) == 2 and case[2] == (1, 1)]


@pytest.mark.parametrize("kind, case", KINDS)
def test_convolutions_match_naive_loops_and_finite_differences(kind, case):
    """Im2colConvolution and ShiftedRows (chosen by size in the layers, each here on small
    inputs): the output, and the kernel and input gradients of every block."""
    spatial, window, strides, padding, cin, cout = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *spatial, cin))
    kernel = rng.standard_normal((*window, cin, cout))
    bias = rng.standard_normal(cout)
    pads = kernels.paddings(spatial, window, strides, padding)
    out = kernels.output_shape(spatial, window, strides, padding)
    if kind == "shifted":
        conv = kernels.ShiftedRows(2, spatial, pads, window, cin, cout, np.float64)
    else:
        conv = kernels.Im2colConvolution(2, spatial, pads, window, strides, out, cin, np.float64)

    def forward(x, kernel):
        z = np.empty((x.shape[0], *out, cout))
        conv.forward(x, kernel, z, bias)
        return z

    z = forward(x, kernel)
    np.testing.assert_allclose(z, _naive_conv(kernels.pad(x, pads), kernel, strides, out) + bias,
                               rtol=1e-12, atol=1e-12)
    r = rng.standard_normal(z.shape)  # the loss is Σ z·r
    dkernel = np.empty((math.prod(window) * cin, cout))
    dx = np.full(x.shape, np.nan)  # every entry must be written
    conv.gradients(x, r, kernel, dkernel, dx)
    conv.gradients(x[:1], r[:1], kernel, np.empty_like(dkernel), np.empty_like(x[:1]))
    conv.gradients(x, r, kernel, dkernel, dx)  # a smaller block in between changes nothing

    def numeric(array, loss):
        grad = np.empty_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + 1e-6
            up = loss()
            array[index] = saved - 1e-6
            down = loss()
            array[index] = saved
            grad[index] = (up - down) / 2e-6
        return grad

    loss = lambda: float((forward(x, kernel) * r).sum())  # noqa: E731
    np.testing.assert_allclose(dkernel.reshape(kernel.shape), numeric(kernel, loss),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, numeric(x, loss), rtol=1e-6, atol=1e-7)


def _naive_max_pool(x, window, strides, padding):
    spatial = x.shape[1:-1]
    out = kernels.output_shape(spatial, window, strides, padding)
    xpad = kernels.pad(x, kernels.paddings(spatial, window, strides, padding), value=-np.inf)
    y = np.empty((x.shape[0], *out, x.shape[-1]))
    for o in itertools.product(*map(range, out)):
        patch = xpad[(slice(None), *(slice(i * s, i * s + k) for i, s, k in
                                     zip(o, strides, window)))]
        y[(slice(None), *o)] = patch.max(axis=tuple(range(1, len(window) + 1)))
    return y


POOLS = [  # spatial, window, strides, padding
    ((9,), (2,), (2,), "valid"),  # tiled, one column cropped
    ((7,), (3,), (2,), "same"),
    ((5, 7), (2, 3), (2, 3), "valid"),  # tiled, cropped on both axes
    ((6, 5), (3, 2), (1, 2), "same"),
    ((4, 6, 5), (2, 2, 2), (2, 2, 2), "valid"),  # tiled
    ((4, 5, 3), (2, 3, 2), (1, 2, 2), "same"),
]


@pytest.mark.parametrize("spatial, window, strides, padding", POOLS)
def test_max_pool_matches_naive_loops_and_finite_differences(spatial, window, strides, padding):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, *spatial, 2))  # no ties
    out = kernels.output_shape(spatial, window, strides, padding)
    ops = Ops(workers=2)  # the tiled case: a chunk of the batch per worker
    y, backward = kernels.max_pool(ops, x, window, strides, padding, out)
    np.testing.assert_array_equal(y, _naive_max_pool(x, window, strides, padding))
    r = rng.standard_normal(y.shape)
    dx = backward(r)
    numeric = np.empty_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + 1e-6
        up = (_naive_max_pool(x, window, strides, padding) * r).sum()
        x[index] = saved - 1e-6
        down = (_naive_max_pool(x, window, strides, padding) * r).sum()
        x[index] = saved
        numeric[index] = (up - down) / 2e-6
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spatial, window, strides, padding", [POOLS[0], POOLS[1], POOLS[5]])
def test_max_pool_routes_a_tied_window_to_its_first_maximum(spatial, window, strides, padding):
    x = np.zeros((2, *spatial, 1))
    out = kernels.output_shape(spatial, window, strides, padding)
    y, backward = kernels.max_pool(Ops(workers=2), x, window, strides, padding, out)
    dx = backward(np.ones_like(y))
    # every window's first cell is its start: o·s - pad_before along each axis
    expected = np.zeros_like(x)
    starts = [[max(o * s - before, 0) for o in range(n)] for n, s, (before, _) in
              zip(out, strides, kernels.paddings(spatial, window, strides, padding))]
    for position in itertools.product(*starts):
        expected[(slice(None), *position)] += 1
    np.testing.assert_array_equal(dx, expected)
