"""Rescaling: ``y = x · scale + offset`` (``keras.layers.Rescaling``)."""
from __future__ import annotations

from kconf.args.fields import Number
from kconf.args.layer import LayerArgs
from kconf.engine.layers.base import Layer


class RescalingArgs(LayerArgs):
    """``Rescaling(scale, offset=0.0)``: numbers (Keras also takes per-channel lists, which
    kconf refuses)."""

    scale: Number
    offset: Number = 0.0


class Rescaling(Layer):
    """Scale and shift every value (``1/255`` for images); no weights, any shape.

    Args:
        scale: the factor.
        offset: added after scaling.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, scale: float, offset: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        scale = x.dtype.type(self.scale)  # Keras casts both to the compute dtype first
        y = x * scale
        y += x.dtype.type(self.offset)

        def backward(dy):
            return dy * scale

        return y, backward
