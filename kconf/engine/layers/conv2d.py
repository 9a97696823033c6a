"""Conv2D: channels-last 2-D cross-correlation, ``y = activation(conv(x, kernel) + bias)``.

Forward is im2col: a strided view of the (padded) input gathers every receptive field into
an ``(N·Ho·Wo, kh·kw·cin)`` matrix, multiplied by the kernel reshaped to
``(kh·kw·cin, cout)``. Backward: ``dkernel = cols.T @ dz``; ``dx`` scatters back with one
vectorized slice-add per kernel offset (kh·kw iterations), so overlapping windows add up.

That matrix is kh·kw times the size of the input (vgg's second convolution: 340 MB at batch
32), so it is never whole and never kept: it is built a block of images at a time into a
scratch buffer, used by the block's product at once, and built again in backward for dkernel.
Backward's closure holds only the input (which the graph keeps anyway) and what the
activation's backward needs, so one layer's scratch is alive at a time, and a block of a few
MB is still in the CPU's cache when its product reads it. The loops over blocks are memory
blocking: their length is set by a byte budget, and each step works on whole images.
The bias and an activation with an in-place form (relu, tanh, linear) are applied to each
block's rows right after its product, and backward goes block by block as well (the block's
dz, its share of the kernel gradient, its dx), so no batch-sized dz is ever made.

Stride-1 layers with few filters skip im2col: their products run on shifted rows of the flat
input (shifted.py, where ``applies`` says which layers), block by block in the same way.

The blocks run in lanes (kconf.engine.lanes): each lane, one per core, works through its
share of the blocks with its own scratch and single-threaded products, so the copies and
elementwise passes use every core too. Each block writes only its own images' outputs, and
its own share of the kernel and bias gradients, which are summed in block order: the
results do not depend on the number of lanes.

The padding helpers here are shared with the pooling layers (TensorFlow's rule for 'same').
"""
from __future__ import annotations

from numpy.lib.stride_tricks import as_strided

from kconf.engine import activations, lanes
from kconf.engine.backend import xp
from kconf.engine.layers import shifted
from kconf.engine.layers.base import Layer, WeightSpec, require_rank
from kconf.errors import ShapeError
from kconf.shapes import format_shape


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


