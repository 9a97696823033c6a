"""Layers that only move numbers: Reshape, Permute, RepeatVector.

Each sample is reshaped (C order), its axes permuted, or a vector repeated along a new time
axis; backward undoes the move (RepeatVector's sums the copies).
"""
from __future__ import annotations

import math

from kconf.args.fields import PositiveInt
from kconf.args.layer import LayerArgs
from kconf.args.shape_fields import Permutation, TargetShape
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, require_rank
from kconf.errors import ShapeError
from kconf.shapes import format_shape


class ReshapeArgs(LayerArgs):
    """``target_shape``: the shape of one sample, one entry of which may be -1 (inferred)."""

    target_shape: TargetShape


class Reshape(Layer):
    """Keras ``Reshape``: ``(batch, *in) -> (batch, *target_shape)`` in C order; a -1 takes
    what is left. The sizes must agree, so every input dimension must be known.

    Args:
        target_shape: the output's shape without the batch axis.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(d is None for d in rest):
            raise ShapeError(f"Reshape needs every dimension after the batch axis to be known, "
                             f"got input shape {format_shape(input_shape)}")
        size = math.prod(rest)
        known = math.prod(d for d in self.target_shape if d != -1)
        target = list(self.target_shape)
        if -1 in target:
            if size % known:
                raise ShapeError(
                    f"Reshape: target_shape {format_shape(self.target_shape)} cannot hold the "
                    f"{size} numbers of a sample of input shape {format_shape(input_shape)}: "
                    f"{size} is not a multiple of {known}")
            target[target.index(-1)] = size // known
        elif known != size:
            raise ShapeError(
                f"Reshape: target_shape {format_shape(self.target_shape)} holds {known} "
                f"numbers, but a sample of input shape {format_shape(input_shape)} has {size}")
        return (input_shape[0], *target)

    def forward(self, x, training=False, rng=None):
        shape = x.shape
        out = self.compute_output_shape((None, *shape[1:]))
        y = x.reshape(shape[0], *out[1:])

        def backward(dy):
            return dy.reshape(shape)

        return y, backward


class PermuteArgs(LayerArgs):
    """``dims``: the permutation of a sample's axes, counted from 1 (``[2, 1]``)."""

    dims: Permutation


class Permute(Layer):
    """Keras ``Permute``: output axis ``i`` is input axis ``dims[i - 1]`` (the batch axis
    stays first).

    Args:
        dims: a permutation of ``1..k`` for inputs of rank ``k + 1``.
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(dims)

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, len(self.dims) + 1,
                     f"inputs with {len(self.dims)} axes after the batch axis (dims "
                     f"{list(self.dims)})")
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def forward(self, x, training=False, rng=None):
        axes = (0, *self.dims)
        inverse = tuple(int(i) for i in xp.argsort(xp.asarray(axes)))
        y = xp.ascontiguousarray(xp.transpose(x, axes))

        def backward(dy):
            return xp.ascontiguousarray(xp.transpose(dy, inverse))

        return y, backward


class RepeatVectorArgs(LayerArgs):
    """``n``: how many times the vector is repeated."""

    n: PositiveInt


class RepeatVector(Layer):
    """Keras ``RepeatVector``: ``(batch, features) -> (batch, n, features)``.

    Args:
        n: the number of repetitions (the new time axis's length).
    """

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = n

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, 2, "vectors (batch, features)")
        return (input_shape[0], self.n, input_shape[1])

    def forward(self, x, training=False, rng=None):
        y = xp.repeat(x[:, None, :], self.n, axis=1)

        def backward(dy):
            return dy.sum(axis=1)

        return y, backward
