"""SpatialDropout1D/2D/3D: dropout of whole feature maps (``keras.layers.SpatialDropout*``).

In training, each sample's channel is kept or dropped as a whole (the mask has shape
``(N, 1, ..., 1, C)``), kept channels scaled by ``1 / (1 - rate)``; identity otherwise.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from kconf.args.fields import Fraction
from kconf.args.layer import LayerArgs
from kconf.engine.layers.base import Layer, require_rank


class SpatialDropout1DArgs(LayerArgs):
    """``SpatialDropout1D(rate)``; Keras's ``seed`` changes no number kconf draws, and its
    constructor takes no ``trainable``."""

    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})
    keras_takes_trainable: ClassVar[bool] = False

    rate: Fraction


class SpatialDropoutArgs(SpatialDropout1DArgs):
    """``SpatialDropout2D/3D(rate)``, channels_last."""

    keras_channels_last: ClassVar[bool] = True


class _SpatialDropout(Layer):
    """The shared math; subclasses set ``spatial`` (the number of spatial axes)."""

    spatial: ClassVar[int]

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, self.spatial + 2,
                     f"(batch, {self.spatial} spatial axes, channels)")
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        if not training or self.rate == 0.0:
            return x, _identity
        if rng is None:
            raise ValueError(f"{type(self).__name__} in training needs a "
                             "numpy.random.Generator (rng)")
        noise_shape = (x.shape[0], *(1,) * self.spatial, x.shape[-1])
        keep = rng.random(noise_shape, dtype=np.float32) >= self.rate  # Keras: uniform >= rate
        mask = keep * x.dtype.type(1.0 / (1.0 - self.rate))
        y = x * mask

        def backward(dy):
            return dy * mask

        return y, backward


def _identity(dy):
    """Backward of the identity."""
    return dy


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of (batch, steps, channels) inputs.

    Args:
        rate: the fraction of channels dropped, in [0, 1).
    """

    spatial = 1


class SpatialDropout2D(_SpatialDropout):
    """Drops whole channels of (batch, rows, cols, channels) inputs.

    Args:
        rate: the fraction of channels dropped, in [0, 1).
    """

    spatial = 2


class SpatialDropout3D(_SpatialDropout):
    """Drops whole channels of (batch, d1, d2, d3, channels) inputs.

    Args:
        rate: the fraction of channels dropped, in [0, 1).
    """

    spatial = 3
