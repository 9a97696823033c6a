"""Reusable field types of the config schema and of the layers' argument models, each with a
friendly error message.

Scalars are strict (``units: true`` or ``units: "64"`` is an error, not a silent 1 or 64);
containers are lax (a YAML list validates a tuple field). Every check raises a
``PydanticCustomError`` whose message is already the user-facing text, so the error
converter (``kconf/config/problems.py``) can pass it through. A custom error may carry
``ctx["at"]``, a dotted path below the failing value, to point at the key that is wrong.
The unions of these types (``{Tag: args}`` wrappers, forms told apart by their YAML kind) are
in ``kconf.args.unions``.
"""

import keyword
import math
from typing import Annotated, Any, Iterable, Union

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from kconf.text import show, unknown_name_message

#: Prefix of the error types raised by ``config_error`` (their message is final text).
ERROR_PREFIX = "kconf_"


def config_error(kind: str, message: str, at: str | None = None) -> PydanticCustomError:
    """A validation error whose message is final; ``at`` points below the value (dotted)."""
    return PydanticCustomError(ERROR_PREFIX + kind, message, {"at": at} if at else None)


# --- how a field's value is written in a Keras config ----------------------------------------


class KerasForm:
    """A marker in a field type's ``Annotated`` metadata: how Keras writes that argument
    (``"pair"``, ``"padding"``, ``"activation"``, ``"initializer"``). The Keras import/export
    (``kconf/keras_io/layers.py``) picks each argument's converter from it; a field without a
    marker means the same in both (numbers, booleans, an axis). Pydantic ignores it."""

    def __init__(self, form: str):
        self.form = form

    def __repr__(self) -> str:
        return f"KerasForm({self.form!r})"


# --- the base model -------------------------------------------------------------------------


def _schema_with_aliases(schema: dict[str, Any], cls: type) -> None:
    """Add each field's extra validation aliases (``lr``) to the JSON schema's properties."""
    props = schema.get("properties", {})
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if not isinstance(alias, AliasChoices) or name not in props:
            continue
        for choice in alias.choices:
            if isinstance(choice, str) and choice != name:
                entry = {k: v for k, v in props[name].items() if k not in ("title", "default")}
                entry["description"] = f"alias of {name} (give one of them)"
                props[choice] = entry


class ConfigModel(BaseModel):
    """Base of every config model: frozen, unknown keys rejected."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra=_schema_with_aliases
    )


class DeferredModel(ConfigModel):
    """A config model whose validator is built when it first validates, not at import: the
    argument models of families with many members (layers, optimizers, losses, metrics), so
    that start-up does not grow with the registries."""

    model_config = ConfigDict(**ConfigModel.model_config, defer_build=True)



# --- scalars --------------------------------------------------------------------------------

Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _range_text(kind: type, gt, ge, lt, le) -> str:
    lo = gt if gt is not None else ge
    hi = lt if lt is not None else le
    if lo is not None and hi is not None:
        left = "(" if gt is not None else "["
        right = ")" if lt is not None else "]"
        return f"must be in {left}{_fmt(lo)}, {_fmt(hi)}{right}"
    noun = "integer" if kind is int else "number"
    if gt == 0:
        return f"must be a positive {noun}"
    if ge == 0:
        return f"must be a non-negative {noun}"
    if lo is not None:
        return f"must be {'>' if gt is not None else '>='} {_fmt(lo)}"
    if hi is not None:
        return f"must be {'<' if lt is not None else '<='} {_fmt(hi)}"
    return "must be a finite number"


def bounded(kind: type, *, gt=None, ge=None, lt=None, le=None) -> Any:
    """A strict int or float type with bounds, e.g. ``bounded(int, gt=0)``.

    Args:
        kind: ``int`` or ``float`` (a float field also takes a YAML integer).
        gt, ge, lt, le: the bounds (exclusive / inclusive).

    Returns:
        An ``Annotated`` type whose error reads ``must be in [0, 1), got 1.5``.
    """
    text = _range_text(kind, gt, ge, lt, le)

    def check(given, handler):
        value = handler(given)  # the strict type check (a float field also takes an int)
        ok = math.isfinite(value)
        ok = ok and (gt is None or value > gt) and (ge is None or value >= ge)
        ok = ok and (lt is None or value < lt) and (le is None or value <= le)
        if not ok:
            raise config_error("out_of_range", f"{text}, got {show(given)}")
        return value

    schema: dict[str, Any] = {"type": "integer" if kind is int else "number"}
    for key, bound in (("exclusiveMinimum", gt), ("minimum", ge),
                       ("exclusiveMaximum", lt), ("maximum", le)):
        if bound is not None:
            schema[key] = bound
    return Annotated[kind, Strict(), WrapValidator(check), WithJsonSchema(schema)]


PositiveInt = bounded(int, gt=0)
NonNegativeInt = bounded(int, ge=0)
PositiveFloat = bounded(float, gt=0)
NonNegativeFloat = bounded(float, ge=0)
Fraction = bounded(float, ge=0, lt=1)  # [0, 1)
Number = bounded(float)  # any finite number


def choice(noun: str, names: Iterable[str], *, casefold: bool = False) -> Any:
    """A string that must be one of ``names``; the error suggests the closest one.

    Args:
        noun: what the names are ("activation"), used in the message.
        names: the valid names.
        casefold: accept any case and store the lowercase name (Keras does for padding).

    Returns:
        An ``Annotated`` str type with an ``enum`` JSON schema.
    """
    names = tuple(names)

    def check(value: str) -> str:
        key = value.lower() if casefold else value
        if key not in names:
            raise config_error(f"unknown_{noun.replace(' ', '_')}",
                               unknown_name_message(noun, value, names))
        return key

    return Annotated[str, Strict(), AfterValidator(check),
                     WithJsonSchema({"type": "string", "enum": list(names)})]


# --- shapes and pairs -----------------------------------------------------------------------

#: A shape without the batch axis: positive ints, ``null`` for a dimension of any size.
Shape = Annotated[tuple[Union[PositiveInt, None], ...], Field(min_length=1)]
#: A shape whose every dimension is known.
FixedShape = Annotated[tuple[PositiveInt, ...], Field(min_length=1)]


def _pair(value: Any) -> tuple[int, int]:
    """Keras's int-or-pair argument, normalised to a pair."""
    def positive(v):
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    if positive(value):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(positive(v) for v in value):
        return (value[0], value[1])
    raise config_error("pair", "expected a positive integer or a list of two positive "
                               f"integers, got {show(value)}")


