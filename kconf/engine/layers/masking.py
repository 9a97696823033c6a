"""Masking: mark the steps of a sequence whose features all equal ``mask_value`` as padding.

``keras.layers.Masking(mask_value=0.0)`` on ``(N, T, F)``: the output carries the mask
``any(x != mask_value, axis=-1)`` (N, T), True for data (``kconf.engine.masks``), and the
masked steps are set to 0 (Keras's ``where(mask, x, 0)``), so their gradient is 0 too.
"""
from __future__ import annotations

from kconf.args.fields import Number
from kconf.args.layer import LayerArgs
from kconf.engine import masks
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, require_rank


class MaskingArgs(LayerArgs):
    """``Masking(mask_value=0.0)``."""

    mask_value: Number = 0.0


class Masking(Layer):
    """Masks the steps of a sequence whose features all equal ``mask_value``.

    Args:
        mask_value: a step is padding when every one of its features equals this value.
        **kwargs: ``name`` and ``trainable``.
    """

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value

    def compute_output_shape(self, input_shape):
        require_rank(self, input_shape, 3, "sequences (batch, timesteps, features)")
        return tuple(input_shape)

    def mask_origins(self, origins, **options):
        """The output carries this layer's mask, whatever the input carried (Keras's
        ``compute_mask`` ignores the previous one)."""
        return masks.origin_of(self, f"mask_value {self.mask_value:g}")

    def compute_mask(self, x, mask, **options):
        """True where some feature of the step differs from ``mask_value``."""
        return (x != x.dtype.type(self.mask_value)).any(axis=-1)

    def forward(self, x, training=False, rng=None):
        keep = (x != x.dtype.type(self.mask_value)).any(axis=-1, keepdims=True)
        zero = x.dtype.type(0)
        y = xp.where(keep, x, zero)

        def backward(dy):
            return xp.where(keep, dy, zero)

        return y, backward
