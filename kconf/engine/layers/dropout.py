"""Dropout: inverted dropout in training (kept units scaled by 1/(1 - rate)), identity otherwise."""
from __future__ import annotations

from kconf.engine.layers.base import Layer


class Dropout(Layer):
    """Randomly zero a fraction ``rate`` of the inputs while training.

    The keep mask is ``rng.random(x.shape) >= rate`` with the ``numpy.random.Generator``
    passed to ``forward``; kept values are multiplied by ``1 / (1 - rate)`` (in x's dtype),
    so the expected output equals the input and inference needs no rescaling.

    Args:
        rate: the fraction dropped, in [0, 1).
    """

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        if not training or self.rate == 0.0:
            return x, _identity
        if rng is None:
            raise ValueError("Dropout in training needs a numpy.random.Generator (rng)")
        keep = rng.random(x.shape) >= self.rate  # bool: a quarter of a float32 mask
        scale = x.dtype.type(1.0 / (1.0 - self.rate))
        y = x * scale
        y *= keep

        def backward(dy):
            dx = dy * scale
            dx *= keep
            return dx

        return y, backward


def _identity(dy):
    """Backward of the identity."""
    return dy
