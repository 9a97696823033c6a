"""ReLU: Keras's thresholded, capped, leaky rectifier (``keras.layers.ReLU``)."""
from __future__ import annotations

from kconf.args.fields import NonNegativeFloat
from kconf.args.layer import LayerArgs
from kconf.engine import activations
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer


class ReLUArgs(LayerArgs):
    """``ReLU(max_value=None, negative_slope=0.0, threshold=0.0)``, each >= 0 as in Keras."""

    max_value: NonNegativeFloat | None = None
    negative_slope: NonNegativeFloat = 0.0
    threshold: NonNegativeFloat = 0.0


class ReLU(Layer):
    """``y = min(x, max_value)`` where ``x > threshold``, ``negative_slope · (x - threshold)``
    below it, 0 at it (Keras 3's ``activations.relu``); no weights, any shape.

    Args:
        max_value: the cap of the output (None: no cap).
        negative_slope: the slope below the threshold.
        threshold: where the rectifier bends.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    overwrites_input = True  # the plain rectifier (forward's overwrite)

    def forward(self, x, training=False, rng=None, overwrite=False):
        if self.max_value is None and not self.negative_slope and not self.threshold:
            # the plain rectifier: two passes, one in backward; written over x where the
            # graph allows (Layer.overwrites_input), the same bits
            return (activations.in_place(activations.relu) if overwrite
                    else activations.relu)(x)
        above = x > self.threshold
        y = xp.where(above, x, x.dtype.type(0))
        slope = above.astype(x.dtype)
        if self.max_value is not None:
            capped = x >= self.max_value
            xp.minimum(y, x.dtype.type(self.max_value), out=y)
            slope[capped] = 0.0
        if self.negative_slope:
            below = x < self.threshold
            y[below] = (self.negative_slope * (x[below] - self.threshold)).astype(x.dtype)
            slope[below] = self.negative_slope

        def backward(dy):
            return dy * slope

        return y, backward
