"""Conv1D and Conv3D, and what every convolution layer shares: ``convolve`` (the blocked,
multi-worker convolution of a batch, with its backward) and ``Convolution`` (the layer
around it, for any number of spatial axes).

``convolve`` is what Conv2D's forward always was, for N spatial axes, dilations and groups:
the batch is cut into blocks of images (``kernels.even_blocks``), run on the workers of the
current ops (kconf.engine.ops), each worker with its own convolution object (its scratch,
``kernels.convolution``: shifted rows for 2-D stride-1 layers with few filters, im2col
otherwise). The bias and an activation with an in-place form are applied to each block's
rows right after its product; backward goes block by block too, and sums the blocks' kernel
and bias gradients in block order, so the results do not depend on the number of workers.

Conv1D, Conv2D and Conv3D are ``Convolution`` with 1, 2 and 3 spatial axes; DepthwiseConv
and SeparableConv call ``convolve`` with groups (``depthwise.py``, ``separable.py``). All
three families subclass ``ConvWindow``: the window's arguments, the output's spatial lengths
and the sizes the FLOPs count.
"""
from __future__ import annotations

import math
from typing import Annotated, ClassVar

from pydantic import model_validator

from kconf.args.fields import (
    Bool,
    IntSingle,
    IntTriple,
    KerasForm,
    PositiveInt,
    choice,
    config_error,
)
from kconf.args.layer import Activation, Initializer, LayerArgs, Padding
from kconf.engine import activations, kernels
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec, require_rank
from kconf.engine.ops import current_ops
from kconf.errors import ShapeError
from kconf.shapes import format_shape

#: Conv1D's padding: ``valid``, ``same`` or ``causal`` (all the padding before the steps).
CausalPadding = Annotated[choice("padding", ("valid", "same", "causal"), casefold=True),
                          KerasForm("causal_padding")]

_AXES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_WHAT = {1: "sequences (batch, steps, channels)",
         2: "images (batch, height, width, channels)",
         3: "volumes (batch, depth, height, width, channels)"}


def as_tuple(value, rank: int, what: str) -> tuple[int, ...]:
    """An int or ``rank`` ints (Keras's ``kernel_size=3`` or ``(3, 5)``) as a tuple."""
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"{what} must be a positive int or {rank} positive ints, "
                         f"got {value!r}")
    return values


def conv_output_shape(layer: Layer, input_shape, window, strides, padding: str,
                      dilation=None) -> tuple:
    """The spatial output lengths of a channels-last convolution (``window`` undilated), or
    a ShapeError when the input's rank is wrong, its channels unknown, or the (dilated)
    window does not fit."""
    rank = len(window)
    require_rank(layer, input_shape, rank + 2, _WHAT[rank])
    if input_shape[-1] is None:
        raise ShapeError(f"{type(layer).__name__} needs a known number of input channels, "
                         f"got input shape {format_shape(input_shape)}")
    extent = kernels.dilated_window(window, dilation)
    out = []
    for axis, length, size, stride in zip(_AXES[rank], input_shape[1:-1], extent, strides):
        n = kernels.output_length(length, size, stride, padding)
        if n is not None and n <= 0:
            raise ShapeError(
                f"{type(layer).__name__}: window {tuple(extent)} is larger than the input "
                f"{axis} {length} with padding 'valid' (input shape "
                f"{format_shape(input_shape)})")
        out.append(n)
    return tuple(out)


