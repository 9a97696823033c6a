"""Global pooling (channels-last): the mean or the maximum over every spatial axis —
GlobalAveragePooling1D/2D/3D and GlobalMaxPooling1D/2D/3D.

``(batch, *spatial, channels) -> (batch, channels)``, or ``(batch, 1, ..., 1, channels)``
with ``keepdims``. The maximum's gradient goes to the first maximum of each channel
(row-major over the spatial axes), as max pooling's does.
"""
from __future__ import annotations

import math
from typing import ClassVar

from kconf.args.fields import Bool
from kconf.args.layer import LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, require_rank

_WHAT = {1: "sequences (batch, steps, channels)",
         2: "images (batch, height, width, channels)",
         3: "volumes (batch, depth, height, width, channels)"}


class GlobalPoolingArgs(LayerArgs):
    """``keepdims=False`` (Keras's ``data_format`` is channels_last only)."""

    keras_channels_last: ClassVar[bool] = True

    keepdims: Bool = False


class _GlobalPooling(Layer):
    """Pooling over all ``rank`` spatial axes.

    Args:
        keepdims: keep the spatial axes, with length 1.
    """

    rank: ClassVar[int]

    def __init__(self, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = keepdims

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, self.rank + 2, _WHAT[self.rank])
        if self.keepdims:
            return (input_shape[0], *(1,) * self.rank, input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def _out(self, y2, shape):
        """The (batch, channels) result in the layer's output shape."""
        return y2.reshape(shape[0], *(1,) * self.rank, shape[-1]) if self.keepdims else y2


class _GlobalAveragePooling(_GlobalPooling):
    def forward(self, x, training=False, rng=None):
        shape = x.shape
        cells = math.prod(shape[1:-1])
        flat = x.reshape(shape[0], cells, shape[-1])
        y = self._out(flat.mean(axis=1), shape)

        def backward(dy):
            share = dy.reshape(shape[0], 1, shape[-1]) * (1.0 / cells)
            return xp.broadcast_to(share, flat.shape).reshape(shape)

        return y, backward


class _GlobalMaxPooling(_GlobalPooling):
    def forward(self, x, training=False, rng=None):
        shape = x.shape
        flat = x.reshape(shape[0], math.prod(shape[1:-1]), shape[-1])
        first = xp.argmax(flat, axis=1)[:, None, :]  # the first maximum of each channel
        y = self._out(xp.take_along_axis(flat, first, axis=1)[:, 0, :], shape)

        def backward(dy):
            dflat = xp.zeros(flat.shape, dtype=dy.dtype)
            xp.put_along_axis(dflat, first, dy.reshape(shape[0], 1, shape[-1]), axis=1)
            return dflat.reshape(shape)

        return y, backward


class GlobalAveragePooling1D(_GlobalAveragePooling):
    """Keras ``GlobalAveragePooling1D``: the mean over the steps; with a mask
    (``kconf.engine.masks``), over the data steps only (NaN for a sequence without any, as
    Keras's 0 / 0). The output carries no mask."""

    rank = 1
    supports_masking = True
    takes_mask = True

    def mask_origins(self, origins, **options):
        return None  # the mask is used up here

    def forward(self, x, training=False, rng=None, mask=None):
        if mask is None:
            return super().forward(x, training=training, rng=rng)
        keep = xp.asarray(mask, dtype=bool)[:, :, None]  # (N, T, 1)
        zero = x.dtype.type(0)
        count = keep.sum(axis=1, dtype=x.dtype)  # (N, 1) data steps of each sequence
        with xp.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 is Keras's NaN
            y = xp.where(keep, x, zero).sum(axis=1) / count
        y = y[:, None, :] if self.keepdims else y

        def backward(dy):
            with xp.errstate(invalid="ignore", divide="ignore"):
                share = dy.reshape(x.shape[0], 1, x.shape[-1]) / count[:, None]
            return xp.where(keep, share, zero)

        return y, backward


class GlobalAveragePooling2D(_GlobalAveragePooling):
    """Keras ``GlobalAveragePooling2D``: the mean over height and width."""

    rank = 2


class GlobalAveragePooling3D(_GlobalAveragePooling):
    """Keras ``GlobalAveragePooling3D``: the mean over depth, height and width."""

    rank = 3


class GlobalMaxPooling1D(_GlobalMaxPooling):
    """Keras ``GlobalMaxPooling1D``: the maximum over the steps."""

    rank = 1


class GlobalMaxPooling2D(_GlobalMaxPooling):
    """Keras ``GlobalMaxPooling2D``: the maximum over height and width."""

    rank = 2


class GlobalMaxPooling3D(_GlobalMaxPooling):
    """Keras ``GlobalMaxPooling3D``: the maximum over depth, height and width."""

    rank = 3
