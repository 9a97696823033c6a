"""Keras layer arguments <-> kconf layer arguments: one ``Rule`` per layer class kconf has.

kconf's argument names, meanings and defaults are Keras's, so most values pass through; a
few need translating both ways (activations, initializers, int-or-pair sizes: the converters of
``kconf.keras_io.converters`` and ``kconf.keras_io.initializers``). The rules are
derived from each layer's argument model (``kconf.engine.layers.REGISTRY``): the converter
from the field's type, the exceptions from the model's ``keras_*`` ClassVars (see
``kconf.args.layer.LayerArgs``). Every key of a Keras layer config is one of:

- an argument kconf implements (``Rule.args``): imported, and written to YAML only when it
  differs from kconf's default (the config schema's, which are Keras's);
- a Keras argument kconf implements only at the value(s) in ``Rule.fixed``
  (``kernel_regularizer: null``, ``dilation_rate: [1, 1]``): any other value is reported;
- an argument that changes no number (``Rule.ignored``, ``COMMON_IGNORED``: a name, a seed
  for initial values kconf draws itself, ``unroll``);

and anything else is reported too: an import never drops an argument silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, Mapping, Union, get_args, get_origin

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from kconf.args.fields import KerasForm
from kconf.args.layer import LayerArgs
from kconf.args.weight_options import (
    CONSTRAINT_ARGS,
    CONSTRAINT_NAMES,
    REGULARIZER_ARGS,
    REGULARIZER_NAMES,
)
from kconf.engine.layers import REGISTRY
from kconf.keras_io.converters import (
    Activation,
    Axes,
    CausalPadding,
    Ints,
    Interpolation,
    Padding,
    Pair,
    Plain,
    WeightOption,
)
from kconf.keras_io.findings import Unsupported
from kconf.keras_io.initializers import Initializer

# --- the rules, derived from the layers' argument models ------------------------------------

PLAIN, PAIR, PADDING, ACTIVATION, INITIALIZER = (Plain(), Pair(), Padding(), Activation(),
                                                 Initializer())
AXES = Axes()
#: A field type's ``KerasForm`` -> the converter of its values.
CONVERTERS: dict[str, Plain] = {"pair": PAIR, "padding": PADDING, "activation": ACTIVATION,
                                "initializer": INITIALIZER, "axes": AXES, "ints": Ints(),
                                "causal_padding": CausalPadding(),
                                "interpolation": Interpolation(),
                                "regularizer": WeightOption("keras.regularizers",
                                                            REGULARIZER_NAMES, REGULARIZER_ARGS),
                                "constraint": WeightOption("keras.constraints",
                                                           CONSTRAINT_NAMES, CONSTRAINT_ARGS)}

_REGULARIZERS = "kconf has no regularizer on this weight or layer"
_CONSTRAINTS = "kconf has no constraint on this weight"


def _none(*names: str, reason: str) -> dict[str, tuple[tuple[Any, ...], str]]:
    """``fixed`` entries for arguments kconf supports only when null."""
    return {n: ((None,), reason) for n in names}


@dataclass(frozen=True)
class Rule:
    """How one Keras layer class's config maps to kconf.

    Attributes:
        args: argument -> converter, for the arguments kconf implements (same name in both).
        fixed: Keras argument -> (the values kconf's layer behaves like, why no other value
            is supported).
        ignored: arguments that change no number.
        default_from: argument -> the argument whose value is its default.
        aliases: an older Keras name -> the argument it is (LeakyReLU's Keras 2 ``alpha``),
            from the fields' validation aliases.
    """

    args: dict[str, Plain]
    fixed: dict[str, tuple[tuple[Any, ...], str]] = field(default_factory=dict)
    ignored: frozenset[str] = frozenset()
    default_from: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)


#: Keys any layer config may have that change no number, or are read elsewhere (the input
#: shape of a Sequential model's first layer; ``trainable`` and ``dtype`` are checked apart).
COMMON_IGNORED = frozenset({"name", "trainable", "dtype", "batch_input_shape", "batch_shape",
                            "input_shape", "batch_size", "autocast", "lora_alpha"})
#: Keys any layer config may have that kconf supports at one value.
COMMON_FIXED = {
    **_none("activity_regularizer", reason=_REGULARIZERS),
    **_none("quantization_config", "lora_rank", reason="quantized and LoRA layers are not "
                                                       "implemented in kconf"),
}
_CHANNELS_LAST = {"data_format": (("channels_last", None), "kconf is channels_last only")}


def keras_form(info: FieldInfo) -> str | None:
    """The ``KerasForm`` of a field's type (also inside ``X | None``), or None."""
    for meta in info.metadata:
        if isinstance(meta, KerasForm):
            return meta.form
    return _form_in(info.annotation)


def _form_in(tp: Any) -> str | None:
    if get_origin(tp) is Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, KerasForm):
                return meta.form
        return _form_in(get_args(tp)[0])
    if get_origin(tp) in (Union, UnionType):
        for member in get_args(tp):
            form = _form_in(member)
            if form is not None:
                return form
    return None


