"""Activation: applies a named activation elementwise (softmax: over the last axis)."""
from __future__ import annotations

from kconf.args.layer import Activation as ActivationName
from kconf.args.layer import LayerArgs
from kconf.engine import activations
from kconf.engine.layers.base import Layer


class ActivationArgs(LayerArgs):
    activation: ActivationName


class Activation(Layer):
    """``y = activation(x)``; no weights, any input shape.

    Args:
        activation: a name in ``kconf.engine.activations.ACTIVATIONS`` (None means linear).
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        y, act_backward = self.activation(x)

        def backward(dy):
            return act_backward(dy)

        return y, backward
