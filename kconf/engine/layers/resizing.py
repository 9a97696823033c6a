"""Resizing: images resized to (height, width) as Keras 3 resizes them (``kconf.engine.images``:
half-pixel centres, no antialiasing), optionally after a centred crop to the target's aspect
ratio."""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import Bool, PositiveInt, choice
from kconf.args.layer import Fixed, LayerArgs
from kconf.engine import images
from kconf.engine.layers.base import Layer, require_rank

WHAT = "images (batch, height, width, channels)"


class ResizingArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True
    keras_fixed: ClassVar[dict[str, Fixed]] = {
        "pad_to_aspect_ratio": ((False,), "kconf's Resizing does not pad to the aspect ratio "
                                          "(crop_to_aspect_ratio is supported)"),
        "antialias": ((False,), "kconf's Resizing has no antialiasing"),
    }
    # used only when padding to the aspect ratio, which kconf refuses
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"fill_mode", "fill_value"})

    height: PositiveInt
    width: PositiveInt
    interpolation: choice("interpolation", images.INTERPOLATIONS) = "bilinear"
    crop_to_aspect_ratio: Bool = False


class Resizing(Layer):
    """Resize images to (height, width) (Keras ``Resizing``, channels_last).

    Args:
        height, width: the output size.
        interpolation: ``bilinear`` or ``nearest`` (Keras 3's, ``jax.image.resize``).
        crop_to_aspect_ratio: first take the largest centred window with the output's aspect
            ratio, so the image is not distorted.
    """

    def __init__(self, height: int, width: int, interpolation: str = "bilinear",
                 crop_to_aspect_ratio: bool = False, **kwargs):
        super().__init__(**kwargs)
        if interpolation not in images.INTERPOLATIONS:
            raise ValueError(f"Resizing interpolation must be one of {images.INTERPOLATIONS}, "
                             f"got {interpolation!r}")
        self.height = int(height)
        self.width = int(width)
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, 4, WHAT)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def forward(self, x, training=False, rng=None):
        if self.crop_to_aspect_ratio:
            return images.smart_resize(x, self.height, self.width, self.interpolation)
        return images.resize(x, self.height, self.width, self.interpolation)
