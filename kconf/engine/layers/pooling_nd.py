"""Max and average pooling of 1, 2 or 3 spatial axes (channels-last): MaxPooling1D,
MaxPooling3D, AveragePooling1D, AveragePooling2D, AveragePooling3D.

The pooling is in kconf.engine.kernels, written for any number of spatial axes: max pooling
is ``max_pool`` (the same as MaxPooling2D's: the gradient goes to the first maximum of each
window, and the windows that tile the input run a chunk of the batch per worker), average
pooling ``average_pool`` (with ``same`` padding a window divides by the cells it holds of
the input, as in Keras). ``strides`` default to ``pool_size``, as in Keras. ``pool_size``
defaults to 2 on every axis; Keras 3's average pooling layers require it (Keras 2's had that
default), so a config without it still reads as Keras 2 did.
"""
from __future__ import annotations

from typing import Any, ClassVar

from kconf.args.layer import LayerArgs, Padding
from kconf.args.shape_fields import int_tuple
from kconf.engine import kernels
from kconf.engine.layers.base import Layer, require_rank
from kconf.engine.ops import current_ops
from kconf.errors import ShapeError
from kconf.shapes import format_shape

_WHAT = {1: "sequences (batch, steps, channels)",
         2: "images (batch, height, width, channels)",
         3: "volumes (batch, depth, height, width, channels)"}
_AXES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def normalize_ints(value, n: int, what: str) -> tuple[int, ...]:
    """An int or ``n`` positive ints (Keras's ``pool_size=2`` or ``(2, 3)``) as a tuple of n."""
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"{what} must be a positive int or {n} positive ints, got {value!r}")
    return values


def pooled_shape(layer: Layer, input_shape, n: int, window, strides, padding: str):
    """The output's spatial lengths for a rank ``n + 2`` channels-last input, or a ShapeError
    when the window does not fit ('valid')."""
    require_rank(layer, input_shape, n + 2, _WHAT[n])
    out = []
    for axis, length, size, stride in zip(_AXES[n], input_shape[1:-1], window, strides):
        length_out = kernels.output_length(length, size, stride, padding)
        if length_out is not None and length_out <= 0:
            raise ShapeError(
                f"{type(layer).__name__}: window {tuple(window)} is larger than the input "
                f"{axis} {length} with padding 'valid' (input shape {format_shape(input_shape)})")
        out.append(length_out)
    return tuple(out)


Ints1, Ints2, Ints3 = int_tuple(1), int_tuple(2), int_tuple(3)


class _PoolingArgs(LayerArgs):
    """What every pooling layer's arguments share: channels_last, ``strides`` defaulting to
    ``pool_size``, ``padding``."""

    keras_channels_last: ClassVar[bool] = True
    keras_default_from: ClassVar[dict[str, str]] = {"strides": "pool_size"}

    def layer_kwargs(self) -> dict[str, Any]:
        """As ``LayerArgs.layer_kwargs``, with ``strides`` defaulting to ``pool_size``."""
        out = super().layer_kwargs()
        if out["strides"] is None:
            out["strides"] = out["pool_size"]
        return out


class Pooling1DArgs(_PoolingArgs):
    """``pool_size=2, strides=None, padding='valid'`` (an int or a list of one)."""

    pool_size: Ints1 = (2,)
    strides: Ints1 | None = None
    padding: Padding = "valid"


class Pooling2DArgs(_PoolingArgs):
    """``pool_size=(2, 2), strides=None, padding='valid'``."""

    pool_size: Ints2 = (2, 2)
    strides: Ints2 | None = None
    padding: Padding = "valid"


class Pooling3DArgs(_PoolingArgs):
    """``pool_size=(2, 2, 2), strides=None, padding='valid'``."""

    pool_size: Ints3 = (2, 2, 2)
    strides: Ints3 | None = None
    padding: Padding = "valid"


class _Pooling(Layer):
    """Pooling of ``rank`` spatial axes.

    Args:
        pool_size: an int or ``rank`` ints.
        strides: the same, or None (= pool_size).
        padding: 'valid' (windows that fit; sizes floor) or 'same' (output ceil(in/stride)).
    """

    rank: ClassVar[int]

    def __init__(self, pool_size, strides=None, padding: str = "valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_ints(pool_size, self.rank, "pool_size")
        self.strides = (self.pool_size if strides is None
                        else normalize_ints(strides, self.rank, "strides"))
        padding = str(padding).lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding

    def compute_output_shape(self, input_shape):
        out = pooled_shape(self, input_shape, self.rank, self.pool_size, self.strides,
                           self.padding)
        return (input_shape[0], *out, input_shape[-1])

    def _out_shape(self, x):
        return pooled_shape(self, x.shape, self.rank, self.pool_size, self.strides, self.padding)


class _MaxPooling(_Pooling):
    uses_workers = True  # the tiled case runs a chunk of the batch per worker

    def forward(self, x, training=False, rng=None):
        return kernels.max_pool(current_ops(), x, self.pool_size, self.strides, self.padding,
                                self._out_shape(x))


class _AveragePooling(_Pooling):
    def forward(self, x, training=False, rng=None):
        return kernels.average_pool(x, self.pool_size, self.strides, self.padding,
                                    self._out_shape(x))


class MaxPooling1D(_MaxPooling):
    """1-D max pooling (Keras ``MaxPooling1D``) of ``(batch, steps, channels)``."""

    rank = 1

    def __init__(self, pool_size=(2,), strides=None, padding: str = "valid", **kwargs):
        super().__init__(pool_size, strides, padding, **kwargs)


class MaxPooling3D(_MaxPooling):
    """3-D max pooling (Keras ``MaxPooling3D``) of ``(batch, depth, height, width,
    channels)``."""

    rank = 3

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding: str = "valid", **kwargs):
        super().__init__(pool_size, strides, padding, **kwargs)


class AveragePooling1D(_AveragePooling):
    """1-D average pooling (Keras ``AveragePooling1D``) of ``(batch, steps, channels)``."""

    rank = 1

    def __init__(self, pool_size=(2,), strides=None, padding: str = "valid", **kwargs):
        super().__init__(pool_size, strides, padding, **kwargs)


class AveragePooling2D(_AveragePooling):
    """2-D average pooling (Keras ``AveragePooling2D``) of ``(batch, height, width,
    channels)``."""

    rank = 2

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid", **kwargs):
        super().__init__(pool_size, strides, padding, **kwargs)


class AveragePooling3D(_AveragePooling):
    """3-D average pooling (Keras ``AveragePooling3D``) of ``(batch, depth, height, width,
    channels)``."""

    rank = 3

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding: str = "valid", **kwargs):
        super().__init__(pool_size, strides, padding, **kwargs)
