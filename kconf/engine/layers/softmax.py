"""Softmax: normalized exponentials over one axis (``keras.layers.Softmax``)."""
from __future__ import annotations


from kconf.args.layer import Axis, LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer
from kconf.errors import ShapeError
from kconf.shapes import format_shape


class SoftmaxArgs(LayerArgs):
    """``Softmax(axis=-1)``: one axis (Keras also takes a list of axes, which kconf refuses:
    the schema's axis is one integer)."""

    axis: Axis = -1


class Softmax(Layer):
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``; no weights.

    Args:
        axis: the axis normalized, counted with the batch axis (negative from the end).
    """

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def compute_output_shape(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape) or \
                self.axis % len(input_shape) == 0:
            raise ShapeError(f"Softmax axis {self.axis} is not an axis of one sample of "
                             f"shape {format_shape(input_shape)}")
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        axis = self.axis
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)

        def backward(dy):
            return y * (dy - (dy * y).sum(axis=axis, keepdims=True))

        return y, backward
