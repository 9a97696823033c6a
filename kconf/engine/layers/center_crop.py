"""CenterCrop: the centred (height, width) window of each image; an image smaller than that
is resized as Keras does (its centred window with the target's aspect ratio, resized
bilinearly: ``smart_resize``)."""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import PositiveInt
from kconf.args.layer import LayerArgs
from kconf.engine import images
from kconf.engine.layers.base import Layer, require_rank
from kconf.engine.layers.resizing import WHAT


class CenterCropArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True

    height: PositiveInt
    width: PositiveInt


class CenterCrop(Layer):
    """Crop the centre of images to (height, width) (Keras ``CenterCrop``, channels_last).

    The window starts at ``(H − height) // 2``, ``(W − width) // 2``; where the input is
    smaller than the target along either axis, Keras's ``smart_resize`` instead.

    Args:
        height, width: the output size.
    """

    def __init__(self, height: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, 4, WHAT)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def forward(self, x, training=False, rng=None):
        h, w = x.shape[1:3]
        if h >= self.height and w >= self.width:
            return images.crop(x, (h - self.height) // 2, (w - self.width) // 2,
                               self.height, self.width)
        return images.smart_resize(x, self.height, self.width)
