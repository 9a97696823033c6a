"""Per-channel work on channels-last arrays seen as (rows, channels) matrices: sums down the
columns (``column_sums``) and elementwise passes with one number per channel on wide lines
(``lines``).

Why lines. NumPy broadcasts a per-channel vector over a C-contiguous (rows, c) matrix with an
inner loop of c numbers: with 16 channels (32768 pixels) ``rows * vector`` takes about 3.5
times as long as the same pass over (512, 1024) with the vector tiled 64 times, whose inner
loop is 1024 long. ``lines(n, c)`` is that number of rows per line; the arrays are reshaped
(no copy), the vectors tiled (``xp.tile``, a few KB).
"""
from __future__ import annotations

import math

from kconf.engine.backend import xp

#: Rows per float32 partial sum of ``column_sums`` (XLA's CPU reductions are trees of
#: windows of 32).
SUM_ROWS = 32
#: The most numbers on a line of ``lines`` (about 1024: longer lines gained nothing, and
#: some (4096) were several times slower, in measurements on the 2-core EPYC).
LINE = 1024


def column_sums(rows):
    """The sums down the columns of a (n, c) matrix, rounded about as once: float32 partial
    sums of ``SUM_ROWS`` rows each (one matrix-vector product with ones over the whole
    matrix), combined in float64.

    A single running float32 sum over n rows (a product with a vector of ones, NumPy's sum
    down a column) rounds about n times for every value: on BatchNormalization's 32768
    pixels of 16 channels with a mean of 10, 1.4e-6 of the sum, against 5e-8 here (as a
    float64 sum, rounded to float32) and 1e-7 for XLA's tree of windows of 32 (Keras on
    JAX). The partial sums take rows ``n // SUM_ROWS`` apart (row j of the reshape holds
    every partial's j-th row), so the product reads the matrix once, in order; the rows left
    over are added in float64.

    Args:
        rows: a C-contiguous (n, c) matrix.

    Returns:
        The c sums, in ``rows``'s dtype.
    """
    n, c = rows.shape
    blocks = n // SUM_ROWS
    head = blocks * SUM_ROWS
    total = rows[head:].sum(axis=0, dtype=xp.float64)
    if blocks:
        partial = xp.ones(SUM_ROWS, dtype=rows.dtype) @ rows[:head].reshape(SUM_ROWS, -1)
        total += xp.ones(blocks) @ partial.reshape(blocks, c).astype(xp.float64)
    return total.astype(rows.dtype)


def lines(n: int, c: int) -> int:
    """Rows per line for per-channel elementwise passes over n rows of c channels: the
    largest power of two that divides n with at most ``LINE`` numbers on a line (1 when n is
    odd: the rows themselves).

    A (n, c) array ``a`` is then ``a.reshape(-1, k·c)`` and a per-channel vector ``v``
    ``xp.tile(v, k)``.
    """
    return math.gcd(n, 1 << max(0, (LINE // max(c, 1)).bit_length() - 1))
