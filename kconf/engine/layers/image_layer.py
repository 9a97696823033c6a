"""Base classes of the image preprocessing layers (channels-last batches of rank 4).

``ImageLayer`` checks the rank and keeps the shape; ``RandomImageLayer`` adds the random
layers' ``forward``: the identity outside training, a ``ValueError`` without an ``rng``,
otherwise the subclass's ``augment(x, rng)``; ``AffineLayer`` the fill and interpolation of
the affine ones. ``CropLayer`` keeps the (height, width) of the cropping layers and their
output shape. None of them is registered: only their subclasses are layers for kconf.
"""
from __future__ import annotations

from kconf.engine import images
from kconf.engine.layers.base import Layer, require_rank
from kconf.engine.layers.resizing import WHAT


class ImageLayer(Layer):
    """A layer of images (batch, height, width, channels) that keeps their shape."""

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, 4, WHAT)
        return tuple(input_shape)


class RandomImageLayer(ImageLayer):
    """An augmentation drawn while training (Keras's random preprocessing layers): the
    identity in inference, ``augment`` with the ``rng`` given to ``forward`` in training."""

    def forward(self, x, training=False, rng=None):
        if not training:
            return x, _identity
        if rng is None:
            raise ValueError(
                f"{type(self).__name__} in training needs a numpy.random.Generator (rng)")
        return self.augment(x, rng)

    def augment(self, x, rng):
        """The augmented batch drawn with ``rng``; ``(y, backward)``."""
        raise NotImplementedError


class AffineLayer(RandomImageLayer):
    """A random affine augmentation (``RandomTranslation``, ``RandomRotation``,
    ``RandomZoom``): the sampling arguments they share (``kconf.args.image.AffineArgs``) and
    the sampling with them."""

    def _set_sampling(self, fill_mode: str, interpolation: str, fill_value: float) -> None:
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = float(fill_value)

    def _sample(self, x, rows, cols):
        """x sampled at the points (rows, cols) of each output pixel
        (``kconf.engine.images.affine_sample``); ``(y, backward)``."""
        return images.affine_sample(x, rows, cols, self.interpolation, self.fill_mode,
                                    self.fill_value)


class CropLayer(Layer):
    """A layer that crops images to (height, width) (``CenterCrop``, ``RandomCrop``).

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


def _identity(dy):
    """Backward of the identity."""
    return dy