def rule_for(args: type[LayerArgs]) -> Rule:
    """The rule of a layer from its argument model.

    Args:
        args: a ``LayerArgs`` subclass.

    Returns:
        Its constructor arguments, each with the converter its field type names (``Plain``
        without one); its ``keras_fixed`` arguments, ``X_regularizer``/``X_constraint: null``
        for each ``X_initializer`` and ``data_format: channels_last`` where declared; its
        ``keras_ignored`` arguments; its ``keras_default_from``.
    """
    skip = args.keras_ignored | set(args.keras_fixed)
    converters = {}
    for name in (*args.constructor_fields(), *args.weight_option_fields):
        if name not in skip:
            converters[name] = CONVERTERS.get(keras_form(args.model_fields[name]), PLAIN)
    weights = [f[:-len("_initializer")] for f in converters if f.endswith("_initializer")]
    fixed = {
        **_none(*(f"{w}_regularizer" for w in weights if f"{w}_regularizer" not in converters),
                reason=_REGULARIZERS),
        **_none(*(f"{w}_constraint" for w in weights if f"{w}_constraint" not in converters),
                reason=_CONSTRAINTS),
        **(_CHANNELS_LAST if args.keras_channels_last else {}),
        **args.keras_fixed,
    }
    aliases = {alias: name for name in converters
               for alias in _aliases(args.model_fields[name]) if alias != name}
    return Rule(converters, fixed, frozenset(args.keras_ignored),
                dict(args.keras_default_from), aliases)


def _aliases(info: FieldInfo) -> list[str]:
    """The names a field also validates under (``AliasChoices``)."""
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)]
    return [alias] if isinstance(alias, str) else []


#: Keras class name -> its rule, for every layer a config can name.
RULES: dict[str, Rule] = {name: rule_for(e.args) for name, e in REGISTRY.items()
                          if e.args is not None}

#: Layer classes without arguments of their own that combine several inputs.
MERGE_CLASSES = tuple(name for name, e in REGISTRY.items()
                      if e.layer.n_inputs is None and e.layer.call_signature is None)


def kconf_default(class_name: str, arg: str) -> Any:
    """kconf's default of a layer argument (the config schema's), or a sentinel when the
    argument is required."""
    info = REGISTRY[class_name].args.model_fields[arg]
    if info.is_required():
        return _REQUIRED
    return info.get_default(call_default_factory=True)


_REQUIRED = object()


def float_policy(value: Any) -> str | None:
    """The name of a layer's dtype (a Keras 3 policy object, a Keras 2 string or policy, or
    None); None when there is none."""
    if isinstance(value, dict):
        return (value.get("config") or {}).get("name")
    return value


def layer_args(class_name: str, config: Mapping[str, Any], version: int,
               report) -> dict[str, Any]:
    """A Keras layer config as kconf arguments, defaults left out, in Keras's order.

    Args:
        class_name: a key of ``RULES``.
        config: the layer's Keras config.
        version: the Keras major version of the file (2 or 3): some names changed meaning.
        report: ``report(key, message)`` for each argument kconf cannot honour.

    Returns:
        The kconf arguments (``trainable: false`` when the layer is frozen).
    """
    rule = RULES[class_name]
    out: dict[str, Any] = {}
    for key, value in config.items():
        key = rule.aliases.get(key, key)
        if key in rule.args:
            try:
                converted = rule.args[key].to_kconf(value, version)
            except Unsupported as why:
                report(key, str(why))
                continue
            if not _is_default(class_name, key, converted, config):
                out[key] = converted
        elif key in rule.fixed or key in COMMON_FIXED:
            allowed, why = rule.fixed.get(key) or COMMON_FIXED[key]
            if value not in allowed:
                report(key, f"{key}={_show(value)} is not supported by kconf"
                            + (f" ({why})" if why else ""))
        elif key == "dtype":
            policy = float_policy(value)
            if policy not in (None, "float32"):
                report(key, f"dtype {policy!r} changes the numbers: kconf computes in float32")
        elif key == "trainable":
            if value is False:
                out["trainable"] = False
        elif key not in rule.ignored and key not in COMMON_IGNORED:
            report(key, f"argument {key!r} is not supported by kconf")
    return out


def _is_default(class_name: str, key: str, value: Any, config: Mapping[str, Any]) -> bool:
    """Whether an argument (kconf's form) has kconf's default, which the YAML leaves out;
    an argument whose default is another's value (MaxPooling2D's strides: its pool_size, as
    Keras's) is a default when it equals that value."""
    rule = RULES[class_name]
    source = rule.default_from.get(key)
    if source is not None:
        given = config.get(source, kconf_default(class_name, source))
        if rule.args[key].same(value, given):
            return True
    default = kconf_default(class_name, key)
    return default is not _REQUIRED and rule.args[key].same(value, default)


def _show(value: Any) -> str:
    """A Keras value, short, for messages (an object by its class)."""
    if isinstance(value, dict) and "class_name" in value:
        return value["class_name"]
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def keras_args(class_name: str, layer: Any) -> dict[str, Any]:
    """An engine layer's arguments in Keras's form (the ``config`` of its layer entry,
    without name, trainable and dtype)."""
    rule = RULES[class_name]
    args = REGISTRY[class_name].args
    names, options = args.engine_names, args.weight_option_fields

    def value(key):
        if key in options:  # held apart from the constructor's (kconf.engine.weight_options)
            return layer.weight_options.get(key)
        return getattr(layer, names.get(key, key))

    out = {key: conv.to_keras(value(key)) for key, conv in rule.args.items()}
    if out.get("activity_regularizer", 0) is None:  # Keras writes it only when set
        del out["activity_regularizer"]
    return out
