"""Conv1DTranspose and Conv2DTranspose: the transpose of a convolution (Keras's
``Conv*Transpose``, channels_last), ``y = activation(conv_transpose(x, kernel) + bias)``.

Each input position ``o`` adds ``x[o] @ kernel[k].T`` at output position ``o·s + k·d``
(the kernel is ``(*kernel_size, filters, cin)``): the input gradient of a convolution whose
kernel is this one, so forward is that input gradient's product-and-add per kernel offset
(``kernels.conv_transpose``), and backward is that convolution's forward (dx, from the
im2col rows of the padded dy) and its kernel gradient (the same rows against x).

Output length and cropping follow Keras 3 (its JAX backend): with the dilated kernel extent
``k``, ``valid`` gives ``(in - 1)·s + k + output_padding`` (output_padding defaulting to
``max(k, s) - k``), ``same`` gives ``in·s`` (``(in - 1)·s + k % 2 + output_padding`` when
output_padding is given); Keras's left padding ``min(ceil(p / 2), k - 1)`` of the total
``p`` says where the output starts in the full transposed result: ``k - 1 - left`` in.
"""
from __future__ import annotations

import math
from typing import ClassVar

from pydantic import model_validator

from kconf.args.fields import Bool, IntPair, IntSingle, PositiveInt, config_error
from kconf.args.layer import Activation, Initializer, LayerArgs, Padding
from kconf.engine import activations, kernels
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec, require_rank
from kconf.engine.layers.convolution import as_tuple
from kconf.errors import ShapeError
from kconf.shapes import format_shape


def transpose_padding(size: int, stride: int, padding: str,
                      output_padding: int | None) -> tuple[int, int]:
    """Keras's (JAX's) ``(left, right)`` padding of a transposed convolution along one axis,
    for the dilated kernel extent ``size``."""
    if padding == "valid":
        extra = max(size, stride) - size if output_padding is None else output_padding
        return size - 1, size - 1 + extra
    if output_padding is None:
        total = stride + size - 2
    else:
        total = size + size % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, size - 1)
    return left, total - left


