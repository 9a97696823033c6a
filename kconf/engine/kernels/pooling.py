"""Max and average pooling over any number of spatial axes (see ``kconf.engine.kernels``)."""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.kernels.geometry import (
    interior,
    pad,
    paddings,
    window_offsets,
    window_slice,
)


# --- max pooling -------------------------------------------------------------------------------

def max_pool(ops, x, window, strides, padding: str, out_shape):
    """Max pooling of ``x`` (batch, *spatial, channels): ``(y, backward)``.

    Forward and backward loop only over the offsets inside a window; each iteration works on
    a strided slice of the whole batch. Backward finds, offset by offset in row-major order,
    the first cell equal to its window's maximum and routes the gradient there (ties go to
    the first; none where the maximum is NaN).

    When the windows tile the input (strides == window, 'valid') this is ``_tiled_max_pool``,
    run a chunk of the batch per worker of ``ops``. Otherwise ('same' pads with -inf, so
    padded cells never win; overlapping windows) backward adds each offset's share into a
    zeroed padded dx, so overlaps accumulate.

    Args:
        ops: the ``Ops`` whose workers run the tiled case.
        x: the input.
        window, strides: one entry per spatial axis.
        padding: ``"valid"`` or ``"same"``.
        out_shape: the output's spatial lengths (``output_shape``).

    Returns:
        ``(y, backward)``: y (batch, *out_shape, channels); ``backward(dy)`` returns dx.
    """
    if padding == "valid" and tuple(strides) == tuple(window):
        return _tiled_max_pool(ops, x, out_shape, window)
    spatial = x.shape[1:-1]
    pads = paddings(spatial, window, strides, padding)
    xpad = pad(x, pads, value=-xp.inf)
    offsets = window_offsets(window)
    y = window_slice(xpad, offsets[0], strides, out_shape).copy()
    for offset in offsets[1:]:
        xp.maximum(y, window_slice(xpad, offset, strides, out_shape), out=y)

    def backward(dy):
        dxpad = xp.zeros(xpad.shape, dtype=dy.dtype)
        candidates = (window_slice(xpad, offset, strides, out_shape) for offset in offsets)
        for offset, first in zip(offsets, _first_maxima(candidates, y)):
            window_slice(dxpad, offset, strides, out_shape)[...] += dy * first
        return dxpad[(slice(None), *interior(spatial, pads))]

    return y, backward


def _tiled_max_pool(ops, x, out_shape, window):
    """Max pooling when the windows tile x (cropped to out·window along each axis):
    ``(y, backward)``.

    The input is viewed as ``(n, o1, p1, o2, p2, ..., c)`` (no copy): forward takes the
    maximum over the p1 slices (whose contiguous inner part is a whole output row), then over
    p2, and so on; backward compares every cell with its window's maximum in one broadcast
    pass, keeps the first True per window (offset by offset, on the boolean array), and
    writes dx as dy times that mask in one more pass, with no adds. Forward and backward
    each run as one chunk of the batch per worker.
    """
    n, *spatial, c = x.shape
    d = len(window)
    cropped_shape = tuple(o * p for o, p in zip(out_shape, window))
    crop = (slice(None), *(slice(0, length) for length in cropped_shape))
    split = (n, *(size for pair in zip(out_shape, window) for size in pair), c)
    tiles = x[crop].reshape(split)  # a view: axes only split
    y = xp.empty((n, *out_shape, c), dtype=x.dtype)
    offsets = window_offsets(window)
    # y's windows broadcast against the tiles: a new axis where each window axis is
    expand = (slice(None), *(index for _ in range(d) for index in (slice(None), None)),
              slice(None))

    def at(axis: int, i: int):
        """The index of position ``i`` along ``axis``."""
        return (slice(None),) * axis + (i,)

    def forward_chunks(worker, mine):
        for images in mine:
            part = tiles[images]
            for k in range(d):  # the window axes, reduced one by one: p_k is at k + 2 now
                axis = k + 2
                if k == d - 1:
                    reduced = y[images]
                    reduced[...] = part[at(axis, 0)]
                else:
                    reduced = part[at(axis, 0)].copy()
                for i in range(1, window[k]):
                    xp.maximum(reduced, part[at(axis, i)], out=reduced)
                part = reduced

    ops.parallel(forward_chunks, ops.chunks(n))

    def backward(dy):
        cropped = cropped_shape != tuple(spatial)
        dx = xp.empty(x.shape, dtype=dy.dtype)
        dtiles = dx[crop].reshape(split)

        def backward_chunks(worker, mine):
            for images in mine:
                if cropped:
                    dx[images] = 0
                # every cell equal to its window's maximum, in one pass; then only the first
                # in each window (row-major) keeps its True; then dy where True, 0 elsewhere
                equal = xp.equal(tiles[images], y[images][expand])
                unrouted = None  # windows whose first maximum is not found yet
                for number, offset in enumerate(offsets):
                    first = equal[(slice(None), *(index for i in offset
                                                  for index in (slice(None), i)))]
                    if unrouted is None:
                        unrouted = ~first
                        continue
                    first &= unrouted
                    if number < len(offsets) - 1:
                        unrouted ^= first
                xp.multiply(dy[images][expand], equal, out=dtiles[images])

        ops.parallel(backward_chunks, ops.chunks(n))
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


# --- average pooling ---------------------------------------------------------------------------

def average_pool(x, window, strides, padding: str, out_shape):
    """Average pooling of ``x`` (batch, *spatial, channels): ``(y, backward)``.

    Each output is the mean of the cells of its window that lie inside the input: with
    ``same`` padding the padded cells are neither added nor counted (Keras's rule), so a
    border window divides by fewer cells. Forward and backward loop only over the offsets
    inside a window, each adding a strided slice of the whole batch; backward spreads
    ``dy / count`` over every cell of the window, overlapping windows adding up.

    Args:
        x: the input.
        window, strides: one entry per spatial axis.
        padding: ``"valid"`` or ``"same"``.
        out_shape: the output's spatial lengths (``output_shape``).

    Returns:
        ``(y, backward)``: y (batch, *out_shape, channels); ``backward(dy)`` returns dx.
    """
    spatial = x.shape[1:-1]
    pads = paddings(spatial, window, strides, padding)
    xpad = pad(x, pads)
    offsets = window_offsets(window)
    y = window_slice(xpad, offsets[0], strides, out_shape).copy()
    for offset in offsets[1:]:
        y += window_slice(xpad, offset, strides, out_shape)
    inverse = (1.0 / _cell_counts(spatial, pads, window, strides, out_shape)).astype(x.dtype)
    y *= inverse

    def backward(dy):
        share = dy * inverse
        dxpad = xp.zeros(xpad.shape, dtype=dy.dtype)
        for offset in offsets:
            window_slice(dxpad, offset, strides, out_shape)[...] += share
        return dxpad[(slice(None), *interior(spatial, pads))]

    return y, backward


def _cell_counts(spatial, pads, window, strides, out_shape):
    """How many input cells each window holds, as a (1, *out_shape, 1) array: per axis, the
    window's cells that fall between the padding, multiplied over the axes."""
    counts = xp.ones((1,) * (len(spatial) + 2))
    for axis, (length, (before, _), size, stride, out) in enumerate(
            zip(spatial, pads, window, strides, out_shape)):
        starts = xp.arange(out) * stride - before  # each window's first cell, input indices
        inside = xp.minimum(starts + size, length) - xp.maximum(starts, 0)
        counts = counts * inside.reshape((1,) * (axis + 1) + (out,) + (1,) * (len(spatial) - axis))
    return counts

