"""RandomCrop: in training, a random (height, width) window (Keras 3's ``RandomCrop``: one
window for the whole batch); in inference, and in training where the input is not larger than
the window along both axes, the window at the centre of the largest one with the target's
aspect ratio, resized where the image is too small (Keras's ``smart_resize``, nearly)."""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import PositiveInt
from kconf.args.layer import LayerArgs
from kconf.engine import images
from kconf.engine.layers.image_layer import CropLayer


class RandomCropArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})  # kconf draws from the run's rng

    height: PositiveInt
    width: PositiveInt


class RandomCrop(CropLayer):
    """Crop images to (height, width) at a random place while training (Keras
    ``RandomCrop``, channels_last).

    In training, when the input is larger than the window along both axes, the window's
    corner is drawn uniformly (``int(uniform(0, H − height + 1))``, then the same for the
    width, from the ``rng`` given to ``forward``), one for the batch as Keras draws it.
    Otherwise — and always in inference, as Keras documents — the window is the one Keras's
    training path takes then: (height, width) from the corner of the largest centred window
    with the target's aspect ratio, resized bilinearly where the image is too small
    (``smart_resize`` but for inputs smaller than the target along one axis only). Keras 3.15
    itself returns the uncropped input in inference, against the output shape it declares.

    Args:
        height, width: the output size.
    """

    def forward(self, x, training=False, rng=None):
        h, w = x.shape[1:3]
        if not (training and h > self.height and w > self.width):
            return self._centred(x)
        if rng is None:
            raise ValueError("RandomCrop in training needs a numpy.random.Generator (rng)")
        top = int(rng.uniform(0, h - self.height + 1))
        left = int(rng.uniform(0, w - self.width + 1))
        return images.crop(x, top, left, self.height, self.width)

    def _centred(self, x):
        """Keras's window when it does not draw one; ``(y, backward)``."""
        h, w = x.shape[1:3]
        top, left, _, _ = images.aspect_crop_box(h, w, self.height, self.width)
        box = (top, left, min(self.height, h - top), min(self.width, w - left))
        return images.crop_resize(x, box, self.height, self.width, "bilinear")
