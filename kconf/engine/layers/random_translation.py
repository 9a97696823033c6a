"""RandomTranslation: in training, each image shifted by a random fraction of its height and
width, the uncovered pixels filled as ``fill_mode`` says (Keras 3's ``RandomTranslation``);
identity in inference."""
from __future__ import annotations

from kconf.args.image import AffineArgs, bounds, signed_factor
from kconf.engine import images
from kconf.engine.layers.image_layer import AffineLayer


class RandomTranslationArgs(AffineArgs):
    height_factor: signed_factor()
    width_factor: signed_factor()


class RandomTranslation(AffineLayer):
    """Shift images at random while training (Keras ``RandomTranslation``, channels_last).

    Per image, a vertical shift ``uniform(lower, upper) · H`` pixels and a horizontal one
    ``uniform(lower, upper) · W`` (positive: down and right) are drawn from the ``rng`` given
    to ``forward``; output pixel (i, j) samples the input at (i − dy, j − dx)
    (``kconf.engine.images.affine_sample``).

    Args:
        height_factor, width_factor: a fraction f in [-1, 1] (shifts in [−f, f]) or
            (lower, upper).
        fill_mode: ``reflect``, ``wrap``, ``constant`` or ``nearest``.
        interpolation: ``bilinear`` or ``nearest``.
        fill_value: the value outside the image for ``constant``.
    """

    def __init__(self, height_factor, width_factor, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", fill_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.height_factor = height_factor
        self.width_factor = width_factor
        self._set_sampling(fill_mode, interpolation, fill_value)

    def augment(self, x, rng):
        n, h, w, _ = x.shape
        shift_h = rng.uniform(*bounds(self.height_factor), n) * h
        shift_w = rng.uniform(*bounds(self.width_factor), n) * w
        return self.translate(x, shift_h, shift_w)

    def translate(self, x, shift_h, shift_w):
        """x shifted by ``shift_h``, ``shift_w`` pixels (one of each per image);
        ``(y, backward)``."""
        rows, cols = images.output_grid(*x.shape[1:3])
        shift_h = shift_h.astype("float32")[:, None, None]
        shift_w = shift_w.astype("float32")[:, None, None]
        return self._sample(x, rows - shift_h, cols - shift_w)
