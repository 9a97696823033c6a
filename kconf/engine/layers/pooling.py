"""MaxPooling2D: the maximum of each (ph, pw) window, channels-last.

Forward and backward loop only over the ph·pw offsets inside a window; each iteration works
on a strided slice of the whole batch. 'same' pads with -inf, so padded cells never win.
Forward keeps only the maxima (an elementwise ``maximum`` per offset); backward finds, offset
by offset in row-major order, the first cell equal to its window's maximum and routes the
gradient there, adding, so overlapping windows (strides < pool_size) accumulate correctly.
"""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer
from kconf.engine.layers.conv2d import (
    normalize_pair,
    normalize_padding,
    pad_spatial,
    padding_amounts,
    spatial_output_shape,
)

_WHAT = "images (batch, height, width, channels)"


class MaxPooling2D(Layer):
    """2-D max pooling (Keras ``MaxPooling2D``, channels_last).

    Args:
        pool_size: int or (ph, pw).
        strides: int, pair, or None (= pool_size).
        padding: 'valid' (windows that fit; sizes floor) or 'same' (output ceil(in/stride)).
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_pair(strides, "strides")
        self.padding = normalize_padding(padding)

    def compute_output_shape(self, input_shape):
        ho, wo = spatial_output_shape(self, input_shape, self.pool_size, self.strides,
                                      self.padding, _WHAT)
        return (input_shape[0], ho, wo, input_shape[3])

    def forward(self, x, training=False, rng=None):
        ph, pw = self.pool_size
        sh, sw = self.strides
        n, h, w, c = x.shape
        ho, wo = spatial_output_shape(self, x.shape, self.pool_size, self.strides,
                                      self.padding, _WHAT)
        pads = (padding_amounts(h, ph, sh, self.padding), padding_amounts(w, pw, sw, self.padding))
        xpad = pad_spatial(x, pads, value=-xp.inf)

        def window(a, i, j):
            """The (n, ho, wo, c) strided slice of ``a`` at window offset (i, j)."""
            return a[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]

        offsets = [(i, j) for i in range(ph) for j in range(pw)]
        y = window(xpad, 0, 0).copy()
        for i, j in offsets[1:]:
            xp.maximum(y, window(xpad, i, j), out=y)

        def backward(dy):
            dxpad = xp.zeros(xpad.shape, dtype=dy.dtype)
            unrouted = xp.ones(y.shape, dtype=bool)  # windows whose maximum is not found yet
            for i, j in offsets:
                first = (window(xpad, i, j) == y) & unrouted
                unrouted &= ~first
                window(dxpad, i, j)[...] += dy * first
            (top, _), (left, _) = pads
            return dxpad[:, top:top + h, left:left + w, :]

        return y, backward
