"""Conv2D: channels-last 2-D cross-correlation, ``y = activation(conv(x, kernel) + bias)``.

The convolution itself is in kconf.engine.kernels (shared with the other convolution and
pooling layers): im2col, a block of images at a time, for most layers; products on shifted
rows of the flat input for stride-1 layers with few filters (``kernels.uses_shifted_rows``).
This layer cuts its batch into blocks (``kernels.image_blocks``) and runs them on the
workers of the current ops (kconf.engine.ops): each worker, one per core, works through its
share of the blocks with its own convolution object (its scratch) and single-threaded
products, so the copies and elementwise passes use every core too.

The bias and an activation with an in-place form (relu, tanh, linear) are applied to each
block's rows right after its product, while they are in the cache, and backward goes block
by block as well (the block's dz, its share of the kernel and bias gradients, its dx), so no
batch-sized dz is ever made. Backward's closure holds only the input (which the graph keeps
anyway) and what the activation's backward needs, so one layer's scratch is alive at a time.
Each block writes only its own images' outputs, and its own share of the kernel and bias
gradients, which are summed in block order: the results do not depend on the number of
workers.
"""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import Bool, IntPair, PositiveInt
from kconf.args.layer import Activation, Fixed, Initializer, LayerArgs, Padding
from kconf.engine import activations, kernels
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec, require_rank
from kconf.engine.ops import current_ops
from kconf.errors import ShapeError
from kconf.shapes import format_shape


class Conv2DArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True
    keras_fixed: ClassVar[dict[str, Fixed]] = {
        "dilation_rate": ((1, [1, 1]), "dilated convolutions are not implemented in kconf"),
        "groups": ((1,), "grouped convolutions are not implemented in kconf"),
    }

    filters: PositiveInt
    kernel_size: IntPair
    strides: IntPair = (1, 1)
    padding: Padding = "valid"
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


class Conv2D(Layer):
    """2-D convolution layer (Keras ``Conv2D``, channels_last, no dilation or groups).

    Args:
        filters: number of output channels.
        kernel_size: int or (kh, kw).
        strides: int or (sh, sw).
        padding: 'valid' or 'same'.
        activation: activation name, None for linear.
        use_bias: add a bias per output channel.
        kernel_initializer, bias_initializer: initializer specs (see ``initializers.get``).

    Weights: ``kernel`` (kh, kw, cin, filters), then ``bias`` (filters,).
    """

    input_grads_optional = True
    uses_workers = True  # its blocks of images run on the ops' workers (kconf.engine.ops)

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = normalize_pair(kernel_size, "kernel_size")
        self.strides = normalize_pair(strides, "strides")
        self.padding = normalize_padding(padding)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def compute_output_shape(self, input_shape):
        ho, wo = spatial_output_shape(self, input_shape, self.kernel_size, self.strides,
                                      self.padding, "images (batch, height, width, channels)")
        if input_shape[3] is None:
            raise ShapeError(
                f"Conv2D needs a known number of input channels, "
                f"got input shape {format_shape(input_shape)}"
            )
        return (input_shape[0], ho, wo, self.filters)

    def weight_specs(self, input_shape):
        kh, kw = self.kernel_size
        specs = [WeightSpec("kernel", (kh, kw, input_shape[-1], self.filters),
                            self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), self.bias_initializer))
        return specs

    def flops(self, input_shape):
        """2 · kh · kw · cin · filters per output pixel (the im2col product)."""
        _, ho, wo, filters = self.compute_output_shape(input_shape)
        if ho is None or wo is None:
            return 0
        kh, kw = self.kernel_size
        return 2 * ho * wo * kh * kw * input_shape[3] * filters

    def forward(self, x, training=False, rng=None):
        kernel = self.weights["kernel"]
        kh, kw = self.kernel_size
        n, h, w, cin = x.shape
        out_hw = spatial_output_shape(self, x.shape, self.kernel_size, self.strides,
                                      self.padding, "images (batch, height, width, channels)")
        ops = current_ops()
        pads = kernels.paddings((h, w), self.kernel_size, self.strides, self.padding)
        dtype = xp.result_type(x, kernel)
        kernel_c = kernel.astype(dtype, copy=False)
        bias = self.weights["bias"] if self.use_bias else None
        # Bias and activation run on each block's rows right after its product, while they
        # are in the cache (activations with an in-place form; the others after the loop).
        blockwise = activations.has_in_place(self.activation)
        act = activations.in_place(self.activation)
        z = xp.empty((n, *out_hw, self.filters), dtype=dtype)
        blocks = kernels.image_blocks(n, out_hw[0] * out_hw[1] * kh * kw * cin * z.itemsize)
        block_images = blocks[0][1].stop

        def convolution():
            """A worker's convolution (its own scratch)."""
            return kernels.convolution(block_images, (h, w), pads, self.kernel_size,
                                       self.strides, out_hw, cin, self.filters, dtype)

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
            y, act_backward = self.activation(z)
            del z

        def backward(dy, need_dx=True):
            """Block by block, as forward: the block's dz (its activation's backward), its
            share of the kernel and bias gradients from its im2col rows (built again, not
            kept), and its images' dx. The shares are summed in block order."""
            dz_all = None if blockwise else xp.ascontiguousarray(act_backward(dy))
            dtype = xp.result_type(dy, kernel)
            dkernels = xp.empty((len(blocks), kh * kw * cin, self.filters), dtype=dtype)
            dbiases = xp.empty((len(blocks), self.filters), dtype=dtype)
            dx = xp.empty((n, h, w, cin), dtype=dtype) if need_dx else None
            kernel_d = kernel.astype(dtype, copy=False)

            def backward_blocks(worker, mine):
                conv = convolution()
                ones = None
                for number, images in mine:
                    if dz_all is None:
                        dzb = xp.ascontiguousarray(block_backwards[number](dy[images]))
                    else:
                        dzb = dz_all[images]
                    rows = dzb.reshape(-1, self.filters)
                    if ones is None or len(ones) < len(rows):
                        ones = xp.ones(len(rows), dtype=dtype)
                    # the bias gradient: column sums as a product with ones (a BLAS
                    # matrix-vector product; NumPy's sum along rows of 32 is far slower)
                    xp.matmul(ones[:len(rows)], rows, out=dbiases[number])
                    conv.gradients(x[images], dzb, kernel_d, dkernels[number],
                                   None if dx is None else dx[images])

            ops.parallel(backward_blocks, blocks)
            self.grads["kernel"] += dkernels.sum(axis=0).reshape(kernel.shape)
            if self.use_bias:
                self.grads["bias"] += dbiases.sum(axis=0)
            return dx

        return y, backward
