"""CustomScaleLayer: InceptionResNetV2's residual sum ``x[0] + x[1] · scale``
(``keras.applications.inception_resnet_v2``)."""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import Number
from kconf.args.layer import LayerArgs
from kconf.engine.layers.base import Layer
from kconf.errors import ShapeError
from kconf.shapes import format_shape


class CustomScaleLayerArgs(LayerArgs):
    """``CustomScaleLayer(scale)``, as InceptionResNetV2's Keras files save it."""

    keras_module: ClassVar[str] = "keras.src.applications.inception_resnet_v2"

    scale: Number


class CustomScaleLayer(Layer):
    """Called on a list of two tensors of one shape: ``y = x[0] + x[1] · scale``.

    Args:
        scale: the factor of the second input (the residual branch).
    """

    n_inputs = 2

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2 or tuple(input_shape[0]) != tuple(input_shape[1]):
            raise ShapeError("CustomScaleLayer takes two tensors of one shape, got "
                             + ", ".join(format_shape(s) for s in input_shape))
        return tuple(input_shape[0])

    def forward(self, xs, training=False, rng=None):
        shortcut, residual = xs
        scale = residual.dtype.type(self.scale)
        y = residual * scale
        y += shortcut

        def backward(dy):
            return [dy.copy(), dy * scale]

        return y, backward
