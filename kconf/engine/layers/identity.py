"""Identity: ``y = x``, Keras's ``Identity`` layer (a placeholder that changes nothing)."""
from __future__ import annotations

from kconf.args.layer import LayerArgs
from kconf.engine.layers.base import Layer


class IdentityArgs(LayerArgs):
    """``Identity()``: only the arguments every layer takes."""


class Identity(Layer):
    """Passes its input through unchanged; the gradient passes back unchanged. Any input
    shape, no weights, no FLOPs."""

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        def backward(dy):
            return dy

        return x, backward
