"""Turning pydantic's ``ValidationError`` into user-facing ``Problem``s.

pydantic reports a ``loc`` that includes the tags of discriminated unions
(``('compile', 'optimizer', 'SGD', 'SGD', 'learning_rate', 'scalar')``); the layers'
``LazyUnion`` adds none (``('model', 'sequential', 2, 'Dense', 'units')``). ``resolve`` walks
the schema's types along the loc to drop those tags, giving the config path the user wrote
(``model.sequential[2].Dense.units``), and the model class at the end (for valid keys).
"""
from __future__ import annotations

import types
from typing import Annotated, Any, Iterable, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, Discriminator, Tag, ValidationError
from pydantic.fields import FieldInfo

from kconf.args.fields import ERROR_PREFIX
from kconf.args.unions import ByKind, LazyUnion, SingleKey
from kconf.text import show, suggest, unknown_name_message
from kconf.config.source import Source
from kconf.errors import MISSING, UNKNOWN_KEY, ConfigPath, Problem

# --- walking the schema's types along a loc ---------------------------------------------------


def _unwrap(tp: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` (collecting its metadata) and ``Optional``."""
    while True:
        if get_origin(tp) is Annotated:
            inner, *extra = get_args(tp)
            tp, meta = inner, [*extra, *meta]
        elif get_origin(tp) in (Union, types.UnionType) and not _discriminator(meta):
            members = [m for m in get_args(tp) if m is not type(None)]
            if len(members) != 1:
                return tp, meta
            tp = members[0]
        else:
            return tp, meta


def _discriminator(meta: Iterable[Any]) -> SingleKey | None:
    for item in meta:
        if isinstance(item, Discriminator) and isinstance(item.discriminator, SingleKey):
            return item.discriminator
        if isinstance(item, LazyUnion):
            return item.discriminator
    return None


def _lazy(meta: Iterable[Any]) -> LazyUnion | None:
    return next((item for item in meta if isinstance(item, LazyUnion)), None)


def _by_kind(meta: Iterable[Any]) -> ByKind | None:
    for item in meta:
        if isinstance(item, Discriminator) and isinstance(item.discriminator, ByKind):
            return item.discriminator
    return None


def _field(model: type[BaseModel], key: Any) -> FieldInfo | None:
    """The field ``key`` names in ``model``, by name or validation alias."""
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        if key == name or (isinstance(alias, AliasChoices) and key in alias.choices):
            return field
    return None


def _field_type(field: FieldInfo) -> tuple[Any, list[Any]]:
    meta = list(field.metadata)
    if isinstance(field.discriminator, Discriminator):
        meta.append(field.discriminator)
    return field.annotation, meta


def resolve(root: type[BaseModel], loc: Iterable[Any]) -> tuple[ConfigPath, Any, list[Any]]:
    """Follow a pydantic ``loc`` through the schema.

    Args:
        root: the model the loc starts at (``RunConfig``).
        loc: pydantic's error location.

    Returns:
        ``(config path without union tags, type at the end, its Annotated metadata)``; the
        type is a model class where the loc ends at a mapping.
    """
    loc = list(loc)
    tp, meta = root, []
    path: list[str | int] = []
    while loc:
        part = loc[0]
        tp, meta = _unwrap(tp, meta)
        origin = get_origin(tp)
        lazy = _lazy(meta)
        if lazy is not None:  # a lazy union: no tag in the loc, the member's key is the tag
            if part not in lazy.members:
                break
            tp, meta = lazy.members[part], []
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = _field(tp, part)
            if field is None:
                break
            tp, meta = _field_type(field)
        elif origin in (Union, types.UnionType):  # a tagged union: the part is the tag
            tagged = {_tag(m): m for m in get_args(tp)}
            if part not in tagged:
                break
            tp, meta = tagged[part], []
            loc.pop(0)
            continue
        elif origin in (list, tuple) and isinstance(part, int):
            args = get_args(tp)
            variadic = origin is list or (len(args) == 2 and args[1] is Ellipsis)
            tp = args[0] if variadic else (args[part] if part < len(args) else Any)
            meta = []
        elif origin is dict:
            tp, meta = get_args(tp)[1], []
        else:
            break
        path.append(part)
        loc.pop(0)
    path.extend(loc)
    tp, meta = _unwrap(tp, meta)
    return tuple(path), tp, meta


def _tag(member: Any) -> str | None:
    if get_origin(member) is Annotated:
        for item in get_args(member)[1:]:
            if isinstance(item, Tag):
                return item.tag
    return None


# --- messages ---------------------------------------------------------------------------------

_TYPE_MESSAGES = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
}


def _valid_keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts, its own fields first, then aliases."""
    own = dict(model.__dict__.get("__annotations__", {}))
    if getattr(model, "weight_option_fields", ()):  # generated onto the layer's own model
        own = {**model.__mro__[1].__dict__.get("__annotations__", {}), **own}
    names = sorted(model.model_fields, key=lambda n: n not in own)
    for field in model.model_fields.values():
        if isinstance(field.validation_alias, AliasChoices):
            names += [c for c in field.validation_alias.choices
                      if isinstance(c, str) and c not in names]
    return names


def _unknown_key_message(model: Any, key: str) -> str:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"unknown key {key!r}"
    hints = getattr(model, "key_hints", {})
    if key in hints:
        return hints[key]
    field = _field(model, key)
    if field is not None:  # an alias given next to its field (lr and learning_rate)
        name = next(n for n, f in model.model_fields.items() if f is field)
        return f"give {name} or its alias {key}, not both"
    valid = _valid_keys(model)
    message = f"unknown key {key!r}"
    close = suggest(key, valid)
    if close is not None:
        message += f" (did you mean {close!r}?)"
    if valid:
        return message + f"; valid keys: {', '.join(valid)}"
    return message + "; this takes no arguments"


def _sub_path(at: str, base: ConfigPath, source: Source) -> ConfigPath:
    """The config path of ``ctx["at"]`` (dotted, below ``base``): a part of digits is a list
    index, unless the file has it as a mapping key (YAML's ``{0: 1.0}``: keys arrive as
    text, so ``fit.class_weight.0``, where the key is)."""
    path = base
    for part in at.split("."):
        is_key = source.key_pos((*path, part)) is not None
        path = (*path, int(part) if part.isdigit() and not is_key else part)
    return path


def convert_error(error: dict[str, Any], root: type[BaseModel], source: Source) -> Problem:
    """One pydantic error (an item of ``ValidationError.errors()``) as a ``Problem``.

    Args:
        error: the pydantic error dict.
        root: the validated model class.
        source: positions of the config's keys and values.

    Returns:
        The problem, with config path, position, a friendly message, and its kind: pydantic's
        error type, but ``UNKNOWN_KEY`` and ``MISSING`` (with the key) for a key too many or
        too few.
    """
    kind = error["type"]
    loc = tuple(error["loc"])
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        path, model, _ = resolve(root, loc[:-1])
        key = str(loc[-1])
        return Problem(_unknown_key_message(model, key), path,
                       source.locate_key((*path, key)), UNKNOWN_KEY, key)
    if kind == "missing":
        path, _, _ = resolve(root, loc[:-1])
        noun = "section" if not path else "key"
        return Problem(f"missing required {noun} {loc[-1]!r}", path, source.locate(path),
                       MISSING, str(loc[-1]))
    if loc and loc[-1] == "[key]":  # a mapping key that is not a valid name
        path, _, _ = resolve(root, loc[:-1])
        return Problem(_message(kind, error, value, ctx), path, source.locate_key(path), kind)
    path, _, meta = resolve(root, loc)
    if kind == "union_tag_not_found" and _by_kind(meta) is not None:
        return Problem(f"expected {_by_kind(meta).expected}, got {show(value)}", path,
                       source.locate(path), kind)
    disc = _discriminator(meta)
    if kind == "union_tag_invalid" and disc is not None:
        tag = ctx.get("tag")
        return Problem(unknown_name_message(disc.noun, tag, disc.names), path,
                       source.locate_key((*path, tag)), kind, tag)
    if kind == "union_tag_not_found" and disc is not None:
        return Problem(disc.shape_message(value), path, source.locate(path), kind)
    if "at" in ctx:
        path = _sub_path(ctx["at"], path, source)
        return Problem(error["msg"], path, source.locate_key(path), kind)
    return Problem(_message(kind, error, value, ctx), path, source.locate(path), kind)


def _message(kind: str, error: dict[str, Any], value: Any, ctx: dict[str, Any]) -> str:
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, got {show(value)}"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length" if kind == "too_short" else "max_length")
        if kind == "too_short" and bound == 1:
            return "must not be empty"
        word = "least" if kind == "too_short" else "most"
        items = "item" if bound == 1 else "items"
        return f"expected at {word} {bound} {items}, got {ctx.get('actual_length')}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {show(value)}"
    message = error["msg"]
    if kind.startswith(ERROR_PREFIX):  # raised by fields.config_error: final text
        return message
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return f"{message[:1].lower()}{message[1:]}, got {show(value)}"


def problems_from(error: ValidationError, root: type[BaseModel], source: Source,
                  poisoned: Iterable[ConfigPath] = ()) -> list[Problem]:
    """Every error of a ``ValidationError`` as a ``Problem`` (unsorted, duplicates removed).

    Args:
        error: what ``root.model_validate`` raised.
        root: the validated model class.
        source: positions of the config's keys and values.
        poisoned: paths whose value could not be read; errors at or under them are dropped.

    Returns:
        The problems.
    """
    poisoned = tuple(poisoned)
    out: list[Problem] = []
    for item in error.errors():
        problem = convert_error(item, root, source)
        if any(problem.path[:len(p)] == p for p in poisoned):
            continue
        if problem not in out:
            out.append(problem)
    return out
