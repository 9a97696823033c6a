"""Zeros added around, or cells cut from, the spatial axes (channels-last): ZeroPadding1D/2D/3D
and Cropping1D/2D/3D.

The amounts are ``(before, after)`` per spatial axis (for 1-D, the one pair). Backward of a
padding is the crop of dy, and of a crop dy written into zeros.
"""
from __future__ import annotations

from typing import ClassVar

from kconf.args.layer import LayerArgs
from kconf.args.shape_fields import amounts
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, require_rank
from kconf.errors import ShapeError
from kconf.shapes import format_shape

_WHAT = {1: "sequences (batch, steps, channels)",
         2: "images (batch, height, width, channels)",
         3: "volumes (batch, depth, height, width, channels)"}
_AXES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}

Amounts1, Amounts2, Amounts3 = amounts(1), amounts(2), amounts(3)


def normalize_amounts(value, n: int, what: str) -> tuple:
    """Keras's int / n ints / n pairs (for n == 1: int or one pair) as ``n`` (before, after)
    pairs."""
    def pair(v):
        p = (v, v) if isinstance(v, int) else tuple(v)
        if len(p) != 2 or not all(isinstance(i, int) and i >= 0 for i in p):
            raise ValueError(f"{what}: expected non-negative ints, got {value!r}")
        return p

    if n == 1:
        return (pair(value),)
    if isinstance(value, int):
        return (pair(value),) * n
    if len(value) != n:
        raise ValueError(f"{what}: expected an int or {n} entries, got {value!r}")
    return tuple(pair(v) for v in value)


class _Amounts(Layer):
    """A layer that pads or crops ``rank`` spatial axes by ``self.pairs``."""

    rank: ClassVar[int]

    def _check_rank(self, input_shape) -> None:
        require_rank(self, input_shape, self.rank + 2, _WHAT[self.rank])


# --- zero padding ------------------------------------------------------------------------------


class ZeroPadding1DArgs(LayerArgs):
    """``padding=1``: an int, or ``[before, after]``."""

    keras_channels_last: ClassVar[bool] = True  # Keras 3's ZeroPadding1D has data_format

    padding: Amounts1 = (1, 1)


class ZeroPadding2DArgs(LayerArgs):
    """``padding=(1, 1)``: an int, ``[rows, cols]`` or ``[[top, bottom], [left, right]]``."""

    keras_channels_last: ClassVar[bool] = True

    padding: Amounts2 = ((1, 1), (1, 1))


class ZeroPadding3DArgs(LayerArgs):
    """``padding=(1, 1, 1)``: an int, three ints or three ``[before, after]`` pairs."""

    keras_channels_last: ClassVar[bool] = True

    padding: Amounts3 = ((1, 1), (1, 1), (1, 1))


class _ZeroPadding(_Amounts):
    """Zeros before and after each spatial axis.

    Args:
        padding: an int, ``rank`` ints or ``rank`` (before, after) pairs.
    """

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        self.pairs = normalize_amounts(padding, self.rank, "padding")
        self.padding = self.pairs[0] if self.rank == 1 else self.pairs

    def compute_output_shape(self, input_shape):
        self._check_rank(input_shape)
        spatial = (None if d is None else d + before + after
                   for d, (before, after) in zip(input_shape[1:-1], self.pairs))
        return (input_shape[0], *spatial, input_shape[-1])

    def forward(self, x, training=False, rng=None):
        y = xp.zeros((x.shape[0], *(d + before + after for d, (before, after) in zip(
            x.shape[1:-1], self.pairs)), x.shape[-1]), dtype=x.dtype)
        inside = _inside(x.shape[1:-1], self.pairs)
        y[inside] = x

        def backward(dy):
            return dy[inside].copy()

        return y, backward


def _inside(spatial, pairs) -> tuple[slice, ...]:
    """The slices of a padded array (batch, *spatial + padding, channels) that hold the input."""
    return (slice(None), *(slice(before, before + d) for d, (before, _) in zip(spatial, pairs)))


class ZeroPadding1D(_ZeroPadding):
    """Keras ``ZeroPadding1D``: zeros before and after the steps."""

    rank = 1

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(padding, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Keras ``ZeroPadding2D``: zero rows above and below, columns left and right."""

    rank = 2

    def __init__(self, padding=((1, 1), (1, 1)), **kwargs):
        super().__init__(padding, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Keras ``ZeroPadding3D``: zeros around depth, height and width."""

    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), **kwargs):
        super().__init__(padding, **kwargs)


# --- cropping ----------------------------------------------------------------------------------


class Cropping1DArgs(LayerArgs):
    """``cropping=(1, 1)``: an int, or ``[before, after]``."""

    cropping: Amounts1 = (1, 1)


class Cropping2DArgs(LayerArgs):
    """``cropping=((0, 0), (0, 0))``: an int, ``[rows, cols]`` or ``[[top, bottom], [left,
    right]]``."""

    keras_channels_last: ClassVar[bool] = True

    cropping: Amounts2 = ((0, 0), (0, 0))


class Cropping3DArgs(LayerArgs):
    """``cropping=((1, 1), (1, 1), (1, 1))``: an int, three ints or three pairs."""

    keras_channels_last: ClassVar[bool] = True

    cropping: Amounts3 = ((1, 1), (1, 1), (1, 1))


class _Cropping(_Amounts):
    """Cells cut before and after each spatial axis; at least one must be left.

    Args:
        cropping: an int, ``rank`` ints or ``rank`` (before, after) pairs.
    """

    def __init__(self, cropping, **kwargs):
        super().__init__(**kwargs)
        self.pairs = normalize_amounts(cropping, self.rank, "cropping")
        self.cropping = self.pairs[0] if self.rank == 1 else self.pairs

    def compute_output_shape(self, input_shape):
        self._check_rank(input_shape)
        spatial = []
        for axis, d, (before, after) in zip(_AXES[self.rank], input_shape[1:-1], self.pairs):
            if d is not None and before + after >= d:
                raise ShapeError(
                    f"{type(self).__name__}: cropping {before} + {after} leaves nothing of the "
                    f"input {axis} {d} (input shape {format_shape(input_shape)})")
            spatial.append(None if d is None else d - before - after)
        return (input_shape[0], *spatial, input_shape[-1])

    def forward(self, x, training=False, rng=None):
        self.compute_output_shape((None, *x.shape[1:]))
        kept = (slice(None), *(slice(before, d - after) for d, (before, after) in zip(
            x.shape[1:-1], self.pairs)))
        y = x[kept].copy()

        def backward(dy):
            dx = xp.zeros(x.shape, dtype=dy.dtype)
            dx[kept] = dy
            return dx

        return y, backward


class Cropping1D(_Cropping):
    """Keras ``Cropping1D``: steps cut from the start and the end."""

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, **kwargs)


class Cropping2D(_Cropping):
    """Keras ``Cropping2D``: rows cut from the top and bottom, columns from left and right
    (by default none, as in Keras)."""

    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(cropping, **kwargs)


class Cropping3D(_Cropping):
    """Keras ``Cropping3D``: cells cut around depth, height and width."""

    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), **kwargs):
        super().__init__(cropping, **kwargs)
