"""ELU: ``x`` for ``x > 0``, ``alpha · (exp(x) - 1)`` otherwise (``keras.layers.ELU``)."""
from __future__ import annotations

from kconf.args.fields import Number
from kconf.args.layer import LayerArgs
from kconf.engine import activations
from kconf.engine.layers.base import Layer


class ELUArgs(LayerArgs):
    """``ELU(alpha=1.0)``."""

    alpha: Number = 1.0


class ELU(Layer):
    """Exponential linear unit; no weights, any shape.

    Args:
        alpha: the scale of the negative part.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        y, act_backward = activations.elu_with(x, self.alpha)

        def backward(dy):
            return act_backward(dy)

        return y, backward
