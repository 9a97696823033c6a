"""LeakyReLU: ``x`` for ``x >= 0``, ``negative_slope · x`` below (``keras.layers.LeakyReLU``)."""
from __future__ import annotations

from pydantic import AliasChoices, Field

from kconf.args.fields import NonNegativeFloat
from kconf.args.layer import LayerArgs
from kconf.engine import activations
from kconf.engine.layers.base import Layer


class LeakyReLUArgs(LayerArgs):
    """``LeakyReLU(negative_slope=0.3)``; Keras 2's name ``alpha`` is accepted (in YAML and
    in Keras files) for the same argument."""

    negative_slope: NonNegativeFloat = Field(
        0.3, validation_alias=AliasChoices("negative_slope", "alpha"))


class LeakyReLU(Layer):
    """Leaky rectifier; no weights, any shape.

    Args:
        negative_slope: the slope below 0 (Keras 2 called it ``alpha``).
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, negative_slope: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = negative_slope

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        y, act_backward = activations.leaky_relu_with(x, self.negative_slope)

        def backward(dy):
            return act_backward(dy)

        return y, backward
