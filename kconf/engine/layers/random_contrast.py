"""RandomContrast: in training, each image's contrast scaled by a random factor about its
mean, ``clip((x − mean) · f + mean, *value_range)`` with the mean over height and width per
channel (Keras 3's ``RandomContrast``); identity in inference."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from kconf.args.fields import config_error
from kconf.args.layer import LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.image_layer import RandomImageLayer
from kconf.text import show


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _factor(value: Any) -> tuple[float, float]:
    """Keras's ``factor``: a number in [0, 1], or two numbers; kept as Keras keeps it, the
    pair (lower, upper) (``factor_bounds``)."""
    if _number(value) and 0 <= value <= 1:
        return factor_bounds(value)
    if (isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_number, value))
            and not (value[0] > 1 or value[1] < 0)):
        return factor_bounds(value)
    raise config_error("factor", "expected a number in [0, 1], or two numbers [lower, upper] "
                                 f"with lower <= 1 and upper >= 0, got {show(value)}")


def _value_range(value: Any) -> tuple[float, float]:
    if (isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_number, value))
            and value[0] < value[1]):
        return (float(value[0]), float(value[1]))
    raise config_error("value_range", "expected two numbers [low, high] with low < high, got "
                                      f"{show(value)}")


_PAIR = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
#: A number in [0, 1] or a pair of numbers, as the pair (lower, upper).
Factor = Annotated[tuple[float, float], PlainValidator(_factor),
                   PlainSerializer(list, when_used="json"),
                   WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "maximum": 1},
                                             _PAIR]})]
#: Two numbers, low < high.
ValueRange = Annotated[tuple[float, float], PlainValidator(_value_range),
                       PlainSerializer(list, when_used="json"), WithJsonSchema(_PAIR)]


class RandomContrastArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})  # kconf draws from the run's rng

    factor: Factor
    value_range: ValueRange = (0.0, 255.0)


def factor_bounds(factor) -> tuple[float, float]:
    """Keras 3.15's ``(lower, upper)`` of a ``factor``: a number f gives (0, f) (so the
    contrast factor is drawn from [1, 1 + f]: it only grows), a pair its sorted values."""
    if isinstance(factor, (list, tuple)):
        lower, upper = sorted(factor)
        return float(lower), float(upper)
    return max(-abs(factor), 0.0), abs(float(factor))


class RandomContrast(RandomImageLayer):
    """Scale each image's contrast at random while training (Keras ``RandomContrast``).

    One contrast factor per image is drawn uniformly from ``[1 − lower, 1 + upper]``
    (``factor_bounds``) with the ``rng`` given to ``forward``; the image's per-channel mean
    over height and width is kept, the result clipped to ``value_range``.

    Args:
        factor: a number in [0, 1] (Keras 3.15 reads f as (0, f)), or two numbers, sorted
            into (lower, upper); kept as that pair, as Keras keeps it.
        value_range: the range the outputs are clipped to (default (0, 255)).
    """

    def __init__(self, factor, value_range=(0.0, 255.0), **kwargs):
        super().__init__(**kwargs)
        self.factor = factor_bounds(factor)
        self.value_range = (float(value_range[0]), float(value_range[1]))

    def augment(self, x, rng):
        lower, upper = self.factor
        f = rng.uniform(1.0 - lower, 1.0 + upper, (x.shape[0], 1, 1, 1)).astype(x.dtype)
        mean = x.mean(axis=(1, 2), keepdims=True)
        z = (x - mean) * f + mean
        lo, hi = (x.dtype.type(v) for v in self.value_range)
        inside = (z >= lo) & (z <= hi)

        def backward(dy):
            g = dy * inside
            return g * f + g.mean(axis=(1, 2), keepdims=True) * (1 - f)

        return xp.clip(z, lo, hi), backward
