"""MaxPooling2D: the maximum of each (ph, pw) window, channels-last.

Forward and backward loop only over the offsets inside a window; each iteration works on a
strided slice of the whole batch. Backward finds, offset by offset in row-major order, the
first cell equal to its window's maximum and routes the gradient there (ties go to the first).

When the windows tile the input (strides == pool_size, 'valid') the input is viewed as
``(n, ho, ph, wo, pw, c)``: forward takes the maximum over the ph rows (slices whose
contiguous inner part is a whole output row) and then over the pw columns; backward compares
every cell with its window's maximum in one broadcast pass, keeps the first True per window
(offset by offset, on the boolean array), and writes dx as dy times that mask in one more
pass, with no adds. Both run a chunk of the batch per lane. Otherwise ('same' pads with
-inf, so padded cells never win; overlapping windows) backward adds each offset's share into
a zeroed padded dx, so overlaps accumulate.
"""
from __future__ import annotations

from typing import Any, ClassVar

from kconf.args.fields import IntPair
from kconf.args.layer import LayerArgs, Padding
from kconf.engine import lanes
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


class MaxPooling2DArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True
    keras_default_from: ClassVar[dict[str, str]] = {"strides": "pool_size"}

    pool_size: IntPair = (2, 2)
    strides: IntPair | None = None
    padding: Padding = "valid"

    def layer_kwargs(self) -> dict[str, Any]:
        """As ``LayerArgs.layer_kwargs``, with ``strides`` defaulting to ``pool_size``."""
        out = super().layer_kwargs()
        if out["strides"] is None:
            out["strides"] = out["pool_size"]
        return out


class MaxPooling2D(Layer):
    """2-D max pooling (Keras ``MaxPooling2D``, channels_last).

    Args:
        pool_size: int or (ph, pw).
        strides: int, pair, or None (= pool_size).
        padding: 'valid' (windows that fit; sizes floor) or 'same' (output ceil(in/stride)).
    """

    uses_lanes = True  # the tiled case runs a chunk of the batch per lane

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
        if self.padding == "valid" and self.strides == self.pool_size:
            return _tiled_max_pool(x, ho, wo, ph, pw)
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
            for (i, j), first in zip(offsets, _first_maxima(
                    (window(xpad, i, j) for i, j in offsets), y)):
                window(dxpad, i, j)[...] += dy * first
            (top, _), (left, _) = pads
            return dxpad[:, top:top + h, left:left + w, :]

        return y, backward


def _tiled_max_pool(x, ho, wo, ph, pw):
    """Max pooling when the (ph, pw) windows tile x (cropped to ho·ph × wo·pw): (y, backward).

    Forward and backward each run as one chunk of the batch per lane (kconf.engine.lanes)."""
    n, h, w, c = x.shape
    tiles = x[:, :ho * ph, :wo * pw].reshape(n, ho, ph, wo, pw, c)  # a view: axes only split
    y = xp.empty((n, ho, wo, c), dtype=x.dtype)
    offsets = [(i, j) for i in range(ph) for j in range(pw)]

    def forward_chunks(lane, mine):
        for images in mine:
            part = tiles[images]
            rows = part[:, :, 0].copy()  # (b, ho, wo, pw, c): the maximum over the ph rows
            for i in range(1, ph):
                xp.maximum(rows, part[:, :, i], out=rows)
            out = y[images]
            out[...] = rows[:, :, :, 0]
            for j in range(1, pw):
                xp.maximum(out, rows[:, :, :, j], out=out)

    lanes.run(forward_chunks, lanes.chunks(n))

    def backward(dy):
        cropped = ho * ph != h or wo * pw != w
        dx = xp.empty(x.shape, dtype=dy.dtype)
        dtiles = dx[:, :ho * ph, :wo * pw].reshape(n, ho, ph, wo, pw, c)

        def backward_chunks(lane, mine):
            for images in mine:
                if cropped:
                    dx[images] = 0
                # every cell equal to its window's maximum, in one pass; then only the first
                # in each window (row-major) keeps its True; then dy where True, 0 elsewhere
                equal = xp.equal(tiles[images], y[images][:, :, None, :, None, :])
                unrouted = None  # windows whose first maximum is not found yet
                for number, (i, j) in enumerate(offsets):
                    first = equal[:, :, i, :, j]
                    if unrouted is None:
                        unrouted = ~first
                        continue
                    first &= unrouted
                    if number < len(offsets) - 1:
                        unrouted ^= first
                xp.multiply(dy[images][:, :, None, :, None, :], equal, out=dtiles[images])

        lanes.run(backward_chunks, lanes.chunks(n))
        return dx

    return y, backward


def _first_maxima(candidates, y):
    """For each candidate slice in order, the bool mask of the cells where it is the first one
    equal to ``y`` (each window's maximum): one True per window across all the slices (none
    where the maximum is NaN)."""
    unrouted = None  # windows whose maximum is not found yet
    for candidate in candidates:
        equal = candidate == y
        if unrouted is None:
            first, unrouted = equal, ~equal
        else:
            first = equal & unrouted
            unrouted &= ~equal
        yield first
