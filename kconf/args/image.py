"""Argument types of the image augmentation layers (``RandomTranslation``, ``RandomRotation``,
``RandomZoom``): Keras's signed factors and the fill and interpolation arguments they share."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Union

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from kconf.args.fields import Number, choice, config_error
from kconf.args.layer import LayerArgs
from kconf.text import show

#: ``fill_mode`` values (``kconf.engine.images.FILL_MODES``).
FILL_MODES = ("reflect", "wrap", "constant", "nearest")
#: ``interpolation`` values of the affine layers.
AFFINE_INTERPOLATIONS = ("bilinear", "nearest")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def signed_factor(lowest_open: bool = False, as_pair: bool = False) -> Any:
    """Keras's ``factor`` of the affine layers: a number f in [-1, 1] (meaning (−|f|, |f|))
    or two numbers in [-1, 1] (sorted into (lower, upper)).

    Args:
        lowest_open: -1 itself is refused (RandomZoom: a zoom of 1 + (-1) is 0).
        as_pair: kept as the pair (lower, upper), as Keras keeps RandomRotation's; otherwise
            as written, as Keras keeps RandomTranslation's and RandomZoom's.
    """
    low = "(-1" if lowest_open else "[-1"

    def ok(v):
        return _number(v) and (v > -1 if lowest_open else v >= -1) and v <= 1

    def check(value: Any) -> Any:
        if ok(value):
            return bounds(value) if as_pair else float(value)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(map(ok, value)):
            return bounds(value) if as_pair else (float(value[0]), float(value[1]))
        raise config_error("factor", f"expected a number in {low}, 1], or two such numbers "
                                     f"[lower, upper], got {show(value)}")

    bound = ({"exclusiveMinimum": -1} if lowest_open else {"minimum": -1}) | {"maximum": 1}
    number = {"type": "number", **bound}
    return Annotated[Union[float, tuple[float, float]], PlainValidator(check),
                     PlainSerializer(lambda v: list(v) if isinstance(v, tuple) else v,
                                     when_used="json"),
                     WithJsonSchema({"anyOf": [number, {"type": "array", "items": number,
                                                        "minItems": 2, "maxItems": 2}]})]


def bounds(factor) -> tuple[float, float]:
    """(lower, upper) of a signed factor: (−|f|, |f|) for a number, a pair sorted."""
    if isinstance(factor, (list, tuple)):
        lower, upper = sorted(factor)
        return float(lower), float(upper)
    return -abs(float(factor)), abs(float(factor))


class AffineArgs(LayerArgs):
    """The arguments Keras's affine augmentation layers share (after their factors)."""

    keras_channels_last: ClassVar[bool] = True
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})  # kconf draws from the run's rng

    fill_mode: choice("fill_mode", FILL_MODES) = "reflect"
    interpolation: choice("interpolation", AFFINE_INTERPOLATIONS) = "bilinear"
    fill_value: Number = 0.0
