"""Dropout: inverted dropout in training (kept units scaled by 1/(1 - rate)), identity otherwise."""
from __future__ import annotations

import numpy as np

from kconf.engine.layers.base import Layer


class Dropout(Layer):
    """Randomly zero a fraction ``rate`` of the inputs while training.

    The keep mask compares 32 random bits per unit, drawn from the ``numpy.random.Generator``
    passed to ``forward``, with ``rate · 2**32``: a unit is kept with probability ``1 - rate``
    to within 2**-32 (finer than Keras's float32 uniforms), and drawing raw bits costs about
    half of drawing floats. Kept values are multiplied by ``1 / (1 - rate)`` (in x's dtype),
    so the expected output equals the input and inference needs no rescaling.

    Args:
        rate: the fraction dropped, in [0, 1).
    """

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self._threshold = np.uint32(min(round(self.rate * 2.0 ** 32), 2 ** 32 - 1))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        if not training or self.rate == 0.0:
            return x, _identity
        if rng is None:
            raise ValueError("Dropout in training needs a numpy.random.Generator (rng)")
        keep = _random_uint32(rng, x.size).reshape(x.shape) >= self._threshold
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


def _random_uint32(rng, n: int):
    """``n`` uniformly random uint32 values from the generator's raw 64-bit output."""
    return rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
