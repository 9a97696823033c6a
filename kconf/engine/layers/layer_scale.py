"""LayerScale: ConvNeXt's learned per-channel scale (``keras.applications.convnext``)."""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import Number, PositiveInt
from kconf.args.layer import LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.errors import ShapeError
from kconf.shapes import format_shape


class LayerScaleArgs(LayerArgs):
    """``LayerScale(init_values, projection_dim)``, as ConvNeXt's Keras files save it."""

    keras_module: ClassVar[str] = "keras.src.applications.convnext"

    init_values: Number
    projection_dim: PositiveInt


class LayerScale(Layer):
    """``y = x · gamma`` on the last axis; ``gamma`` (projection_dim,) starts at
    ``init_values``.

    Args:
        init_values: the initial value of every entry of ``gamma``.
        projection_dim: the size of the last axis.
    """

    def __init__(self, init_values: float, projection_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def compute_output_shape(self, input_shape):
        if input_shape[-1] not in (self.projection_dim, None) or len(input_shape) < 2:
            raise ShapeError(f"LayerScale of projection_dim {self.projection_dim} needs a last "
                             f"axis of that size, got input shape {format_shape(input_shape)}")
        return tuple(input_shape)

    def weight_specs(self, input_shape):
        return [WeightSpec("gamma", (self.projection_dim,),
                           {"constant": {"value": float(self.init_values)}})]

    def forward(self, x, training=False, rng=None):
        gamma = self.weights["gamma"]
        y = x * gamma

        def backward(dy):
            self.grads["gamma"] += xp.add.reduce((dy * x).reshape(-1, gamma.shape[0]), axis=0)
            return dy * gamma

        return y, backward
