"""Tagged unions of the config schema: single-key wrappers ``{Tag: args}`` (``TaggedSpec``)
told apart by their key (``SingleKey``), unions told apart by the YAML kind of the value
(``by_kind``), and the lazy union whose members are built when a config names them
(``LazyUnion``: layers, optimizers, losses, metrics ...), so that start-up does not grow with
the registries.
"""

import importlib
from typing import Annotated, Any, Callable, Iterable, Mapping, Union

from pydantic import BaseModel, BeforeValidator, Discriminator, Tag, TypeAdapter, create_model
from pydantic_core import PydanticKnownError, core_schema

from kconf.args.fields import ConfigModel
from kconf.args.lazy import LazyMembers
from kconf.text import show


class SingleKey:
    """Discriminator of a union of single-key mappings (``{Dense: {...}}``): the tag is the key.

    A string value gets ``str_tag`` when the union has a plain-name member. ``noun``,
    ``names`` and ``example`` make the error messages.
    """

    def __init__(self, noun: str, names: Iterable[str], example: str,
                 str_tag: str | None = None):
        self.noun = noun
        self.names = tuple(names)
        self.example = example
        self.str_tag = str_tag
        self.__name__ = f"{noun.replace(' ', '_')}_key"  # pydantic-core names it in messages

    def __call__(self, value: Any) -> str | None:
        if isinstance(value, str) and self.str_tag is not None:
            return self.str_tag
        if isinstance(value, dict) and len(value) == 1:
            return str(next(iter(value)))
        if isinstance(value, BaseModel):  # serialisation: the wrapper's single field
            return next(iter(type(value).model_fields))
        return None

    def shape_message(self, value: Any) -> str:
        """Why ``value`` is not one ``{Name: args}`` mapping."""
        if isinstance(value, dict) and value:
            keys = ", ".join(repr(str(k)) for k in value)
            return f"expected one {self.noun} per mapping, like {self.example}; got keys {keys}"
        what = "an empty mapping" if isinstance(value, dict) else show(value)
        article = "an" if self.noun[0] in "aeiou" else "a"
        return f"expected {article} {self.noun} as a mapping like {self.example}, got {what}"

    def __repr__(self) -> str:
        return f"SingleKey({self.noun!r})"


class ByKind:
    """Discriminator of a union told apart by the YAML kind of the value.

    The tag is ``"mapping"`` for a mapping, ``"list"`` for a list and ``"scalar"`` for anything
    else; a kind the union has no member for gets no tag, and the error converter says
    ``expected <expected>, got ...``.
    """

    def __init__(self, kinds: Iterable[str], expected: str):
        self.kinds = tuple(kinds)
        self.expected = expected
        self.__name__ = "yaml_kind"

    def __call__(self, value: Any) -> str | None:
        if isinstance(value, (dict, BaseModel)):
            kind = "mapping"
        elif isinstance(value, (list, tuple)):
            kind = "list"
        else:
            kind = "scalar"
        return kind if kind in self.kinds else None

    def __repr__(self) -> str:
        return f"ByKind({self.kinds!r})"


_KIND_WORDS = {"scalar": "a name", "list": "a list", "mapping": "a mapping"}


def by_kind(expected: str | None = None, **members: Any) -> Any:
    """A union of a scalar, a list and/or a mapping form, told apart by the value's YAML kind.

    Args:
        expected: what the error says is expected (default: "a name, a list or a mapping"
            for the kinds given).
        members: ``scalar=``, ``list=``, ``mapping=`` -> the type of that form.

    Returns:
        An ``Annotated`` union whose errors name the form's own path (the tag is dropped).
    """
    if expected is None:
        words = [_KIND_WORDS[k] for k in members]
        expected = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    tagged = tuple(Annotated[tp, Tag(kind)] for kind, tp in members.items())
    return Annotated[Union[tagged], Discriminator(ByKind(members, expected))]


def tagged_union(discriminator: SingleKey, members: dict[str, Any]) -> Any:
    """``Annotated[Union[...], Discriminator]`` over ``members`` (tag -> type), built once."""
    tagged = tuple(Annotated[tp, Tag(tag)] for tag, tp in members.items())
    return Annotated[Union[tagged], Discriminator(discriminator)]


