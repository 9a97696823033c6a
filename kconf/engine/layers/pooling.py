"""MaxPooling2D: the maximum of each (ph, pw) window, channels-last.

The pooling itself is ``kconf.engine.kernels.max_pool`` (shared with the pooling layers of
other ranks): a strided slice of the whole batch per offset inside the window, the gradient
routed to the first maximum of each window (ties go to the first); when the windows tile
the input, a chunk of the batch per worker of the current ops (kconf.engine.ops).
"""
from __future__ import annotations

from typing import Any, ClassVar

from kconf.args.fields import IntPair
from kconf.args.layer import LayerArgs, Padding
from kconf.engine import kernels
from kconf.engine.layers.base import Layer
from kconf.engine.layers.conv2d import normalize_pair, normalize_padding, spatial_output_shape
from kconf.engine.ops import current_ops

_WHAT = "images (batch, height, width, channels)"


class MaxPooling2DArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True
    keras_default_from: ClassVar[dict[str, str]] = {"strides": "pool_size"}

    pool_size: IntPair = (2, 2)
    strides: IntPair | None = None
    padding: Padding = "valid"

    def layer_kwargs(self) -> dict[str, Any]:
        """As ``LayerArgs.layer_kwargs``, with ``strides`` defaulting to ``pool_size``."""
        out = super().layer_kwargs()
        if out["strides"] is None:
            out["strides"] = out["pool_size"]
        return out


class MaxPooling2D(Layer):
    """2-D max pooling (Keras ``MaxPooling2D``, channels_last).

    Args:
        pool_size: int or (ph, pw).
        strides: int, pair, or None (= pool_size).
        padding: 'valid' (windows that fit; sizes floor) or 'same' (output ceil(in/stride)).
    """

    uses_workers = True  # the tiled case runs a chunk of the batch per worker

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_pair(strides, "strides")
        self.padding = normalize_padding(padding)

    def compute_output_shape(self, input_shape):
        ho, wo = spatial_output_shape(self, input_shape, self.pool_size, self.strides,
                                      self.padding, _WHAT)
        return (input_shape[0], ho, wo, input_shape[3])

    def forward(self, x, training=False, rng=None):
        out_shape = spatial_output_shape(self, x.shape, self.pool_size, self.strides,
                                         self.padding, _WHAT)
        return kernels.max_pool(current_ops(), x, self.pool_size, self.strides, self.padding,
                                out_shape)
