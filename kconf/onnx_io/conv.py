"""Convolutions, pooling, padding, cropping and upsampling.

kconf's tensors are channels last; ONNX's Conv, ConvTranspose and pooling operators are
channels first, so each of these converters transposes into (N, C, *spatial) and back.
Padding is explicit (computed from the static spatial sizes as Keras does: ``same`` puts the
odd pixel after, ``causal`` pads only before).
"""
from __future__ import annotations

import math

import numpy as np

from kconf.onnx_io import activations
from kconf.onnx_io.builder import Builder, Call, Result, Unsupported

INT64_MAX = 2 ** 63 - 1


def to_channels_first(b: Builder, x: str, rank: int) -> str:
    return b.transpose(x, [0, rank + 1, *range(1, rank + 1)])


def to_channels_last(b: Builder, x: str, rank: int) -> str:
    return b.transpose(x, [0, *range(2, rank + 2), 1])


def window_pads(layer, spatial, kernel, strides, dilation=None) -> dict:
    """The padding attributes of a window op, as Keras pads: explicit ``pads`` (all begins,
    then all ends), or for ``same`` on unknown sizes ONNX's ``SAME_UPPER`` (the odd pixel
    after, as Keras)."""
    dilation = dilation or (1,) * len(kernel)
    padding = str(layer.padding).lower()
    if padding == "same" and None in spatial:
        if any(d != 1 for d in dilation):
            raise Unsupported("'same' padding with a dilation needs known spatial sizes "
                              "(onnxruntime has no SAME_UPPER with dilations)")
        return {"auto_pad": "SAME_UPPER"}
    begins, ends = [], []
    for n, k, s, d in zip(spatial, kernel, strides, dilation):
        extent = (k - 1) * d + 1
        if padding == "valid":
            total, before = 0, 0
        elif padding == "causal":
            total = before = extent - 1
        else:
            total = max((math.ceil(n / s) - 1) * s + extent - n, 0)
            before = total // 2
        begins.append(before)
        ends.append(total - before)
    return {"pads": begins + ends}


def _finish(b: Builder, call: Call, y: str, rank: int, bias=None) -> str:
    """Back to channels last, the bias and the activation."""
    y = to_channels_last(b, y, rank)
    if bias is not None:
        y = b.op("Add", [y, b.const(bias, hint="bias")])
    return activations.apply(b, call.layer.activation, y)


def _conv(b: Builder, x: str, kernel, layer, spatial, rank, group=1) -> str:
    """ONNX Conv (no bias) of a channels-first ``x`` with a Keras-layout (*k, cin, cout)
    kernel."""
    weight = np.transpose(kernel, (rank + 1, rank, *range(rank)))
    pads = window_pads(layer, spatial, kernel.shape[:rank], layer.strides,
                       layer.dilation_rate)
    return b.op("Conv", [x, b.const(weight, hint="kernel")], group=group,
                kernel_shape=list(kernel.shape[:rank]), strides=list(layer.strides),
                dilations=list(layer.dilation_rate), **pads)


def convolution(b: Builder, call: Call):
    layer = call.layer
    rank = len(call.shape) - 2
    x = to_channels_first(b, call.x, rank)
    y = _conv(b, x, layer.weights["kernel"], layer, call.shape[1:-1], rank,
              group=getattr(layer, "groups", 1))
    return _finish(b, call, y, rank, layer.weights["bias"] if layer.use_bias else None)


def _depthwise_kernel(kernel, rank):
    """Keras (*k, cin, multiplier) as a grouped Conv's (*k, 1, cin·multiplier) kernel
    (output channel c·multiplier + m, as Keras orders them)."""
    return kernel.reshape(*kernel.shape[:rank], 1, -1)


def depthwise(b: Builder, call: Call):
    """A grouped Conv (one group per input channel), then for a separable convolution the
    1×…×1 pointwise Conv."""
    layer = call.layer
    rank = len(call.shape) - 2
    separable = "pointwise_kernel" in layer.weights
    kernel = layer.weights["depthwise_kernel" if separable else "kernel"]
    x = to_channels_first(b, call.x, rank)
    y = _conv(b, x, _depthwise_kernel(kernel, rank), layer, call.shape[1:-1], rank,
              group=call.shape[-1])
    if separable:
        pointwise = np.transpose(layer.weights["pointwise_kernel"],
                                 (rank + 1, rank, *range(rank)))
        y = b.op("Conv", [y, b.const(pointwise, hint="pointwise_kernel")],
                 kernel_shape=[1] * rank)
    return _finish(b, call, y, rank, layer.weights["bias"] if layer.use_bias else None)


