"""Training-only noise layers: GaussianNoise, GaussianDropout and AlphaDropout (Keras's
formulas, ``keras.layers.*``). Each is the identity at inference; in training it draws its
noise from the ``numpy.random.Generator`` passed to ``forward``.
"""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from kconf.args.fields import Fraction, bounded
from kconf.args.layer import Fixed, LayerArgs
from kconf.engine.activations import SELU_ALPHA, SELU_SCALE
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer

#: AlphaDropout's value for dropped units: SELU's negative saturation, -scale · alpha.
ALPHA_P = -SELU_ALPHA * SELU_SCALE


def _identity(dy):
    """Backward of the identity."""
    return dy


def _need_rng(layer: Layer, rng) -> None:
    if rng is None:
        raise ValueError(f"{type(layer).__name__} in training needs a numpy.random.Generator "
                         "(rng)")


class GaussianNoiseArgs(LayerArgs):
    """``GaussianNoise(stddev)``, stddev in [0, 1] as Keras requires."""

    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})

    stddev: bounded(float, ge=0, le=1)


class GaussianNoise(Layer):
    """Adds N(0, stddev²) noise while training.

    Args:
        stddev: the noise's standard deviation.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, stddev: float, **kwargs):
        super().__init__(**kwargs)
        self.stddev = stddev

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        if not training or self.stddev == 0.0:
            return x, _identity
        _need_rng(self, rng)
        noise = rng.standard_normal(x.shape, dtype=np.float32).astype(x.dtype, copy=False)
        noise *= x.dtype.type(self.stddev)
        return x + noise, _identity


class GaussianDropoutArgs(LayerArgs):
    """``GaussianDropout(rate)``, rate in [0, 1)."""

    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})

    rate: Fraction


class GaussianDropout(Layer):
    """Multiplies by N(1, rate / (1 - rate)) noise while training.

    Args:
        rate: the equivalent dropout rate.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, rng=None):
        if not training or self.rate == 0.0:
            return x, _identity
        _need_rng(self, rng)
        noise = rng.standard_normal(x.shape, dtype=np.float32).astype(x.dtype, copy=False)
        noise *= x.dtype.type(math.sqrt(self.rate / (1.0 - self.rate)))
        noise += 1.0
        y = x * noise

        def backward(dy):
            return dy * noise

        return y, backward


class AlphaDropoutArgs(LayerArgs):
    """``AlphaDropout(rate)``, rate in [0, 1); Keras's ``noise_shape`` only at None."""

    keras_fixed: ClassVar[dict[str, Fixed]] = {
        "noise_shape": ((None,), "kconf's AlphaDropout has no noise_shape")}
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})

    rate: Fraction


class AlphaDropout(Layer):
    """Dropout that keeps SELU's mean and variance (Keras 3's formula): a unit is kept where
    a uniform draw is >= rate, else set to ``alpha_p = -SELU_ALPHA · SELU_SCALE``; then
    ``y = a · x' + b`` with ``a = ((1 - rate)(1 + rate · alpha_p²))^-1/2`` and
    ``b = -a · alpha_p · rate``.

    Args:
        rate: the fraction of units dropped.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def affine(self) -> tuple[float, float]:
        """Keras's ``(a, b)`` for this rate."""
        a = ((1.0 - self.rate) * (1.0 + self.rate * ALPHA_P ** 2)) ** -0.5
        return a, -a * ALPHA_P * self.rate

    def forward(self, x, training=False, rng=None):
        if not training or self.rate == 0.0:
            return x, _identity
        _need_rng(self, rng)
        kept = rng.random(x.shape, dtype=np.float32) >= self.rate
        a, b = self.affine()
        a = x.dtype.type(a)
        y = xp.where(kept, x, x.dtype.type(ALPHA_P))
        y *= a
        y += x.dtype.type(b)
        grad = kept * a

        def backward(dy):
            return dy * grad

        return y, backward

