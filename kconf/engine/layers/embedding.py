"""Embedding: integer indices (N, ...) → rows of ``embeddings`` (input_dim, output_dim).

A step reads only the rows its indices name (a batch of 32 × 100 tokens: at most 3,200 of
a 10,000-word table), so the gradient is row-sparse: ``grads["embeddings"]`` is a
``RowGrad`` (``kconf.engine.optimizers``), to which each backward adds its indices and
output gradients, coalesced (sorted unique rows, repeated indices summed) — no (input_dim ×
output_dim) array is written. Optimizers apply it with Keras's dense semantics (or lazily,
with ``lazy_sparse``); ``grads["embeddings"].to_dense()`` (or ``numpy.asarray``) is the
dense gradient, for checks.
"""
from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from kconf.args.fields import Bool, PositiveInt
from kconf.args.layer import Fixed, Initializer, LayerArgs, initializer
from kconf.engine import masks
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.engine.optimizers import RowGrad
from kconf.errors import ShapeError
from kconf.shapes import format_shape



class EmbeddingArgs(LayerArgs):
    """``Embedding(input_dim, output_dim)``: ``input_dim`` is the vocabulary size here, and
    ``input_length`` (Keras 2) the shortcut for ``input_shape: [input_length]``. Without any
    shape, a first Embedding takes sequences of any length (``input_shape: [null]``)."""

    shape_shortcuts: ClassVar[tuple[str, ...]] = ("input_length",)
    keras_fixed: ClassVar[dict[str, Fixed]] = {
        "sparse": ((False,), "sparse embeddings are not implemented in kconf"),
    }
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"input_length"})  # restates the shape

    input_dim: PositiveInt
    output_dim: PositiveInt
    embeddings_initializer: Initializer = Field(
        default_factory=lambda: initializer("random_uniform"))
    input_length: PositiveInt | None = None
    mask_zero: Bool = False

    def shortcut_shape(self) -> tuple[int | None, ...] | None:
        """``input_length: 100`` means ``input_shape: [100]``."""
        return None if self.input_length is None else (self.input_length,)

    def input_hint(self) -> tuple[int | None, tuple[int | None, ...]] | None:
        """As ``LayerArgs.input_hint``; without a shape, sequences of any length (Keras 2)."""
        return super().input_hint() or (None, (None,))


class Embedding(Layer):
    """Turn integer indices into dense vectors, as ``keras.layers.Embedding``.

    Args:
        input_dim: size of the vocabulary (indices run over [0, input_dim)).
        output_dim: size of each vector.
        embeddings_initializer: initializer of ``embeddings`` (Keras: uniform in ±0.05).
        input_length: Keras 2's fixed sequence length; fills in an unknown second axis of the
            input shape and must agree with a known one.
        mask_zero: index 0 is padding: the output carries a mask, False where the index is
            0 (``kconf.engine.masks``); the row 0 is still looked up and trained as Keras does.
        **kwargs: ``name`` and ``trainable``.
    """

    def __init__(self, input_dim: int, output_dim: int,
                 embeddings_initializer={"random_uniform": {"minval": -0.05, "maxval": 0.05}},
                 input_length: int | None = None, mask_zero: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.mask_zero = mask_zero
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

    def mask_origins(self, origins, **options):
        """With ``mask_zero`` the output carries a mask (an integer input has none)."""
        return masks.origin_of(self, "mask_zero") if self.mask_zero else None

    def compute_mask(self, x, mask, **options):
        """True where the index is not 0."""
        return xp.asarray(x) != 0

    def weight_specs(self, input_shape):
        return [WeightSpec("embeddings", (self.input_dim, self.output_dim),
                           self.embeddings_initializer)]

    def zero_grads(self) -> None:
        """``grads["embeddings"]``: an empty ``RowGrad``; one that fits is emptied in place,
        so whoever holds it (the model's gradient list) keeps a valid reference."""
        table = self.weights.get("embeddings")
        if table is None:
            self.grads = {}
            return
        grad = self.grads.get("embeddings")
        if isinstance(grad, RowGrad) and grad.shape == table.shape and grad.dtype == table.dtype:
            grad.clear()
        else:
            self.grads = {"embeddings": RowGrad(table.shape, table.dtype)}

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
            self.grads["embeddings"].add(idx.reshape(-1), dy.reshape(-1, self.output_dim))
            return None  # integer indices have no gradient

        return y, backward
