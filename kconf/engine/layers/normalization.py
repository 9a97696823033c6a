"""Normalization: ``(x − mean) / max(sqrt(variance), ε)`` per position of the kept axes
(Keras 3's ``Normalization``, ε = 1e-7); ``invert`` maps back, ``mean + x · max(sqrt(var), ε)``.

The mean and variance are given as arguments, or else are state (``mean``, ``variance``,
``count``: Keras's three non-trainable weights) set by ``adapt`` on data — a run adapts them
on its training split before training (``kconf.train.adapt``). Nothing changes them in a
forward pass.
"""
from __future__ import annotations

from typing import Annotated, Any, Union

import numpy as np
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema, model_validator

from kconf.args.fields import Bool, Number, config_error
from kconf.args.layer import LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.errors import ShapeError
from kconf.shapes import format_shape
from kconf.text import show

EPSILON = 1e-7  # Keras's backend.epsilon()


def _axes(value: Any) -> tuple[int, ...]:
    """An axis, a list of axes or null (one mean for everything) as a tuple of axes."""
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(a, int) and not isinstance(a, bool) and a != 0 for a in items):
        raise config_error("axis", "expected an axis (a nonzero integer; 0 is the batch axis), "
                                   f"a list of them, or null, got {show(value)}")
    return tuple(items)


_AXIS = {"type": "integer", "not": {"const": 0}}
#: The axes kept (one mean per position along them), as Keras's ``axis``.
KeptAxes = Annotated[
    tuple[int, ...],
    PlainValidator(_axes),
    PlainSerializer(list, when_used="json"),
    WithJsonSchema({"anyOf": [_AXIS, {"type": "array", "items": _AXIS}, {"type": "null"}]}),
]
#: A number, or a list of numbers (one per position of the last kept axis, as Keras reads it).
Numbers = Union[Number, tuple[Number, ...]]


class NormalizationArgs(LayerArgs):
    axis: KeptAxes = (-1,)
    mean: Numbers | None = None
    variance: Numbers | None = None
    invert: Bool = False

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.mean is None) != (self.variance is None):
            given, missing = ("mean", "variance") if self.variance is None else ("variance",
                                                                                 "mean")
            raise config_error("normalization", f"{given} is given without {missing}: give "
                                                "both, or neither to adapt them on the "
                                                "training data", at=given)
        if np.shape(self.mean) != np.shape(self.variance):
            raise config_error("normalization", "mean and variance must have the same shape, "
                                                f"got {show(self.mean)} and "
                                                f"{show(self.variance)}", at="variance")
        if self.variance is not None and np.min(self.variance) < 0:
            raise config_error("normalization", "variance must not be negative, got "
                                                f"{show(self.variance)}", at="variance")
        return self


