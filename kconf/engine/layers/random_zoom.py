"""RandomZoom: in training, each image zoomed about its centre by a random factor, the
uncovered pixels filled as ``fill_mode`` says (Keras 3's ``RandomZoom``); identity in
inference."""
from __future__ import annotations

from typing import Optional

import numpy as np

from kconf.args.image import AffineArgs, bounds, signed_factor
from kconf.engine import images
from kconf.engine.layers.image_layer import AffineLayer


class RandomZoomArgs(AffineArgs):
    height_factor: signed_factor(lowest_open=True)
    width_factor: Optional[signed_factor(lowest_open=True)] = None


class RandomZoom(AffineLayer):
    """Zoom images at random while training (Keras ``RandomZoom``, channels_last).

    Per image, a vertical scale ``1 + uniform(lower, upper)`` is drawn from the ``rng`` given
    to ``forward``, and a horizontal one the same way (or the same scale, when
    ``width_factor`` is None). As in Keras, a positive factor zooms *out*: output pixel
    (i, j) samples the input at (c + z_h·(i − c), ...) about the centre
    ((H − 1)/2, (W − 1)/2) (``kconf.engine.images.affine_sample``).

    Args:
        height_factor: f in (-1, 1] (scales in [1 − f, 1 + f]) or (lower, upper).
        width_factor: the same for the width; None: the height's scale.
        fill_mode: ``reflect``, ``wrap``, ``constant`` or ``nearest``.
        interpolation: ``bilinear`` or ``nearest``.
        fill_value: the value outside the image for ``constant``.
    """

    def __init__(self, height_factor, width_factor=None, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", fill_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.height_factor = height_factor
        self.width_factor = width_factor
        self._set_sampling(fill_mode, interpolation, fill_value)

    def augment(self, x, rng):
        n = x.shape[0]
        lower, upper = bounds(self.height_factor)
        zoom_h = rng.uniform(1.0 + lower, 1.0 + upper, n)
        if self.width_factor is None:
            zoom_w = zoom_h
        else:
            lower, upper = bounds(self.width_factor)
            zoom_w = rng.uniform(1.0 + lower, 1.0 + upper, n)
        return self.zoom(x, zoom_h, zoom_w)

    def zoom(self, x, zoom_h, zoom_w):
        """x zoomed by ``zoom_h``, ``zoom_w`` (one of each per image); ``(y, backward)``."""
        h, w = x.shape[1:3]
        zh = zoom_h.astype(np.float32)[:, None, None]
        zw = zoom_w.astype(np.float32)[:, None, None]
        rows, cols = images.output_grid(h, w)
        cy, cx = np.float32((h - 1) / 2), np.float32((w - 1) / 2)
        return self._sample(x, zh * rows + cy * (1 - zh), zw * cols + cx * (1 - zw))
