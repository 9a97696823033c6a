"""Field types of the pooling and shape layers' arguments: Keras's int-or-tuple sizes for any
number of spatial axes, padding and cropping amounts, target shapes, permutations and the
upsampling interpolation.

Each validates what Keras accepts and stores one normal form (a tuple of ``n`` ints, or of
``n`` ``(before, after)`` pairs), so the engine layer gets one shape of value however the
YAML wrote it. Their ``KerasForm`` is ``"ints"`` (a Keras config writes them as nested
lists of ints, normalised the same way) or ``"interpolation"``.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from kconf.args.fields import KerasForm, config_error
from kconf.text import show, unknown_name_message

#: The interpolations of UpSampling2D kconf implements (Keras also has bicubic, lanczos3,
#: lanczos5 and area).
INTERPOLATION_NAMES: tuple[str, ...] = ("nearest", "bilinear")


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _lists(value: Any) -> Any:
    """Nested tuples as nested lists (the JSON form)."""
    return [_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _int_schema(low: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low}


def int_tuple(n: int, *, low: int = 1) -> Any:
    """Keras's int-or-tuple size for ``n`` axes (``pool_size: 2`` or ``[2, 2, 2]``).

    Args:
        n: the number of axes.
        low: the smallest value allowed.

    Returns:
        An ``Annotated`` type validated as a tuple of ``n`` ints.
    """
    noun = "a positive integer" if low == 1 else f"an integer >= {low}"
    many = "positive integers" if low == 1 else f"integers >= {low}"

    def check(value: Any) -> tuple[int, ...]:
        if _is_int(value, low):
            return (value,) * n
        if isinstance(value, (list, tuple)) and len(value) == n and all(
                _is_int(v, low) for v in value):
            return tuple(value)
        raise config_error("int_tuple", f"expected {noun} or a list of {n} {many}, got "
                                        f"{show(value)}")

    item = _int_schema(low)
    return Annotated[
        tuple[int, ...],
        PlainValidator(check),
        PlainSerializer(list, return_type=list[int], when_used="json"),
        WithJsonSchema({"anyOf": [item, {"type": "array", "items": item, "minItems": n,
                                         "maxItems": n}]}),
        KerasForm("ints"),
    ]


def _pair(value: Any) -> tuple[int, int] | None:
    """A non-negative int (symmetric) or a pair of them as ``(before, after)``, else None."""
    if _is_int(value, 0):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v, 0) for v in value):
        return (value[0], value[1])
    return None


def amounts(n: int) -> Any:
    """Keras's padding or cropping of ``n`` spatial axes: an int (the same on every side),
    ``n`` ints (symmetric per axis) or ``n`` pairs ``[before, after]``; for one axis, an int
    or one pair ``[before, after]``.

    Args:
        n: the number of spatial axes.

    Returns:
        An ``Annotated`` type validated as ``(before, after)`` for ``n == 1``, else a tuple
        of ``n`` such pairs.
    """
    def check(value: Any) -> Any:
        if n == 1:
            pair = _pair(value)
            if pair is not None:
                return pair
            raise config_error("amounts", "expected a non-negative integer or a list of two "
                                          f"[before, after], got {show(value)}")
        if _is_int(value, 0):
            return ((value, value),) * n
        if isinstance(value, (list, tuple)) and len(value) == n:
            pairs = tuple(_pair(v) for v in value)
            if all(p is not None for p in pairs):
                return pairs
        raise config_error("amounts", f"expected a non-negative integer, a list of {n} "
                                      f"(one per axis) or a list of {n} [before, after] "
                                      f"pairs, got {show(value)}")

    item = _int_schema(0)
    pair = {"type": "array", "items": item, "minItems": 2, "maxItems": 2}
    if n == 1:
        schema = {"anyOf": [item, pair]}
    else:
        schema = {"anyOf": [item, {"type": "array", "items": {"anyOf": [item, pair]},
                                   "minItems": n, "maxItems": n}]}
    return Annotated[tuple[Any, ...], PlainValidator(check),
                     PlainSerializer(_lists, when_used="json"), WithJsonSchema(schema),
                     KerasForm("ints")]


def _target_shape(value: Any) -> tuple[int, ...]:
    """Reshape's ``target_shape``: positive ints and at most one -1."""
    if isinstance(value, (list, tuple)) and value and all(
            _is_int(v, 1) or (_is_int(v, -1) and v == -1) for v in value):
        if list(value).count(-1) > 1:
            raise config_error("target_shape", "only one dimension of target_shape can be -1 "
                                               f"(inferred), got {show(list(value))}")
        return tuple(value)
    raise config_error("target_shape", "expected a list of positive integers, one of which may "
                                       f"be -1 (inferred), got {show(value)}")


#: Reshape's target shape (without the batch axis).
TargetShape = Annotated[
    tuple[int, ...], PlainValidator(_target_shape),
    PlainSerializer(list, return_type=list[int], when_used="json"),
    WithJsonSchema({"type": "array", "minItems": 1, "items": {"anyOf": [
        {"type": "integer", "minimum": 1}, {"const": -1}]}}),
]


def _permutation(value: Any) -> tuple[int, ...]:
    """Permute's ``dims``: a permutation of 1..k (the batch axis stays first)."""
    if isinstance(value, (list, tuple)) and value and all(_is_int(v, 0) for v in value) \
            and sorted(value) == list(range(1, len(value) + 1)):
        return tuple(value)
    raise config_error("dims", "expected a permutation of the axes 1..k of one sample (the "
                               f"batch axis 0 stays first), like [2, 1], got {show(value)}")


#: Permute's dims, 1-based.
Permutation = Annotated[
    tuple[int, ...], PlainValidator(_permutation),
    PlainSerializer(list, return_type=list[int], when_used="json"),
    WithJsonSchema({"type": "array", "minItems": 1, "uniqueItems": True,
                    "items": {"type": "integer", "minimum": 1}}),
]

#: Keras's other interpolations, which kconf refuses by name.
KERAS_ONLY_INTERPOLATIONS: tuple[str, ...] = ("bicubic", "lanczos3", "lanczos5", "area")


def interpolation_problem(value: Any) -> str | None:
    """Why ``value`` is not an interpolation kconf has (None when it is one, any case)."""
    if isinstance(value, str) and value.lower() in INTERPOLATION_NAMES:
        return None
    if isinstance(value, str) and value.lower() in KERAS_ONLY_INTERPOLATIONS:
        return (f"interpolation {value!r} is not supported by kconf (only "
                f"{' and '.join(INTERPOLATION_NAMES)})")
    return unknown_name_message("interpolation", str(value), INTERPOLATION_NAMES)


def _interpolation(value: Any) -> str:
    if not isinstance(value, str):
        raise config_error("interpolation", f"expected an interpolation name "
                                            f"({' or '.join(INTERPOLATION_NAMES)}), got "
                                            f"{show(value)}")
    problem = interpolation_problem(value)
    if problem is not None:
        raise config_error("interpolation", problem)
    return value.lower()


#: UpSampling2D's interpolation, any case.
Interpolation = Annotated[str, PlainValidator(_interpolation),
                          WithJsonSchema({"type": "string", "enum": list(INTERPOLATION_NAMES)}),
                          KerasForm("interpolation")]


__all__ = ["INTERPOLATION_NAMES", "KERAS_ONLY_INTERPOLATIONS", "Interpolation", "Permutation",
           "TargetShape", "amounts", "int_tuple", "interpolation_problem"]
