"""Base classes of the image preprocessing layers (channels-last batches of rank 4).

``ImageLayer`` checks the rank and keeps the shape; ``RandomImageLayer`` adds the random
layers' ``forward``: the identity outside training, a ``ValueError`` without an ``rng``,
otherwise the subclass's ``augment(x, rng)``. Neither is registered: only their subclasses are
layers for kconf.
"""
from __future__ import annotations

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


def _identity(dy):
    """Backward of the identity."""
    return dy
