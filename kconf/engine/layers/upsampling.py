"""Upsampling (channels-last): UpSampling1D repeats each step, UpSampling2D each pixel
(``nearest``) or interpolates (``bilinear``).

Bilinear is Keras 3's resize (``keras.ops.image.resize``, as JAX's ``jax.image.resize``):
half-pixel centres, so output row ``i`` samples the input at ``(i + 0.5) / size - 0.5``,
between its two nearest rows, clamped at the borders (no antialiasing when enlarging). It
is separable: along each axis, one ``(out, in)`` interpolation matrix multiplies the input,
and backward multiplies dy by its transpose.
"""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import IntPair, PositiveInt
from kconf.args.layer import LayerArgs
from kconf.args.shape_fields import Interpolation
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, require_rank
from kconf.engine.layers.conv2d import normalize_pair


class UpSampling1DArgs(LayerArgs):
    """``size=2``: how many times each step is repeated."""

    size: PositiveInt = 2


class UpSampling1D(Layer):
    """Keras ``UpSampling1D``: ``(batch, steps, features) -> (batch, steps·size, features)``,
    each step repeated ``size`` times.

    Args:
        size: the repetitions of each step.
    """

    def __init__(self, size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, 3, "sequences (batch, steps, features)")
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else steps * self.size, input_shape[2])

    def forward(self, x, training=False, rng=None):
        n, steps, features = x.shape
        y = xp.repeat(x, self.size, axis=1)

        def backward(dy):
            return dy.reshape(n, steps, self.size, features).sum(axis=2)

        return y, backward


class UpSampling2DArgs(LayerArgs):
    """``size=(2, 2), interpolation='nearest'`` (or ``bilinear``)."""

    keras_channels_last: ClassVar[bool] = True

    size: IntPair = (2, 2)
    interpolation: Interpolation = "nearest"


class UpSampling2D(Layer):
    """Keras ``UpSampling2D``: ``(batch, h, w, c) -> (batch, h·sh, w·sw, c)``.

    Args:
        size: int or (sh, sw), the factors of height and width.
        interpolation: ``nearest`` (each pixel repeated) or ``bilinear`` (Keras 3's resize).
    """

    def __init__(self, size=(2, 2), interpolation: str = "nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = normalize_pair(size, "size")
        self.interpolation = str(interpolation).lower()
        if self.interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got "
                             f"{interpolation!r}")

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, 4, "images (batch, height, width, channels)")
        h, w = (None if d is None else d * s for d, s in zip(input_shape[1:3], self.size))
        return (input_shape[0], h, w, input_shape[3])

    def forward(self, x, training=False, rng=None):
        if self.interpolation == "nearest":
            return _nearest(x, self.size)
        return _bilinear(x, self.size)


def _nearest(x, size):
    """Each pixel repeated sh × sw times: ``(y, backward)``."""
    n, h, w, c = x.shape
    sh, sw = size
    y = xp.repeat(xp.repeat(x, sh, axis=1), sw, axis=2)

    def backward(dy):
        return dy.reshape(n, h, sh, w, sw, c).sum(axis=(2, 4))

    return y, backward


def interpolation_matrix(length: int, size: int, dtype):
    """The ``(length·size, length)`` matrix of bilinear (half-pixel, clamped) upsampling of one
    axis by ``size``: row ``i`` weighs the two input cells around ``(i + 0.5) / size - 0.5``."""
    out = length * size
    position = (xp.arange(out) + 0.5) / size - 0.5
    low = xp.floor(position)
    frac = position - low
    low = low.astype(int)
    matrix = xp.zeros((out, length))
    rows = xp.arange(out)
    xp.add.at(matrix, (rows, xp.clip(low, 0, length - 1)), 1.0 - frac)
    xp.add.at(matrix, (rows, xp.clip(low + 1, 0, length - 1)), frac)
    return matrix.astype(dtype)


def _along(matrix, x, axis: int):
    """``matrix`` (out, in) applied along ``axis`` of ``x``."""
    return xp.ascontiguousarray(xp.moveaxis(xp.tensordot(matrix, x, axes=([1], [axis])), 0, axis))


def _bilinear(x, size):
    """Bilinear upsampling as two interpolation matrices, one per axis: ``(y, backward)``."""
    _, h, w, _ = x.shape
    mh = interpolation_matrix(h, size[0], x.dtype)
    mw = interpolation_matrix(w, size[1], x.dtype)
    y = _along(mw, _along(mh, x, 1), 2)

    def backward(dy):
        return _along(mh.T, _along(mw.T, dy, 2), 1)

    return y, backward
