"""Conv2D: channels-last 2-D cross-correlation, ``y = activation(conv(x, kernel) + bias)``.

Forward is im2col: a strided view of the (padded) input gathers every receptive field into
one ``(N·Ho·Wo, kh·kw·cin)`` matrix, multiplied by the kernel reshaped to
``(kh·kw·cin, cout)``. Backward: ``dkernel = cols.T @ dy``; ``dx`` scatters back with one
vectorized slice-add per kernel offset (kh·kw iterations), so overlapping windows add up.

The padding helpers here are shared with the pooling layers (TensorFlow's rule for 'same').
"""
from __future__ import annotations

from numpy.lib.stride_tricks import as_strided

from kconf.engine import activations
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec, format_shape, require_rank
from kconf.errors import ShapeError


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
        sh, sw = self.strides
        n, h, w, cin = x.shape
        ho, wo = spatial_output_shape(self, x.shape, self.kernel_size, self.strides,
                                      self.padding, "images (batch, height, width, channels)")
        pads = (padding_amounts(h, kh, sh, self.padding), padding_amounts(w, kw, sw, self.padding))
        xpad = pad_spatial(x, pads)
        s0, s1, s2, s3 = xpad.strides
        windows = as_strided(xpad, shape=(n, ho, wo, kh, kw, cin),
                             strides=(s0, s1 * sh, s2 * sw, s1, s2, s3), writeable=False)
        cols = windows.reshape(n * ho * wo, kh * kw * cin)  # copies: one row per output pixel
        kmat = kernel.reshape(kh * kw * cin, self.filters)
        z = (cols @ kmat).reshape(n, ho, wo, self.filters)
        if self.use_bias:
            z += self.weights["bias"]
        y, act_backward = self.activation(z)

        def backward(dy):
            dz = act_backward(dy).reshape(n * ho * wo, self.filters)
            self.grads["kernel"] += (cols.T @ dz).reshape(kernel.shape)
            if self.use_bias:
                self.grads["bias"] += dz.sum(axis=0)
            dxpad = xp.zeros(xpad.shape, dtype=xp.result_type(dz, kernel))
            for i in range(kh):
                for j in range(kw):
                    dxpad[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :] += (
                        (dz @ kernel[i, j].T).reshape(n, ho, wo, cin)
                    )
            (top, _), (left, _) = pads
            return dxpad[:, top:top + h, left:left + w, :]

        return y, backward