_POSITIVE_INT_SCHEMA = {"type": "integer", "exclusiveMinimum": 0}

#: ``3`` or ``[3, 3]``, validated as ``(3, 3)``.
IntPair = Annotated[
    tuple[int, int],
    PlainValidator(_pair),
    PlainSerializer(list, return_type=list[int], when_used="json"),
    WithJsonSchema({"anyOf": [
        _POSITIVE_INT_SCHEMA,
        {"type": "array", "items": _POSITIVE_INT_SCHEMA, "minItems": 2, "maxItems": 2},
    ]}),
    KerasForm("pair"),
]


def _ints(n: int):
    """Keras's int-or-n-ints argument (Conv1D's ``kernel_size: 3`` or ``[3]``, Conv3D's
    ``[3, 3, 3]``), normalised to an n-tuple."""
    def validate(value: Any) -> tuple[int, ...]:
        def positive(v):
            return isinstance(v, int) and not isinstance(v, bool) and v > 0

        if positive(value):
            return (value,) * n
        if isinstance(value, (list, tuple)) and len(value) == n and all(map(positive, value)):
            return tuple(value)
        raise config_error("ints", f"expected a positive integer or a list of {n} positive "
                                   f"integer{'s' if n > 1 else ''}, got {show(value)}")
    return validate


def int_tuple(n: int) -> Any:
    """The type of an int-or-n-ints argument (``IntPair`` is ``int_tuple(2)``'s sibling)."""
    return Annotated[
        tuple[(int,) * n],
        PlainValidator(_ints(n)),
        PlainSerializer(list, return_type=list[int], when_used="json"),
        WithJsonSchema({"anyOf": [
            _POSITIVE_INT_SCHEMA,
            {"type": "array", "items": _POSITIVE_INT_SCHEMA, "minItems": n, "maxItems": n},
        ]}),
        KerasForm("ints"),
    ]


#: ``3`` or ``[3]``, validated as ``(3,)``.
IntSingle = int_tuple(1)
#: ``3`` or ``[3, 3, 3]``, validated as ``(3, 3, 3)``.
IntTriple = int_tuple(3)


# --- names that graph lines refer to ----------------------------------------------------------

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def is_name(text: str) -> bool:
    """Whether ``text`` can name an input, a layer, a model or a tensor in a graph line."""
    return text.isascii() and text.isidentifier() and not keyword.iskeyword(text)


def _check_name(value: str) -> str:
    if not is_name(value):
        reason = " (a Python keyword)" if keyword.iskeyword(value) else ""
        raise config_error("name", f"{show(value)}{reason} cannot be a name in graph lines: use "
                                   "letters, digits and '_', not starting with a digit")
    return value


#: The name of an input, layer, model or tensor: a Python-style identifier.
Name = Annotated[Str, AfterValidator(_check_name),
                 WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})]


# --- import paths ---------------------------------------------------------------------------

IMPORT_PATH_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"


def is_import_path(text: str) -> bool:
    """Whether ``text`` reads ``package.module:attr`` (syntax only; nothing is imported)."""
    module, sep, attr = text.partition(":")
    if not sep:
        return False
    parts = module.split(".") + attr.split(".")
    return all(p.isidentifier() and not keyword.iskeyword(p) for p in parts)


def check_import_path(value: str) -> str:
    """Raise a friendly error unless ``value`` is a syntactically valid import path."""
    if not is_import_path(value):
        raise config_error("import_path", f"{show(value)} is not a valid import path; "
                                          "write 'package.module:function'")
    return value

