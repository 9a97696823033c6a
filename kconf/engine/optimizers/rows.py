"""Row-sparse gradients: ``RowGrad`` (the gradient of a table of which a step read a few rows,
an Embedding's) and ``coalesce_rows``, which sums the rows of repeated indices. How the
optimizers apply one is in ``kconf.engine.optimizers.base``."""
from __future__ import annotations

import math
from typing import Any, Sequence

from kconf.engine.backend import xp
from kconf.engine.ops import current_ops

# Once at most this many indices still have rows left to add, each is summed on its own.
_FEW_GROUPS = 32
# Row copies of at least this many numbers (a sparse step's gathers and scatters) are shared
# out to the workers.
_COPY_BLOCK = 1 << 16


class RowGrad:
    """The gradient of a (rows, ...) weight of which a step touched only some rows.

    Backward passes ``add`` parts (indices with repeats, in any order, and their rows),
    copied into the RowGrad's own storage, so it never aliases the caller's buffers. The
    first read (``coalesce``, ``indices``, ``values``) merges them into one coalesced part
    (sorted unique indices, the rows of an index summed), once per step; a layer called
    twice just adds two parts. Coalescing waits for that read so that the optimizer can
    coalesce a step's RowGrads side by side on the ops' workers (``coalesce_all``).
    ``clear()`` empties it without touching a (rows × dim) array, and keeps the storage for
    the next step (no fresh pages to fault in each step).

    Where an array is expected, ``to_dense()`` — or ``numpy.asarray(grad)`` — gives the
    dense gradient (zeros in untouched rows): finite-difference checks use that view.

    Args:
        shape: the weight's shape.
        dtype: the weight's dtype (values are kept in it).
    """

    __slots__ = ("shape", "dtype", "_parts", "_coalesced", "_store", "_used")

    def __init__(self, shape: Sequence[int], dtype):
        self.shape = tuple(shape)
        self.dtype = xp.dtype(dtype)
        self._parts: list[tuple[Any, Any]] = []
        self._coalesced = True  # whether ``_parts`` is one coalesced part (or none)
        self._store = xp.empty(0, self.dtype)  # flat; parts' values are consecutive views
        self._used = 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def add(self, indices, values) -> None:
        """Add ``values[k]`` into row ``indices[k]`` for every k (repeated indices add up).

        Args:
            indices: integer row indices in ``[0, shape[0])``, any shape (flattened).
            values: one row per index: shape ``(indices.size, *shape[1:])`` or anything that
                reshapes to it.

        Raises:
            IndexError: an index outside ``[0, shape[0])``.
        """
        indices = xp.array(xp.asarray(indices).reshape(-1))  # a copy
        values = xp.asarray(values).reshape(indices.size, *self.shape[1:])
        if indices.size:
            low, high = indices.min(), indices.max()
            if low < 0 or high >= self.shape[0]:
                bad = low if low < 0 else high
                raise IndexError(f"row index {int(bad)} is out of range [0, {self.shape[0]})")
        rows = self._reserve(values.size).reshape(values.shape)
        rows[...] = values
        self._used += rows.size
        self._parts.append((indices, rows))
        self._coalesced = False

    def _reserve(self, size: int):
        """``size`` free elements of the storage (a bigger storage once it is too small; the
        old one lives on in the parts that use it)."""
        if self._used + size > self._store.size:
            self._store = xp.empty(max(size, 2 * self._store.size), self.dtype)
            self._used = 0
        return self._store[self._used:self._used + size]

    def clear(self) -> None:
        """Back to zero: drops the parts, keeps the storage (values read before are void)."""
        self._parts.clear()
        self._coalesced = True
        self._used = 0

    def coalesce(self) -> tuple[Any, Any]:
        """``(indices, values)``: sorted unique row indices and their summed rows (views of
        the stored part, valid until ``clear``; the parts are merged into one the first
        time)."""
        parts = self._parts
        if not parts:
            return (xp.zeros(0, dtype=xp.intp), xp.zeros((0, *self.shape[1:]), self.dtype))
        if not self._coalesced:
            indices, values = parts[0] if len(parts) == 1 else (
                xp.concatenate([i for i, _ in parts]), xp.concatenate([v for _, v in parts]))
            unique, sums = coalesce_rows(indices, values, self.dtype,
                                         out=self._reserve(values.size))
            if xp.may_share_memory(sums, self._store):
                self._used += sums.size
            parts[:] = [(unique, sums)]
            self._coalesced = True
        return parts[0]

    @property
    def indices(self):
        """The touched rows: sorted, unique."""
        return self.coalesce()[0]

    @property
    def values(self):
        """The gradient of each touched row, ``(len(indices), *shape[1:])``."""
        return self.coalesce()[1]

    def to_dense(self, dtype=None):
        """The dense gradient: a new ``shape`` array, zeros in untouched rows."""
        indices, values = self.coalesce()
        dense = xp.zeros(self.shape, dtype or self.dtype)
        dense[indices] = values
        return dense

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("a RowGrad has no dense array to share; np.asarray makes one")
        return self.to_dense(dtype)

    def __repr__(self) -> str:
        return (f"RowGrad(shape={self.shape}, dtype={self.dtype}, "
                f"parts={len(self._parts)})")