def convolve(x, kernel, bias, activation, strides, padding: str, dilation, groups: int,
             out_shape):
    """``activation(conv(x, kernel) + bias)`` of a channels-last batch: ``(y, backward)``.

    Args:
        x: (batch, *spatial, cin).
        kernel: (*window, cin / groups, cout) (Keras's layout; a grouped kernel's filters
            are in group order).
        bias: (cout,) or None.
        activation: an engine activation (``activations.get``).
        strides, dilation: one entry per spatial axis.
        padding: ``"valid"``, ``"same"`` or ``"causal"``.
        groups: channel groups (1: a plain convolution; cin: depthwise).
        out_shape: the output's spatial lengths (``conv_output_shape``).

    Returns:
        ``(y, backward)``; ``backward(dy, need_dx=True, add_kernel_gradient=None)`` returns
        ``(dx, dkernel, dbias)`` (dx None unless needed, dbias None without a bias; dkernel
        shaped as ``kernel``, or None where ``add_kernel_gradient`` is given: that function
        gets it, perhaps later, from ``Ops.finish_deferred``).
    """
    n, *spatial, cin = x.shape
    window = kernel.shape[:-2]
    cout = kernel.shape[-1]
    ops = current_ops()
    dilation = tuple(dilation)
    plain = all(d == 1 for d in dilation)
    pads = kernels.paddings(spatial, kernels.dilated_window(window, dilation), strides, padding)
    dtype = xp.result_type(x, kernel)
    kernel_c = kernel.astype(dtype, copy=False)
    # Bias and activation run on each block's rows right after its product, while they are
    # in the cache (activations with an in-place form; the others after the loop).
    blockwise = activations.has_in_place(activation)
    act = activations.in_place(activation)
    z = xp.empty((n, *out_shape, cout), dtype=dtype)
    patch = kernel.size // cout  # prod(window) · cin / groups
    blocks = kernels.even_blocks(n, z[0].size // cout * patch * groups * z.itemsize)
    block_images = blocks[0][1].stop

    def convolution():
        """A worker's convolution (its own scratch)."""
        return kernels.convolution(block_images, spatial, pads, window, strides, out_shape,
                                   cin, cout, dtype, None if plain else dilation, groups)

    block_backwards = [None] * len(blocks)  # per block: the backward of its activation

    def forward_blocks(worker, mine):
        conv = convolution()
        for number, images in mine:
            zb = z[images]
            conv.forward(x[images], kernel_c, zb, bias)
            if blockwise:
                block_backwards[number] = act(zb)[1]  # in place: z becomes y

    ops.parallel(forward_blocks, blocks)
    if blockwise:
        y = z
    else:
        y, act_backward = activation(z)
        del z

    def backward(dy, need_dx=True, add_kernel_gradient=None):
        """Block by block, as forward: the block's dz (its activation's backward), its share
        of the kernel and bias gradients from its im2col rows (built again, not kept), and
        its images' dx. The shares are summed in block order.

        With ``add_kernel_gradient`` (a function of the kernel gradient) and dx needed, inside
        a parallel step, the kernel gradient's products are deferred (``Ops.defer``): each
        block keeps its matrix, a pool thread computes the shares while the caller goes on
        with dx, and the sum is handed to ``add_kernel_gradient`` when the ops finishes its
        deferred work (the end of the backward pass); dkernel is then returned as None.
        """
        dz_all = None if blockwise else xp.ascontiguousarray(act_backward(dy))
        dtype = xp.result_type(dy, kernel)
        dkernels = xp.empty((len(blocks), patch, cout), dtype=dtype)
        dbiases = xp.empty((len(blocks), cout), dtype=dtype) if bias is not None else None
        dx = xp.empty(x.shape, dtype=dtype) if need_dx else None
        kernel_d = kernel.astype(dtype, copy=False)
        # the kernel gradient may wait only for a pass that goes on after this layer; its
        # blocks then keep their im2col matrices (x's, or dz's: the larger, at most)
        kept = (n * max(math.prod(spatial), math.prod(out_shape)) * math.prod(window)
                * max(cin, cout) * xp.dtype(dtype).itemsize)
        keep = need_dx and add_kernel_gradient is not None and ops.can_defer(kept)
        later = [None] * len(blocks)  # per block, with keep: what computes its share

        def backward_blocks(worker, mine):
            conv = convolution()
            ones = None
            for number, images in mine:
                if dz_all is None:
                    dzb = xp.ascontiguousarray(block_backwards[number](dy[images]))
                else:
                    dzb = dz_all[images]
                if dbiases is not None:
                    rows = dzb.reshape(-1, cout)
                    if ones is None or len(ones) < len(rows):
                        ones = xp.ones(len(rows), dtype=dtype)
                    # the bias gradient: column sums as a product with ones (a BLAS
                    # matrix-vector product; NumPy's sum along rows of 32 is far slower)
                    xp.matmul(ones[:len(rows)], rows, out=dbiases[number])
                later[number] = conv.gradients(x[images], dzb, kernel_d, dkernels[number],
                                               None if dx is None else dx[images], keep)

        ops.parallel(backward_blocks, blocks)
        dbias = dbiases.sum(axis=0) if dbiases is not None else None

        def block_share(number):
            compute, later[number] = later[number], None  # its matrix freed once done
            if compute is not None:
                compute()

        def kernel_gradient():
            return dkernels.sum(axis=0).reshape(kernel.shape)

        if add_kernel_gradient is None:
            return dx, kernel_gradient(), dbias

        def finish():
            add_kernel_gradient(kernel_gradient())

        numbers = range(len(blocks))
        if not (keep and ops.defer(block_share, numbers, finish, kept)):
            for number in numbers:
                block_share(number)
            finish()
        return dx, None, dbias

    return y, backward


class ConvWindow(Layer):
    """A layer that slides a convolution's window over ``rank`` spatial axes (the base of
    ``Convolution``, ``Separable`` and ``Depthwise``): its ``kernel_size``, ``strides``,
    ``padding`` and ``dilation_rate``, the output's spatial lengths, and the sizes its FLOPs
    count."""

    rank: ClassVar[int]

    def _set_window(self, kernel_size, strides, padding: str, dilation_rate) -> None:
        """Keep the window's arguments, as tuples of ``rank`` ints (padding in lower case)."""
        self.kernel_size = as_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = as_tuple(strides, self.rank, "strides")
        self.padding = str(padding).lower()
        self.dilation_rate = as_tuple(dilation_rate, self.rank, "dilation_rate")

    def _spatial(self, input_shape) -> tuple:
        return conv_output_shape(self, input_shape, self.kernel_size, self.strides,
                                 self.padding, self.dilation_rate)

    def _positions_and_taps(self, input_shape) -> tuple[int, int] | None:
        """(output positions of one sample, taps of the window), or None where a spatial
        length is unknown."""
        spatial = self._spatial(input_shape)
        if any(length is None for length in spatial):
            return None
        return math.prod(spatial), math.prod(self.kernel_size)


class Convolution(ConvWindow):
    """A channels-last convolution with ``rank`` spatial axes (Keras's ``BaseConv``):
    ``y = activation(conv(x, kernel) + bias)``, cross-correlation, kernel not flipped.

    Args:
        filters: number of output channels.
        kernel_size: int or ``rank`` ints.
        strides: int or ``rank`` ints.
        padding: 'valid' or 'same' (Conv1D also 'causal').
        dilation_rate: int or ``rank`` ints: the kernel's taps are that far apart.
        groups: channel groups; input channels and filters must be multiples of it.
        activation: activation name, None for linear.
        use_bias: add a bias per output channel.
        kernel_initializer, bias_initializer: initializer specs (see ``initializers.get``).

    Weights: ``kernel`` (*kernel_size, cin / groups, filters), then ``bias`` (filters,).

    Each subclass's constructor has Keras's defaults for its number of axes.
    """

    rank: ClassVar[int]
    input_grads_optional = True
    uses_workers = True  # its blocks of images run on the ops' workers (kconf.engine.ops)

    def __init__(self, filters: int, kernel_size, strides, padding: str, dilation_rate,
                 groups: int, activation, use_bias: bool, kernel_initializer,
                 bias_initializer, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self._set_window(kernel_size, strides, padding, dilation_rate)
        self.groups = groups
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        if filters % groups:
            raise ValueError(f"filters ({filters}) must be a multiple of groups ({groups})")

    def _spatial(self, input_shape) -> tuple:
        out = super()._spatial(input_shape)
        if input_shape[-1] % self.groups:
            raise ShapeError(f"{type(self).__name__}: the input's {input_shape[-1]} channels "
                             f"are not a multiple of groups ({self.groups})")
        return out

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._spatial(input_shape), self.filters)

    def weight_specs(self, input_shape):
        specs = [WeightSpec("kernel", (*self.kernel_size, input_shape[-1] // self.groups,
                                       self.filters), self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), self.bias_initializer))
        return specs

    def flops(self, input_shape):
        """2 · prod(kernel_size) · cin / groups · filters per output position."""
        sizes = self._positions_and_taps(input_shape)
        if sizes is None:
            return 0
        positions, taps = sizes
        return 2 * positions * taps * input_shape[-1] // self.groups * self.filters

    def forward(self, x, training=False, rng=None):
        kernel = self.weights["kernel"]
        out_shape = self._spatial(x.shape)
        bias = self.weights["bias"] if self.use_bias else None
        y, convolution_backward = convolve(x, kernel, bias, self.activation, self.strides,
                                           self.padding, self.dilation_rate, self.groups,
                                           out_shape)

        def add_kernel_gradient(dkernel):
            self.grads["kernel"] += dkernel

        def backward(dy, need_dx=True):
            dx, _, dbias = convolution_backward(dy, need_dx, add_kernel_gradient)
            if self.use_bias:
                self.grads["bias"] += dbias
            return dx

        return y, backward


