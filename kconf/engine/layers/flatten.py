"""Flatten: C-order reshape of everything after the batch axis."""
from __future__ import annotations

import math
from typing import ClassVar

from kconf.args.layer import LayerArgs
from kconf.engine.layers.base import Layer
from kconf.errors import ShapeError
from kconf.shapes import format_shape


class FlattenArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True


class Flatten(Layer):
    """``(batch, d1, ..., dk) -> (batch, d1 * ... * dk)``; ``(batch,)`` becomes ``(batch, 1)`` as
    in Keras. Every non-batch dimension must be known."""

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ShapeError("Flatten needs an input with a batch axis, got shape ()")
        rest = input_shape[1:]
        if any(d is None for d in rest):
            raise ShapeError(
                f"Flatten needs every dimension after the batch axis to be known, "
                f"got input shape {format_shape(input_shape)}"
            )
        return (input_shape[0], math.prod(rest))

    def forward(self, x, training=False, rng=None):
        shape = x.shape
        y = x.reshape(shape[0], -1)

        def backward(dy):
            return dy.reshape(shape)

        return y, backward