class ConvTranspose(Layer):
    """A transposed convolution with ``rank`` spatial axes (Keras's ``BaseConvTranspose``).

    Args:
        filters: output channels.
        kernel_size, strides, dilation_rate: int or ``rank`` ints.
        padding: 'valid' or 'same'.
        output_padding: None, or int or ``rank`` ints (each less than its stride): extra
            output length along each axis.
        activation: activation name, None for linear.
        use_bias: add a bias per output channel.
        kernel_initializer, bias_initializer: initializer specs.

    Weights: ``kernel`` (*kernel_size, filters, cin), then ``bias`` (filters,).
    """

    rank: ClassVar[int]
    input_grads_optional = True

    def __init__(self, filters: int, kernel_size, strides, padding: str, output_padding,
                 dilation_rate, activation, use_bias: bool, kernel_initializer,
                 bias_initializer, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = as_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = as_tuple(strides, self.rank, "strides")
        self.padding = str(padding).lower()
        self.output_padding = (None if output_padding is None
                               else as_tuple(output_padding, self.rank, "output_padding"))
        self.dilation_rate = as_tuple(dilation_rate, self.rank, "dilation_rate")
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def _geometry(self, input_shape):
        """Per spatial axis: (output length, the padding of the full result: (before,
        after)); lengths None where the input's are."""
        require_rank(self, input_shape, self.rank + 2,
                     "channels-last inputs (batch, *spatial, channels)")
        if input_shape[-1] is None:
            raise ShapeError(f"{type(self).__name__} needs a known number of input channels, "
                             f"got input shape {format_shape(input_shape)}")
        extent = kernels.dilated_window(self.kernel_size, self.dilation_rate)
        out = []
        for axis, (length, size, stride) in enumerate(zip(input_shape[1:-1], extent,
                                                          self.strides)):
            extra = None if self.output_padding is None else self.output_padding[axis]
            left, right = transpose_padding(size, stride, self.padding, extra)
            if length is None:
                out.append((None, None))
                continue
            n = (length - 1) * stride + left + right - size + 2
            start = size - 1 - left
            full = (length - 1) * stride + size
            out.append((n, (start, max(full - start - n, 0))))
        return out

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(n for n, _ in self._geometry(input_shape)), self.filters)

    def weight_specs(self, input_shape):
        specs = [WeightSpec("kernel", (*self.kernel_size, self.filters, input_shape[-1]),
                            self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), self.bias_initializer))
        return specs

    def flops(self, input_shape):
        """2 · prod(kernel_size) · cin · filters per input position."""
        if any(length is None for length in input_shape[1:-1]):
            return 0
        size = 1
        for length in (*input_shape[1:-1], *self.kernel_size):
            size *= length
        return 2 * size * input_shape[-1] * self.filters

    def forward(self, x, training=False, rng=None):
        kernel = self.weights["kernel"]
        n, *spatial, cin = x.shape
        geometry = self._geometry(x.shape)
        out_shape = tuple(length for length, _ in geometry)
        pads = tuple(pad for _, pad in geometry)
        dtype = xp.result_type(x, kernel)
        kernel_c = kernel.astype(dtype, copy=False)
        z = xp.empty((n, *out_shape, self.filters), dtype=dtype)
        kernels.conv_transpose(xp.ascontiguousarray(x, dtype=dtype), kernel_c, pads,
                               self.strides, self.dilation_rate, z)
        if self.use_bias:
            z += self.weights["bias"]
        y, act_backward = self.activation(z)

        def backward(dy, need_dx=True):
            """That convolution's forward (dx) and kernel gradient, a block of images at a
            time, from the im2col rows of dz."""
            dz = xp.ascontiguousarray(act_backward(dy))
            dtype = xp.result_type(dz, kernel)
            kernel_d = kernel.astype(dtype, copy=False).reshape(-1, cin)
            blocks = kernels.image_blocks(n, math.prod(spatial) * len(kernel_d) * dz.itemsize)
            conv = kernels.Im2colConvolution(blocks[0][1].stop, out_shape, pads,
                                             self.kernel_size, self.strides, tuple(spatial),
                                             self.filters, dtype, self.dilation_rate)
            dkernel = xp.zeros(kernel_d.shape, dtype=dtype)
            dx = xp.empty(x.shape, dtype=dtype) if need_dx else None
            for _, images in blocks:
                cols = conv.cols(dz[images])
                rows = x[images].reshape(-1, cin).astype(dtype, copy=False)
                dkernel += cols.T @ rows
                if dx is not None:
                    xp.matmul(cols, kernel_d, out=dx[images].reshape(-1, cin))
            self.grads["kernel"] += dkernel.reshape(kernel.shape)
            if self.use_bias:
                self.grads["bias"] += dz.reshape(-1, self.filters).sum(axis=0)
            return dx

        return y, backward


class ConvTransposeArgs(LayerArgs):
    """Keras's checks across the arguments of the transposed convolutions."""

    @model_validator(mode="after")
    def _keras_checks(self):
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise config_error("conv", "strides > 1 and dilation_rate > 1 cannot be combined "
                                       "(as in Keras)", at="dilation_rate")
        if self.output_padding is not None and any(
                p >= s for p, s in zip(self.output_padding, self.strides)):
            raise config_error("conv", "each output_padding must be less than its stride "
                                       f"(strides {list(self.strides)})", at="output_padding")
        return self


class Conv1DTransposeArgs(ConvTransposeArgs):
    keras_channels_last: ClassVar[bool] = True

    filters: PositiveInt
    kernel_size: IntSingle
    strides: IntSingle = (1,)
    padding: Padding = "valid"
    output_padding: IntSingle | None = None
    dilation_rate: IntSingle = (1,)
    activation: Activation | None = None
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


class Conv1DTranspose(ConvTranspose):
    """Keras ``Conv1DTranspose``: input (batch, steps, channels); ``kernel`` (k, filters,
    cin)."""

    rank = 1

    def __init__(self, filters: int, kernel_size, strides=(1,), padding: str = "valid",
                 output_padding=None, dilation_rate=(1,), activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding,
                         dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, **kwargs)


class Conv2DTransposeArgs(ConvTransposeArgs):
    keras_channels_last: ClassVar[bool] = True

    filters: PositiveInt
    kernel_size: IntPair
    strides: IntPair = (1, 1)
    padding: Padding = "valid"
    output_padding: IntPair | None = None
    dilation_rate: IntPair = (1, 1)
    activation: Activation | None = None
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


class Conv2DTranspose(ConvTranspose):
    """Keras ``Conv2DTranspose``: input (batch, height, width, channels); ``kernel`` (kh, kw,
    filters, cin)."""

    rank = 2

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 output_padding=None, dilation_rate=(1, 1), activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding,
                         dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, **kwargs)