def conv_transpose(b: Builder, call: Call):
    """The full transposed result (ONNX ConvTranspose without pads), then cropped to where
    Keras's output starts and ends (padded with zeros past its end where Keras's output is
    longer). Both amounts depend on the kernel, stride and padding only: any input size."""
    from kconf.engine.layers.conv_transpose import transpose_padding

    layer = call.layer
    rank = len(call.shape) - 2
    kernel = layer.weights["kernel"]  # (*k, filters, cin)
    weight = np.transpose(kernel, (rank + 1, rank, *range(rank)))  # (cin, filters, *k)
    x = to_channels_first(b, call.x, rank)
    full = b.op("ConvTranspose", [x, b.const(weight, hint="kernel")],
                kernel_shape=list(kernel.shape[:rank]), strides=list(layer.strides),
                dilations=list(layer.dilation_rate))
    starts, ends, extra = [], [], []
    for axis in range(rank):
        size = (kernel.shape[axis] - 1) * layer.dilation_rate[axis] + 1
        given = None if layer.output_padding is None else layer.output_padding[axis]
        left, right = transpose_padding(size, layer.strides[axis], layer.padding, given)
        cut = size - 1 - right  # what Keras's output leaves off the full result's end
        starts.append(size - 1 - left)
        ends.append(-cut if cut > 0 else INT64_MAX)
        extra.append(max(-cut, 0))
    if any(extra):
        full = b.op("Pad", [full, b.ints([0, 0] + [0] * rank + [0, 0] + extra)])
    y = b.slice(full, starts, ends, list(range(2, rank + 2)))
    return _finish(b, call, y, rank, layer.weights["bias"] if layer.use_bias else None)


# --- pooling -------------------------------------------------------------------------------

def pooling(b: Builder, call: Call):
    layer = call.layer
    rank = len(call.shape) - 2
    pool, strides = list(layer.pool_size), list(layer.strides)
    pads = window_pads(layer, call.shape[1:-1], pool, strides)
    x = to_channels_first(b, call.x, rank)
    if type(layer).__name__.startswith("Max"):
        y = b.op("MaxPool", [x], kernel_shape=pool, strides=strides, **pads)
    else:  # Keras averages over the window's real inputs only
        y = b.op("AveragePool", [x], kernel_shape=pool, strides=strides, count_include_pad=0,
                 **pads)
    return to_channels_last(b, y, rank)


def global_pooling(b: Builder, call: Call):
    layer = call.layer
    rank = len(call.shape) - 2
    axes = b.ints(range(1, rank + 1))
    keep = int(bool(layer.keepdims))
    kind = type(layer).__name__
    if call.mask is not None and kind == "GlobalAveragePooling1D":
        m = b.op("Cast", [b.unsqueeze(call.mask, [-1])], to=1)  # (N, T, 1)
        total = b.op("ReduceSum", [b.op("Mul", [call.x, m]), axes], keepdims=keep)
        count = b.op("ReduceSum", [m, axes], keepdims=keep)
        return Result([b.op("Div", [total, count])], [None])
    op = "ReduceMean" if "Average" in kind else "ReduceMax"
    return Result([b.op(op, [call.x, axes], keepdims=keep)], [None])


# --- padding, cropping, upsampling ----------------------------------------------------------

def zero_padding(b: Builder, call: Call):
    pairs = call.layer.pairs
    begins = [0, *(p[0] for p in pairs), 0]
    ends = [0, *(p[1] for p in pairs), 0]
    return b.op("Pad", [call.x, b.ints(begins + ends)])


def cropping(b: Builder, call: Call):
    pairs = call.layer.pairs
    starts = [p[0] for p in pairs]
    ends = [-p[1] if p[1] else INT64_MAX for p in pairs]  # from the end: any size
    return b.slice(call.x, starts, ends, list(range(1, len(pairs) + 1)))


def _repeat(b: Builder, x: str, shape, sizes) -> str:
    """Each position along the spatial axes repeated ``sizes`` times (nearest upsampling)."""
    rank = len(sizes)
    if any(n is None for n in shape[1:-1]):  # repeating = nearest at integer scales
        scales = b.const([1.0, *(float(s) for s in sizes), 1.0])
        return b.op("Resize", [x, "", scales], mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    # (N, a, b, C) -> (N, a, 1, b, 1, C) -> expanded -> (N, a·s, b·t, C)
    expanded = b.unsqueeze(x, [2 + 2 * i for i in range(rank)])
    target = [1]
    for n, s in zip(shape[1:-1], sizes):
        target += [n, s]
    target.append(shape[-1])
    y = b.op("Expand", [expanded, b.ints(target)])
    return b.reshape(y, (None, *(n * s for n, s in zip(shape[1:-1], sizes)), shape[-1]))


def upsampling_1d(b: Builder, call: Call):
    return _repeat(b, call.x, call.shape, [call.layer.size])


def upsampling(b: Builder, call: Call):
    layer = call.layer
    if layer.interpolation == "nearest":
        return _repeat(b, call.x, call.shape, list(layer.size))
    from kconf.onnx_io.image import bilinear_upsampling

    return bilinear_upsampling(b, call)
