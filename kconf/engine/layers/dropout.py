"""Dropout: inverted dropout in training (kept units scaled by 1/(1 - rate)), identity otherwise."""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from kconf.args.fields import Fraction, Shape
from kconf.args.layer import LayerArgs
from kconf.engine.layers.base import Layer
from kconf.errors import ShapeError
from kconf.shapes import format_shape


class DropoutArgs(LayerArgs):
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})

    rate: Fraction
    noise_shape: Shape | None = None


class Dropout(Layer):
    """Randomly zero a fraction ``rate`` of the inputs while training.

    The keep mask compares b random bits per unit, drawn from the ``numpy.random.Generator``
    passed to ``forward``, with ``rate · 2**b``: b is 8 or 16 where that product is a whole
    number (rate 0.5, 0.25, ...: then exact), else 32 (exact to 2**-32, finer than Keras's
    float32 uniforms). Raw bits cost about half of float draws; 8 of them an eighth. Kept values are multiplied by ``1 / (1 - rate)`` (in x's dtype),
    so the expected output equals the input and inference needs no rescaling.

    With ``noise_shape`` (Keras's: the batch axis included, ``None`` for "as the input"), one
    draw is shared along every axis where it is 1: ``[null, 1, 1, 1]`` drops whole samples of
    an image batch (EfficientNet's stochastic depth).

    Args:
        rate: the fraction dropped, in [0, 1).
        noise_shape: the shape of the keep mask, broadcast over the input; None: the input's.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, rate: float, noise_shape=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        for bits, dtype in ((8, np.uint8), (16, np.uint16), (32, np.uint32)):
            threshold = self.rate * 2.0 ** bits
            if threshold == int(threshold):
                break
        self._bits = dtype  # the last, uint32, where no exact one is found
        self._threshold = dtype(min(round(threshold), 2 ** bits - 1))

    def compute_output_shape(self, input_shape):
        if self.noise_shape is not None:
            fits = len(self.noise_shape) == len(input_shape) and all(
                n is None or n == 1 or d is None or n == d
                for n, d in zip(self.noise_shape, input_shape))
            if not fits:
                raise ShapeError(f"Dropout's noise_shape {format_shape(self.noise_shape)} "
                                 "does not broadcast to its input shape "
                                 f"{format_shape(input_shape)} (one entry per axis, batch "
                                 "included: null, 1 or the input's size)")
        return tuple(input_shape)

    def _mask_shape(self, shape):
        """The keep mask's shape for an input of ``shape`` (None entries: the input's)."""
        if self.noise_shape is None:
            return shape
        return tuple(d if n is None else n for n, d in zip(self.noise_shape, shape))

    def _keep(self, shape, rng):
        """A keep mask of ``shape``: True for the units kept."""
        if rng is None:
            raise ValueError(f"{type(self).__name__} in training needs a "
                             "numpy.random.Generator (rng)")
        bits = _random_bits(rng, math.prod(shape), self._bits).reshape(shape)
        return bits >= self._threshold

    def multiplier(self, shape, rng, dtype):
        """What training multiplies each unit by, for a layer that applies the dropout
        itself (MultiHeadAttention's, on the attention weights): ``1 / (1 - rate)`` where
        kept, 0 where dropped, from the same keep mask ``forward`` would draw.

        Args:
            shape: the units' shape.
            rng: the ``numpy.random.Generator``.
            dtype: the result's float dtype.

        Returns:
            An array of ``shape``: ``x * multiplier`` is ``forward``'s output, bit for bit.
        """
        dtype = np.dtype(dtype)
        return np.multiply(self._keep(shape, rng), dtype.type(1.0 / (1.0 - self.rate)),
                           dtype=dtype)

    def forward(self, x, training=False, rng=None):
        if not training or self.rate == 0.0:
            return x, _identity
        keep = self._keep(self._mask_shape(x.shape), rng)
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


def _random_bits(rng, n: int, dtype):
    """``n`` uniformly random unsigned integers of ``dtype`` from the generator's raw 64-bit
    output (each word split into 8 / 4 / 2 of them, low bytes first)."""
    per_word = 8 // np.dtype(dtype).itemsize
    return rng.bit_generator.random_raw(-(-n // per_word)).view(dtype)[:n]