class LazyUnion:
    """A tagged union of single-key mappings whose members are built when a value names them.

    ``tagged_union`` needs every member's schema up front; this validates a value by its tag
    alone, building (through ``members``, a mapping that creates each member on first look-up)
    only the members a config names. A wrong tag or shape raises pydantic's own
    ``union_tag_invalid``/``union_tag_not_found``, and a member's errors keep their place
    below the union (without the tag pydantic's union adds: the member's key is the tag).
    Serialisation infers each value's own model; the JSON schema is the full union's.
    """

    def __init__(self, discriminator: SingleKey, members: Mapping[str, Any]):
        self.discriminator = discriminator
        self.members = members
        self._validators: dict[str, Any] = {}

    def _validator(self, tag: str) -> Any:
        validate = self._validators.get(tag)
        if validate is None:
            member = self.members[tag]
            if isinstance(member, type) and issubclass(member, BaseModel):
                validate = member.model_validate
            else:
                validate = TypeAdapter(member).validate_python
            self._validators[tag] = validate
        return validate

    def _error_ctx(self) -> dict[str, Any]:
        return {"discriminator": f"{self.discriminator.__name__}()"}

    def validate(self, value: Any) -> Any:
        """``value`` validated as the member its tag names."""
        tag = self.discriminator(value)
        if tag is None:
            raise PydanticKnownError("union_tag_not_found", self._error_ctx())
        if tag not in self.members:
            expected = ", ".join(repr(t) for t in self.members)
            raise PydanticKnownError("union_tag_invalid", {
                **self._error_ctx(), "tag": tag, "expected_tags": expected})
        return self._validator(tag)(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return core_schema.no_info_plain_validator_function(self.validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        """The union's schema, ``oneOf`` every member; a member whose schema is being written
        (TimeDistributed's inside itself) is a reference to it."""
        generate = handler.generate_json_schema.generate_inner  # with each schema's own metadata
        choices = []
        for member in self.members.values():
            if not (isinstance(member, type) and issubclass(member, BaseModel)):
                choices.append(generate(TypeAdapter(member).core_schema))
                continue
            ref = _core_ref(member.__pydantic_core_schema__)
            if ref in _IN_JSON_SCHEMA:
                choices.append(generate(core_schema.definition_reference_schema(ref)))
                continue
            _IN_JSON_SCHEMA.add(ref)
            try:
                choices.append(generate(member.__pydantic_core_schema__))
            finally:
                _IN_JSON_SCHEMA.discard(ref)
        return {"oneOf": choices}

    def __repr__(self) -> str:
        return f"LazyUnion({self.discriminator!r})"


#: Refs of the members whose JSON schema is being written (a member inside itself refers to
#: it).
_IN_JSON_SCHEMA: set[str] = set()


def _core_ref(schema: Any) -> str:
    """The ``ref`` of a model's core schema (also when wrapped in its definitions)."""
    while "ref" not in schema:
        if "schema_ref" in schema:
            return schema["schema_ref"]
        schema = schema["schema"]
    return schema["ref"]


def lazy_union(discriminator: SingleKey, members: Mapping[str, Any]) -> Any:
    """A ``LazyUnion`` over ``members`` (tag -> type, built on look-up) as a field type."""
    return Annotated[Any, LazyUnion(discriminator, members)]


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


def args_of(cls: type) -> Any:
    """The type of a wrapper's single field: ``cls``, with ``null`` meaning ``{}``."""
    return Annotated[cls, BeforeValidator(_none_as_empty, json_schema_input_type=Union[cls, None])]


class TaggedSpec(ConfigModel):
    """A single-key wrapper ``{Tag: args}``; subclasses declare exactly one field."""

    @property
    def tag(self) -> str:
        """The wrapper's key (``Dense``, ``random``, ``SGD``...)."""
        return next(iter(type(self).model_fields))

    @property
    def args(self) -> Any:
        """The validated arguments under the key."""
        return getattr(self, self.tag)


# --- families of wrappers, each made when a config first names it ------------------------------


class Wrappers(LazyMembers):
    """Tag -> the wrapper ``{tag: args}`` of each member of a family (``SGDSpec``,
    ``RandomSource``): a ``base`` subclass named ``name(tag)`` in ``module``, whose field is
    the argument model ``args(tag)``. Tags and names are known up front; a wrapper and its
    argument model are built on its first look-up, so start-up does not grow with the family.

    Args:
        base: the wrappers' base class (a ``TaggedSpec``).
        module: the module whose name the wrappers are (``wrapper_lookup`` finds them there).
        tags: the family's tags, in the order schemas and messages list them.
        args: tag -> its argument model (``imported`` for models in other modules).
        name: tag -> the wrapper's class name (default ``<tag>Spec``).
        null_is_empty: whether ``{tag: null}`` means ``{tag: {}}`` (``args_of``).
    """

    def __init__(self, base: type[TaggedSpec], module: str, tags: Iterable[str],
                 args: Callable[[str], type], name: Callable[[str], str] = "{}Spec".format,
                 null_is_empty: bool = True):
        field = args_of if null_is_empty else (lambda cls: cls)
        super().__init__(tags, lambda tag: create_model(
            name(tag), __base__=base, __module__=module, **{tag: (field(args(tag)), ...)}))
        self.name = name

    def by_name(self, name: str) -> type[TaggedSpec] | None:
        """The wrapper whose class name is ``name`` (built now), or None."""
        tag = next((t for t in self if self.name(t) == name), None)
        return None if tag is None else self[tag]


def wrapper_lookup(module: str, *families: Wrappers) -> Callable[[str], Any]:
    """A module's ``__getattr__`` that finds its families' wrappers by class name
    (``kconf.config.layers.DenseSpec``): pickle and copy find a class by its module and name,
    so a validated config pickles (Ray, processes) whatever was built before."""
    def __getattr__(name: str) -> Any:
        for family in families:
            found = family.by_name(name)
            if found is not None:
                return found
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return __getattr__


def imported(paths: Mapping[str, str]) -> Callable[[str], type]:
    """Tag -> the class at ``paths[tag]`` (``package.module:Class``), whose module is imported
    on the first look-up: argument models that ``Wrappers`` builds only when named."""
    def load(tag: str) -> type:
        module, _, name = paths[tag].partition(":")
        return getattr(importlib.import_module(module), name)
    return load


def or_name(tag: str, name: Any, members: Mapping[str, Any]) -> LazyMembers:
    """The members of a lazy union whose value may also be a plain name (``glorot_uniform``,
    a model's name): ``members``, and ``name`` (the names' type) under ``tag``, the union's
    ``SingleKey(str_tag=tag)``."""
    return LazyMembers((tag, *members), lambda t: name if t == tag else members[t])
