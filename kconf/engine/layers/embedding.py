"""Embedding: integer indices (N, ...) → rows of ``embeddings`` (input_dim, output_dim).

Backward adds each output gradient into the row it was read from; repeated indices add up.
The scatter is vectorized by sorting the indices once and adding, round after round, the
k-th occurrence of every index (no index repeats inside a round, so a plain fancy-indexed
``+=`` is exact); the few indices still left after most groups are exhausted are summed one
group each. That is several times faster than ``numpy.add.at`` on a (10000, 512) table.
"""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec, format_shape
from kconf.errors import ShapeError

# Once at most this many indices still have rows left to add, each is summed on its own.
_FEW_GROUPS = 32


class Embedding(Layer):
    """Turn integer indices into dense vectors, as ``keras.layers.Embedding``.

    Args:
        input_dim: size of the vocabulary (indices run over [0, input_dim)).
        output_dim: size of each vector.
        embeddings_initializer: initializer of ``embeddings`` (Keras: uniform in ±0.05).
        input_length: Keras 2's fixed sequence length; fills in an unknown second axis of the
            input shape and must agree with a known one.
        mask_zero: not supported (kconf has no masking); True raises ValueError.
        **kwargs: ``name`` and ``trainable``.
    """

    def __init__(self, input_dim: int, output_dim: int,
                 embeddings_initializer={"random_uniform": {"minval": -0.05, "maxval": 0.05}},
                 input_length: int | None = None, mask_zero: bool = False, **kwargs):
        super().__init__(**kwargs)
        if mask_zero:
            raise ValueError("mask_zero is not supported by kconf's Embedding (no masking); "
                             "use mask_zero: false")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = embeddings_initializer
        self.input_length = input_length

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 1:
            raise ShapeError("Embedding needs indices with a batch axis, got a scalar shape ()")
        if self.input_length is not None and len(shape) == 2:
            if shape[1] is None:
                shape = (shape[0], self.input_length)
            elif shape[1] != self.input_length:
                raise ShapeError(
                    f"Embedding has input_length={self.input_length} but its input shape is "
                    f"{format_shape(input_shape)}"
                )
        return (*shape, self.output_dim)

    def weight_specs(self, input_shape):
        return [WeightSpec("embeddings", (self.input_dim, self.output_dim),
                           self.embeddings_initializer)]

    def forward(self, x, training=False, rng=None):
        x = xp.asarray(x)
        idx = x if xp.issubdtype(x.dtype, xp.integer) else x.astype(xp.intp)
        if idx.size and (idx.min() < 0 or idx.max() >= self.input_dim):
            bad = idx[(idx < 0) | (idx >= self.input_dim)].flat[0]
            raise IndexError(
                f"Embedding {self.name!r}: index {int(bad)} is out of range [0, {self.input_dim}) "
                f"(input_dim={self.input_dim}); indices go from 0 to input_dim - 1"
            )
        table = self.weights["embeddings"]
        y = xp.take(table, idx, axis=0)

        def backward(dy):
            scatter_add_rows(self.grads["embeddings"], idx.reshape(-1),
                             dy.reshape(-1, self.output_dim))
            return None  # integer indices have no gradient

        return y, backward


def scatter_add_rows(target, idx, rows) -> None:
    """``target[idx[k]] += rows[k]`` for every k, repeated indices adding up (vectorized)."""
    if idx.size == 0:
        return
    order = xp.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    first = xp.empty(idx.size, dtype=bool)
    first[0] = True
    xp.not_equal(sorted_idx[1:], sorted_idx[:-1], out=first[1:])
    starts = xp.flatnonzero(first)  # where each index's run begins in ``order``
    counts = xp.diff(xp.append(starts, idx.size))
    k = 0
    while starts.size > _FEW_GROUPS:
        at = starts + k  # the k-th occurrence of every index that has one
        target[sorted_idx[at]] += rows[order[at]]
        k += 1
        alive = counts > k
        starts, counts = starts[alive], counts[alive]
    for start, count in zip(starts.tolist(), counts.tolist()):
        target[sorted_idx[start]] += rows[order[start + k:start + count]].sum(axis=0)
