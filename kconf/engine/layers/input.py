"""InputLayer: the entry point of a model; no weights, and the forward pass is the identity."""
from __future__ import annotations

from kconf.engine.layers.base import Layer


class InputLayer(Layer):
    """A model input of per-sample ``shape`` (the batch axis excluded), like ``keras.Input``.

    Args:
        shape: the shape of one sample, e.g. ``(28, 28, 1)``; entries may be None.
        batch_size: a fixed batch size, or None (any).
        dtype: the dtype name the data is fed in (kept for summaries and data checks).
    """

    n_inputs = 0

    def __init__(self, shape, batch_size: int | None = None, dtype: str = "float32", **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(shape)
        self.batch_size = batch_size
        self.dtype = dtype

    def compute_output_shape(self, input_shape=None):
        return (self.batch_size, *self.shape)

    def forward(self, x, training=False, rng=None):
        def backward(dy):
            return dy

        return x, backward
