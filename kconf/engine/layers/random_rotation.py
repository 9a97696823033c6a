"""RandomRotation: in training, each image rotated about its centre by a random angle, the
uncovered pixels filled as ``fill_mode`` says (Keras 3's ``RandomRotation``); identity in
inference."""
from __future__ import annotations

import numpy as np

from kconf.args.image import AffineArgs, bounds, signed_factor
from kconf.engine import images
from kconf.engine.layers.image_layer import AffineLayer


class RandomRotationArgs(AffineArgs):
    factor: signed_factor(as_pair=True)


class RandomRotation(AffineLayer):
    """Rotate images at random while training (Keras ``RandomRotation``, channels_last).

    Per image, an angle ``uniform(lower, upper) · 360`` degrees is drawn from the ``rng``
    given to ``forward`` (positive: counter-clockwise, as Keras); output pixel (i, j) samples
    the input at the point rotated about ((H − 1)/2, (W − 1)/2)
    (``kconf.engine.images.affine_sample``).

    Args:
        factor: a fraction of a full turn f in [-1, 1] (angles in [−f, f] · 360°) or two,
            kept as the pair (lower, upper), as Keras keeps it.
        fill_mode: ``reflect``, ``wrap``, ``constant`` or ``nearest``.
        interpolation: ``bilinear`` or ``nearest``.
        fill_value: the value outside the image for ``constant``.
    """

    def __init__(self, factor, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 fill_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = bounds(factor)
        self._set_sampling(fill_mode, interpolation, fill_value)

    def augment(self, x, rng):
        lower, upper = self.factor
        return self.rotate(x, rng.uniform(lower * 360.0, upper * 360.0, x.shape[0]))

    def rotate(self, x, degrees):
        """x rotated by ``degrees`` (one angle per image); ``(y, backward)``."""
        h, w = x.shape[1:3]
        theta = np.deg2rad(degrees.astype(np.float32))[:, None, None]
        cos, sin = np.cos(theta), np.sin(theta)
        cy, cx = np.float32(0.5 * (h - 1)), np.float32(0.5 * (w - 1))
        rows, cols = images.output_grid(h, w)
        dy, dx = rows - cy, cols - cx
        return self._sample(x, sin * dx + cos * dy + cy, cos * dx - sin * dy + cx)
