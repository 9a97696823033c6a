"""UnitNormalization: each sample divided by its L2 norm over ``axis``.

Keras's ``ops.normalize(x, axis, order=2, epsilon=1e-12)``: ``y = x·min(rsqrt(Σ x²),
1/ε)``, so a vector of norm below 1e-12 (zero included) is scaled by 1e12 instead.
"""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer
from kconf.engine.layers.layer_normalization import AxisOrAxes, normalized_axes
from kconf.args.layer import LayerArgs

NORM_EPSILON = 1e-12  # Keras's: the smallest norm divided by


class UnitNormalizationArgs(LayerArgs):
    """``UnitNormalization(axis=-1)``."""

    axis: AxisOrAxes = -1


class UnitNormalization(Layer):
    """Scale each sample to unit L2 norm over ``axis`` (one axis or several).

    Args:
        axis: the axis or axes whose norm is made 1 (not the batch axis).
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def compute_output_shape(self, input_shape):
        normalized_axes(self, input_shape, self.axis)
        return input_shape

    def forward(self, x, training=False, rng=None):
        axes = normalized_axes(self, (None, *x.shape[1:]), self.axis)
        squares = (x * x).sum(axis=axes, keepdims=True)
        limit = x.dtype.type(1 / NORM_EPSILON)
        with xp.errstate(divide="ignore"):  # a zero vector: rsqrt is inf, the limit holds
            inv = xp.minimum(1 / xp.sqrt(squares), limit)
        free = inv < limit  # where the norm, not the limit, scales: its gradient flows
        y = x * inv

        def backward(dy):
            # d(x·n^-1)/dx = n^-1·dy − x·n^-3·Σ dy·x, where n^-1 is not clipped
            along = xp.where(free, inv ** 3, 0) * (dy * x).sum(axis=axes, keepdims=True)
            return dy * inv - x * along

        return y, backward
