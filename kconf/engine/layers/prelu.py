"""PReLU: a leaky rectifier whose negative slope ``alpha`` is learned (``keras.layers.PReLU``)."""
from __future__ import annotations

from kconf.args.fields import PositiveInt
from kconf.args.layer import Initializer, LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.errors import ShapeError
from kconf.shapes import format_shape


class PReLUArgs(LayerArgs):
    """``PReLU(alpha_initializer="zeros", shared_axes=None)``; ``shared_axes`` lists axes
    (counted with the batch axis, from 1) along which one alpha serves every position."""

    alpha_initializer: Initializer = "zeros"
    shared_axes: tuple[PositiveInt, ...] | None = None


class PReLU(Layer):
    """``y = x`` where ``x > 0``, ``alpha · x`` otherwise; ``alpha`` has one sample's shape,
    with 1 on the ``shared_axes``.

    Args:
        alpha_initializer: the initializer of ``alpha`` (Keras's default: zeros, so PReLU
            starts as ReLU).
        shared_axes: axes sharing one alpha (``[1, 2]``: one per channel of an image).
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, alpha_initializer="zeros", shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = alpha_initializer
        self.shared_axes = None if shared_axes is None else tuple(shared_axes)

    def compute_output_shape(self, input_shape):
        self._alpha_shape(input_shape)
        return tuple(input_shape)

    def _alpha_shape(self, input_shape) -> tuple[int, ...]:
        """One sample's shape with 1 on the shared axes (every other size must be known)."""
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if axis >= len(input_shape):
                raise ShapeError(f"PReLU shared axis {axis} is not an axis of input shape "
                                 f"{format_shape(input_shape)}")
            shape[axis - 1] = 1
        if any(d is None for d in shape):
            raise ShapeError(f"PReLU needs known sizes outside its shared axes, got input "
                             f"shape {format_shape(input_shape)}")
        return tuple(shape)

    def weight_specs(self, input_shape):
        return [WeightSpec("alpha", self._alpha_shape(input_shape), self.alpha_initializer)]

    def forward(self, x, training=False, rng=None):
        alpha = self.weights["alpha"]
        negative = xp.minimum(x, 0)
        y = xp.maximum(x, 0) + alpha * negative
        shared = tuple(i for i, (n, a) in enumerate(zip(x.shape, (1, *alpha.shape)))
                       if a == 1 and n != 1)

        def backward(dy):
            self.grads["alpha"] += (dy * negative).sum(axis=shared, keepdims=True).reshape(
                alpha.shape)
            return dy * xp.where(x > 0, 1.0, alpha).astype(x.dtype, copy=False)

        return y, backward