class ConvArgs(LayerArgs):
    """Keras's checks across the arguments of Conv1D, Conv2D and Conv3D (whose argument
    models subclass this one)."""

    @model_validator(mode="after")
    def _keras_checks(self):
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise config_error("conv", "strides > 1 and dilation_rate > 1 cannot be combined "
                                       "(as in Keras)", at="dilation_rate")
        if self.filters % self.groups:
            raise config_error("conv", f"filters ({self.filters}) must be a multiple of "
                                       f"groups ({self.groups})", at="groups")
        return self


class Conv1DArgs(ConvArgs):
    keras_channels_last: ClassVar[bool] = True

    filters: PositiveInt
    kernel_size: IntSingle
    strides: IntSingle = (1,)
    padding: CausalPadding = "valid"
    dilation_rate: IntSingle = (1,)
    groups: PositiveInt = 1
    activation: Activation | None = None
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


class Conv1D(Convolution):
    """1-D convolution over steps (Keras ``Conv1D``, channels_last): input (batch, steps,
    channels); ``padding: causal`` pads ``(kernel_size - 1)·dilation_rate`` steps before, so
    an output never sees a later step. Weights: ``kernel`` (k, cin / groups, filters), then
    ``bias`` (filters,)."""

    rank = 1

    def __init__(self, filters: int, kernel_size, strides=(1,), padding: str = "valid",
                 dilation_rate=(1,), groups: int = 1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, dilation_rate, groups,
                         activation, use_bias, kernel_initializer, bias_initializer, **kwargs)


class Conv3DArgs(ConvArgs):
    keras_channels_last: ClassVar[bool] = True

    filters: PositiveInt
    kernel_size: IntTriple
    strides: IntTriple = (1, 1, 1)
    padding: Padding = "valid"
    dilation_rate: IntTriple = (1, 1, 1)
    groups: PositiveInt = 1
    activation: Activation | None = None
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


class Conv3D(Convolution):
    """3-D convolution of volumes (Keras ``Conv3D``, channels_last): input (batch, depth,
    height, width, channels). Weights: ``kernel`` (kd, kh, kw, cin / groups, filters), then
    ``bias`` (filters,)."""

    rank = 3

    def __init__(self, filters: int, kernel_size, strides=(1, 1, 1), padding: str = "valid",
                 dilation_rate=(1, 1, 1), groups: int = 1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, dilation_rate, groups,
                         activation, use_bias, kernel_initializer, bias_initializer, **kwargs)
