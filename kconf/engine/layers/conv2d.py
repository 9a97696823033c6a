"""Conv2D: channels-last 2-D cross-correlation, ``y = activation(conv(x, kernel) + bias)``.

The layer is ``Convolution`` (kconf.engine.layers.convolution, shared with Conv1D and
Conv3D) with two spatial axes; its convolution, ``convolution.convolve``, cuts the batch into
blocks of images and runs them on the workers of the current ops, with im2col or (stride 1,
few filters, no dilation or groups) products on shifted rows of the flat input
(kconf.engine.kernels). The helpers below are shared with the pooling layers.
"""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import Bool, IntPair, PositiveInt
from kconf.args.layer import Activation, Initializer, Padding
from kconf.engine import kernels
from kconf.engine.layers.base import Layer, require_rank
from kconf.engine.layers.convolution import ConvArgs, Convolution
from kconf.errors import ShapeError
from kconf.shapes import format_shape


class Conv2DArgs(ConvArgs):
    keras_channels_last: ClassVar[bool] = True

    filters: PositiveInt
    kernel_size: IntPair
    strides: IntPair = (1, 1)
    padding: Padding = "valid"
    dilation_rate: IntPair = (1, 1)
    groups: PositiveInt = 1
    activation: Activation | None = None
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


def normalize_pair(value, what: str) -> tuple[int, int]:
    """An int or a pair of ints (Keras's ``kernel_size=3`` or ``(3, 5)``) as a pair."""
    if isinstance(value, int):
        pair = (value, value)
    else:
        pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(
            f"{what} must be a positive int or a pair of positive ints, got {value!r}"
        )
    return pair


def normalize_padding(padding: str) -> str:
    """'valid' or 'same' (case-insensitive, as Keras)."""
    p = str(padding).lower()
    if p not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return p


def spatial_output_shape(layer: Layer, input_shape, window, strides, padding, what: str):
    """(Ho, Wo) for a rank-4 channels-last input, or a ShapeError when the window does not fit."""
    require_rank(layer, input_shape, 4, what)
    out = []
    for axis, length, size, stride in zip(("height", "width"), input_shape[1:3], window, strides):
        n = kernels.output_length(length, size, stride, padding)
        if n is not None and n <= 0:
            raise ShapeError(
                f"{type(layer).__name__}: window {tuple(window)} is larger than the input {axis} "
                f"{length} with padding 'valid' (input shape {format_shape(input_shape)})"
            )
        out.append(n)
    return tuple(out)


class Conv2D(Convolution):
    """2-D convolution layer (Keras ``Conv2D``, channels_last), with dilation and groups.

    Args:
        filters: number of output channels.
        kernel_size: int or (kh, kw).
        strides: int or (sh, sw).
        padding: 'valid' or 'same'.
        dilation_rate: int or (dh, dw).
        groups: channel groups (input channels and filters are multiples of it).
        activation: activation name, None for linear.
        use_bias: add a bias per output channel.
        kernel_initializer, bias_initializer: initializer specs (see ``initializers.get``).

    Weights: ``kernel`` (kh, kw, cin / groups, filters), then ``bias`` (filters,).
    """

    rank = 2

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 dilation_rate=(1, 1), groups: int = 1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, dilation_rate, groups,
                         activation, use_bias, kernel_initializer, bias_initializer, **kwargs)