def output_length(length: int | None, size: int, stride: int, padding: str) -> int | None:
    """Output length along one axis: valid floor((in - k)/s) + 1, same ceil(in/s); None stays None."""
    if length is None:
        return None
    if padding == "same":
        return -(-length // stride)
    return (length - size) // stride + 1 if length >= size else 0


def padding_amounts(length: int, size: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) padding along one axis; for 'same' the odd pixel goes after, as in TF."""
    if padding != "same":
        return 0, 0
    out = -(-length // stride)
    total = max((out - 1) * stride + size - length, 0)
    return total // 2, total - total // 2


def spatial_output_shape(layer: Layer, input_shape, window, strides, padding, what: str):
    """(Ho, Wo) for a rank-4 channels-last input, or a ShapeError when the window does not fit."""
    require_rank(layer, input_shape, 4, what)
    out = []
    for axis, length, size, stride in zip(("height", "width"), input_shape[1:3], window, strides):
        n = output_length(length, size, stride, padding)
        if n is not None and n <= 0:
            raise ShapeError(
                f"{type(layer).__name__}: window {tuple(window)} is larger than the input {axis} "
                f"{length} with padding 'valid' (input shape {format_shape(input_shape)})"
            )
        out.append(n)
    return tuple(out)


def pad_spatial(x, pads, value=0.0):
    """x padded on the height/width axes by ``pads`` = ((top, bottom), (left, right))."""
    if not any(pads[0]) and not any(pads[1]):
        return x
    return xp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


# The scratch budget of one block (see the module docstring): big enough that a block's
# products keep BLAS busy, small enough to stay in the cache.
BLOCK_BYTES = 4 * 2**20


def batch_block(n: int, bytes_per_image: int) -> int:
    """Images per block so that a block's scratch stays within ``BLOCK_BYTES`` (at least 1)."""
    return max(1, min(n, BLOCK_BYTES // max(bytes_per_image, 1)))


def windows(xpad, out_hw, window, strides):
    """The ``(n, ho, wo, kh, kw, c)`` strided view of all receptive fields of ``xpad`` (no copy)."""
    n, _, _, c = xpad.shape
    s0, s1, s2, s3 = xpad.strides
    return as_strided(xpad, shape=(n, *out_hw, *window, c),
                      strides=(s0, s1 * strides[0], s2 * strides[1], s1, s2, s3),
                      writeable=False)


def image_blocks(n: int, bytes_per_image: int) -> list[tuple[int, slice]]:
    """The batch's blocks of images, numbered: ``[(0, slice(0, b)), (1, slice(b, 2b)), ...]``,
    ``b = batch_block(n, bytes_per_image)``."""
    block = batch_block(n, bytes_per_image)
    return [(number, slice(start, min(start + block, n)))
            for number, start in enumerate(range(0, n, block))]


class Im2colConvolution:
    """One lane's im2col convolution (any strides), block by block.

    ``cols(x)`` is a block's ``(b·ho·wo, kh·kw·c)`` im2col matrix of ``x`` (b, h, w, c)
    zero-padded by ``pads``: rows in (image, row, column) order, columns in the kernel's
    (kh, kw, c) order. Every block is written into the same scratch buffer (sized for
    ``images`` images), so use it before asking for the next one; each lane has its own.
    ``forward`` and ``gradients`` have the signatures of ``shifted.ShiftedRows``'s.
    """

    def __init__(self, images: int, in_hw, pads, window, strides, out_hw, cin: int,
                 dtype):
        h, w = in_hw
        (kh, kw), (ho, wo) = window, out_hw
        (top, bottom), (left, right) = pads
        self.pads, self.window, self.strides, self.out_hw = pads, window, strides, out_hw
        self.scratch = xp.empty((images * ho * wo, kh * kw * cin), dtype=dtype)
        self.padded = None
        if top or bottom or left or right:  # zero borders written once, interiors per block
            self.padded = xp.zeros((images, h + top + bottom, w + left + right, cin),
                                   dtype=dtype)
            self.interior = (slice(top, top + h), slice(left, left + w))
        self._dx = None  # the input gradient's scratch, made on first use

    def cols(self, x):
        b = x.shape[0]
        if self.padded is not None:
            self.padded[(slice(0, b), *self.interior)] = x
            x = self.padded[:b]
        (kh, kw), (ho, wo) = self.window, self.out_hw
        cols = self.scratch[:b * ho * wo]
        xp.copyto(cols.reshape(b, ho, wo, kh, kw, x.shape[3]),
                  windows(x, self.out_hw, self.window, self.strides))
        return cols

    def forward(self, x, kernel, z, bias=None) -> None:
        """``z`` (b, ho, wo, cout) = the convolution of the block ``x`` with ``kernel``
        (kh, kw, cin, cout), plus ``bias`` if given."""
        cout = kernel.shape[3]
        xp.matmul(self.cols(x), kernel.reshape(-1, cout), out=z.reshape(-1, cout))
        if bias is not None:
            z += bias

    def gradients(self, x, dz, kernel, dkernel, dx) -> None:
        """The block's kernel gradient into ``dkernel`` (kh·kw·cin, cout), and its input
        gradient into ``dx`` (b, h, w, cin) unless that is None, from ``dz`` (b, ho, wo,
        cout)."""
        rows = dz.reshape(-1, dz.shape[3])
        xp.matmul(self.cols(x).T, rows, out=dkernel)
        if dx is not None:
            if self._dx is None:
                self._dx = _InputGradient(kernel, self.pads, self.strides)
            self._dx.add_block(dz, dx)


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
    uses_lanes = True  # its blocks of images run in lanes (kconf.engine.lanes)

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
        pads = (padding_amounts(h, kh, self.strides[0], self.padding),
                padding_amounts(w, kw, self.strides[1], self.padding))
        dtype = xp.result_type(x, kernel)
        kernel_c = kernel.astype(dtype, copy=False)
        bias = self.weights["bias"] if self.use_bias else None
        # Bias and activation run on each block's rows right after its product, while they
        # are in the cache (activations with an in-place form; the others after the loop).
        blockwise = activations.has_in_place(self.activation)
        act = activations.in_place(self.activation)
        z = xp.empty((n, *out_hw, self.filters), dtype=dtype)
        blocks = image_blocks(n, out_hw[0] * out_hw[1] * kh * kw * cin * z.itemsize)
        block_images = blocks[0][1].stop

        def convolution():
            """A lane's convolution: on shifted rows where that pays, else im2col."""
            if shifted.applies(self.kernel_size, self.strides, cin, self.filters):
                return shifted.ShiftedRows(block_images, (h, w), pads, self.kernel_size, cin,
                                           self.filters, dtype)
            return Im2colConvolution(block_images, (h, w), pads, self.kernel_size,
                                     self.strides, out_hw, cin, dtype)

        block_backwards = [None] * len(blocks)  # per block: the backward of its activation

        def forward_blocks(lane, mine):
            conv = convolution()
            for number, images in mine:
                zb = z[images]
                conv.forward(x[images], kernel_c, zb, bias)
                if blockwise:
                    block_backwards[number] = act(zb)[1]  # in place: z becomes y

        lanes.run(forward_blocks, blocks)
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

            def backward_blocks(lane, mine):
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

            lanes.run(backward_blocks, blocks)
            self.grads["kernel"] += dkernels.sum(axis=0).reshape(kernel.shape)
            if self.use_bias:
                self.grads["bias"] += dbiases.sum(axis=0)
            return dx

        return y, backward


class _InputGradient:
    """One lane's writer of a convolution's dx, a block of images at a time (``add_block``).

    Each kernel offset (i, j) adds ``dz @ kernel[i, j].T`` into its strided slice of the
    (padded) dx, so overlapping windows add up; the first offset sets its slice, so only the
    rest of dx needs zeros. These kh·kw small products beat one ``dz @ kernel.T`` followed by
    col2im (whose adds read rows strided by kh·kw·cin) and dx as a convolution of the padded
    dz with the flipped kernel (an im2col of dz as large as the forward one); per block, the
    products and the adds stay in the cache.
    """

    def __init__(self, kernel, pads, strides):
        self.kernel, self.pads, self.strides = kernel, pads, strides
        self._product = None  # scratch for one offset's product, and for the padded dx
        self._padded = None

    def add_block(self, dz, dx) -> None:
        """Write ``dx`` (b, h, w, cin) of a block of images from their ``dz`` (b, ho, wo,
        cout)."""
        b, ho, wo, cout = dz.shape
        _, h, w, _ = dx.shape
        kh, kw, cin, _ = self.kernel.shape
        sh, sw = self.strides
        (top, bottom), (left, right) = self.pads
        padded = top or bottom or left or right
        if self._product is None or self._product.shape[0] < b * ho * wo:
            self._product = xp.empty((b * ho * wo, cin), dtype=self.kernel.dtype)
            if padded:
                self._padded = xp.empty((b, h + top + bottom, w + left + right, cin),
                                        dtype=self.kernel.dtype)
        dxp = self._padded[:b] if padded else dx
        dzrows = dz.reshape(-1, cout)
        prod = self._product[:b * ho * wo]
        for i in range(kh):
            for j in range(kw):
                xp.matmul(dzrows, self.kernel[i, j].T, out=prod)
                part = prod.reshape(b, ho, wo, cin)
                target = dxp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]
                if i or j:
                    target += part
                    continue
                if sh == sw == 1:  # the first offset sets its ho x wo corner; zero the rest
                    dxp[:, ho:] = 0
                    dxp[:, :ho, wo:] = 0
                else:
                    dxp.fill(0)
                target[...] = part
        if padded:
            dx[...] = dxp[:, top:top + h, left:left + w]
