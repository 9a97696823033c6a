"""CenterCrop: the centred (height, width) window of each image; an image smaller than that
is resized as Keras does (its centred window with the target's aspect ratio, resized
bilinearly: ``smart_resize``)."""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import PositiveInt
from kconf.args.layer import LayerArgs
from kconf.engine import images
from kconf.engine.layers.image_layer import CropLayer


class CenterCropArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True

    height: PositiveInt
    width: PositiveInt


class CenterCrop(CropLayer):
    """Crop the centre of images to (height, width) (Keras ``CenterCrop``, channels_last).

    The window starts at ``(H − height) // 2``, ``(W − width) // 2``; where the input is
    smaller than the target along either axis, Keras's ``smart_resize`` instead.

    Args:
        height, width: the output size.
    """

    def forward(self, x, training=False, rng=None):
        h, w = x.shape[1:3]
        if h >= self.height and w >= self.width:
            return images.crop(x, (h - self.height) // 2, (w - self.width) // 2,
                               self.height, self.width)
        return images.smart_resize(x, self.height, self.width)