def coalesce_all(grads: Sequence[Any]) -> None:
    """Coalesce the ``RowGrad`` among ``grads`` that are not yet, side by side on the
    current ops' workers (each its own)."""
    pending = [g for g in grads if isinstance(g, RowGrad) and not g._coalesced]
    if len(pending) > 1:
        current_ops().parallel(lambda worker, mine: [g.coalesce() for g in mine], pending)
    elif pending:
        pending[0].coalesce()


def copy_rows(arrays: Sequence[Any], rows: Sequence[Any], indices, gather: bool) -> None:
    """Rows ``indices`` (valid) of each of ``arrays`` copied into the matching ``rows``
    (``gather``) or back from them; large copies a part of the indices per block, on the
    current ops' workers."""
    ops = current_ops()
    large = bool(rows) and rows[0].size >= _COPY_BLOCK
    spans = ops.chunks(indices.size) if large else [slice(None)]
    parts = [(array, part, span) for array, part in zip(arrays, rows) for span in spans]

    def copy_parts(worker, mine):
        for array, part, span in mine:
            if gather:
                xp.take(array, indices[span], axis=0, out=part[span], mode="clip")  # in range
            else:
                array[indices[span]] = part[span]

    if large:
        ops.parallel(copy_parts, parts)
    else:
        copy_parts(0, parts)


def coalesce_rows(indices, values, dtype=None, out=None) -> tuple[Any, Any]:
    """Sorted unique ``indices`` and, for each, the sum of its rows of ``values``.

    Vectorized: the indices are sorted once (stably; a radix sort where they fit in 16
    bits). Where the indices occur about equally often (a position embedding's: once per
    sample), each one's rows are laid side by side (padded with zero rows to the longest
    run) and summed along that axis; otherwise the first occurrence of every index is
    gathered, then round after round the k-th occurrences are added (no index repeats
    inside a round, so a fancy-indexed ``+=`` is exact), and once few indices still have
    rows left, each is summed on its own. Either way the rows of one index add in their
    original order, one after the other.

    Args:
        indices: 1-D integer array.
        values: ``(indices.size, ...)``.
        dtype: the result's dtype (default: ``values``').
        out: optional flat array of ``dtype`` with room for ``values.size`` elements, that
            the sums are written to (from its start); a new array otherwise.

    Returns:
        ``(unique_indices, sums)`` with ``sums[j]`` = Σ ``values[k]`` over k where
        ``indices[k] == unique_indices[j]`` (a view of ``out`` when given).
    """
    dtype = values.dtype if dtype is None else xp.dtype(dtype)
    if indices.size == 0:
        return indices.copy(), xp.zeros((0, *values.shape[1:]), dtype)
    order = xp.argsort(_sort_keys(indices), kind="stable")
    sorted_idx = indices[order]
    first = xp.empty(indices.size, dtype=bool)
    first[0] = True
    xp.not_equal(sorted_idx[1:], sorted_idx[:-1], out=first[1:])
    starts = xp.flatnonzero(first)  # where each index's run begins in ``order``
    shape = (starts.size, *values.shape[1:])
    sums = xp.empty(shape, dtype) if out is None else out[:math.prod(shape)].reshape(shape)
    counts = xp.diff(xp.append(starts, indices.size))
    longest = int(counts.max())
    if starts.size * longest == indices.size:  # every index equally often (positions)
        runs = xp.take(values, order, axis=0).reshape(starts.size, longest, *shape[1:])
        xp.add.reduce(runs, axis=1, dtype=dtype, out=sums)  # along each run, in order
        return sorted_idx[first], sums
    if starts.size * longest <= 2 * indices.size:  # runs of similar lengths: side by side
        # (longest, unique, ...): the first rows of all indices, then the second...; a run
        # shorter than the longest is padded with zero rows (adding 0 changes nothing)
        runs = xp.zeros((longest * starts.size, *shape[1:]), dtype=values.dtype)
        run = xp.repeat(xp.arange(starts.size), counts)
        runs[(xp.arange(indices.size) - starts[run]) * starts.size + run] = values[order]
        xp.add.reduce(runs.reshape(longest, *shape), axis=0, dtype=dtype, out=sums)  # in order
        return sorted_idx[first], sums
    if values.dtype == dtype:
        xp.take(values, order[starts], axis=0, out=sums, mode="clip")  # valid: no clipping
    else:
        sums[...] = values[order[starts]]
    alive = counts > 1
    starts, counts, rows = starts[alive], counts[alive], xp.flatnonzero(alive)
    k = 1
    while starts.size > _FEW_GROUPS:
        sums[rows] += values[order[starts + k]]  # the k-th occurrence of each index
        k += 1
        alive = counts > k
        starts, counts, rows = starts[alive], counts[alive], rows[alive]
    for start, count, row in zip(starts.tolist(), counts.tolist(), rows.tolist()):
        sums[row] += values[order[start + k:start + count]].sum(axis=0)
    return sorted_idx[first], sums


def _sort_keys(indices):
    """``indices`` as unsigned 16-bit numbers where they all fit (NumPy's stable sort of
    those is a radix sort, several times faster than its merge sort of wider ones), else
    as they are; the order they sort in is the same."""
    if (indices.dtype.itemsize > 2 and xp.issubdtype(indices.dtype, xp.integer)
            and indices.size > 256 and indices.min() >= 0 and indices.max() < 1 << 16):
        return indices.astype(xp.uint16)
    return indices