class Normalization(Layer):
    """Standardize the input per position of the kept axes (Keras ``Normalization``).

    Args:
        axis: the kept axis or axes (default -1, the features); ``()``/None for one mean and
            variance over everything.
        mean, variance: a number, or a list with one value per position of the last kept
            axes; None for both: state, set by ``adapt``.
        invert: map normalized values back (``mean + x · max(sqrt(variance), ε)``).
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, axis=(-1,), mean=None, variance=None, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axes(axis)
        if (mean is None) != (variance is None):
            raise ValueError("Normalization takes both mean and variance, or neither")
        self.mean = mean
        self.variance = variance
        self.invert = bool(invert)

    # --- shapes ----------------------------------------------------------------------------
    def _kept(self, input_shape) -> tuple[int, ...]:
        """The kept axes as non-negative indices, sorted; a ShapeError if one is unknown."""
        rank = len(input_shape)
        kept = []
        for a in self.axis:
            d = a + rank if a < 0 else a
            if not 0 < d < rank:
                raise ShapeError(f"Normalization: axis {a} is out of range for input shape "
                                 f"{format_shape(input_shape)} (axis 0 is the batch axis)")
            if input_shape[d] is None:
                raise ShapeError(f"Normalization: the kept axis {a} must have a known size, "
                                 f"input shape {format_shape(input_shape)}")
            kept.append(d)
        return tuple(sorted(set(kept)))

    def compute_output_shape(self, input_shape):
        kept = self._kept(input_shape)
        if self.mean is not None and np.ndim(self.mean):
            sizes = [input_shape[d] for d in kept]
            if not kept or len(self.mean) != sizes[-1]:
                raise ShapeError(f"Normalization: {len(self.mean)} means given, but the last "
                                 f"kept axis has {sizes[-1] if sizes else 'no'} positions "
                                 f"(input shape {format_shape(input_shape)})")
        return tuple(input_shape)

    def weight_specs(self, input_shape):
        if self.mean is not None:
            return []
        shape = tuple(input_shape[d] for d in self._kept(input_shape))
        return [WeightSpec("mean", shape, "zeros", trainable=False),
                WeightSpec("variance", shape, "ones", trainable=False),
                WeightSpec("count", (), "zeros", trainable=False)]

    def _broadcast(self, ndim: int, kept: tuple[int, ...]) -> tuple[int, ...]:
        """Where a value of the kept axes' shape goes in an input of rank ``ndim``."""
        return tuple(slice(None) if d in kept else None for d in range(ndim))

    def _statistics(self, x):
        """(mean, max(sqrt(variance), ε)), shaped to broadcast against x, in x's dtype."""
        kept = self._kept((None, *x.shape[1:]))
        if self.mean is None:
            index = self._broadcast(x.ndim, kept)
            mean, var = self.weights["mean"][index], self.weights["variance"][index]
        else:
            shape = [1] * x.ndim
            if np.ndim(self.mean):
                shape[kept[-1]] = len(self.mean)
            mean = xp.asarray(self.mean, dtype=x.dtype).reshape(shape)
            var = xp.asarray(self.variance, dtype=x.dtype).reshape(shape)
        return mean.astype(x.dtype), xp.maximum(xp.sqrt(var.astype(x.dtype)),
                                                x.dtype.type(EPSILON))

    # --- compute -----------------------------------------------------------------------------
    def forward(self, x, training=False, rng=None):
        mean, scale = self._statistics(x)
        if self.invert:
            y = mean + x * scale

            def backward(dy):
                return dy * scale
        else:
            y = (x - mean) / scale

            def backward(dy):
                return dy / scale

        return y, backward

    def adapt(self, data) -> None:
        """Set the mean and variance to those of ``data`` over every axis but the kept ones
        (Keras's ``adapt`` on an array; its ``count`` stays as it was, as in Keras).

        Args:
            data: an array of inputs, batch first; the layer must be built.
        """
        if self.mean is not None:
            raise ValueError(f"Normalization {self.name!r} was given its mean and variance; "
                             "adapt needs a layer without them")
        if not self.built:
            raise ValueError(f"Normalization {self.name!r} must be built before adapt")
        data = xp.asarray(data, dtype=xp.float64)
        kept = self._kept((None, *data.shape[1:]))
        reduce = tuple(d for d in range(data.ndim) if d not in kept)
        self.weights["mean"][...] = data.mean(axis=reduce)
        self.weights["variance"][...] = data.var(axis=reduce)

    def adapt_batches(self, batches) -> None:
        """``adapt`` on data given batch by batch (a stream larger than memory): the same
        mean and variance, the batches' moments combined in float64 (Chan et al.).

        Args:
            batches: an iterable of input arrays, batch first; the layer must be built.
        """
        if self.mean is not None:
            raise ValueError(f"Normalization {self.name!r} was given its mean and variance; "
                             "adapt needs a layer without them")
        count, mean, m2 = 0, 0.0, 0.0
        for data in batches:
            data = xp.asarray(data, dtype=xp.float64)
            kept = self._kept((None, *data.shape[1:]))
            reduce = tuple(d for d in range(data.ndim) if d not in kept)
            b_mean = data.mean(axis=reduce, keepdims=True)
            b_m2 = ((data - b_mean) ** 2).sum(axis=reduce)
            b_mean = b_mean.reshape(b_m2.shape)
            k = data.size // max(1, b_m2.size)  # values per statistic in this batch
            total = count + k
            delta = b_mean - mean
            mean = mean + delta * (k / total)
            m2 = m2 + b_m2 + delta ** 2 * (count * k / total)
            count = total
        self.weights["mean"][...] = mean
        self.weights["variance"][...] = m2 / count
