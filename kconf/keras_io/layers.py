"""Keras layer arguments <-> kconf layer arguments: one ``Rule`` per layer class kconf has.

kconf's argument names, meanings and defaults are Keras's, so most values pass through; a
few need translating both ways (activations, initializers, int-or-pair sizes). The rules are
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
from kconf.args.names import ACTIVATION_NAMES, INITIALIZER_NAMES, PADDING_NAMES
from kconf.args.shape_fields import interpolation_problem
from kconf.args.weight_options import (
    CONSTRAINT_ARGS,
    CONSTRAINT_NAMES,
    REGULARIZER_ARGS,
    REGULARIZER_NAMES,
)
from kconf.engine.layers import REGISTRY
from kconf.keras_io.findings import Unsupported

# --- value converters ----------------------------------------------------------------------


class Plain:
    """A value that means the same in both: numbers, booleans, an axis."""

    def to_kconf(self, value: Any, version: int) -> Any:
        """A Keras value in kconf's form (``version``: the file's Keras major version).

        Raises:
            Unsupported: a value kconf cannot reproduce, saying why.
        """
        return value

    def to_keras(self, value: Any) -> Any:
        """An engine layer's value in Keras's form."""
        return list(value) if isinstance(value, tuple) else value

    def same(self, value: Any, default: Any) -> bool:
        """Whether ``value`` (kconf's form) equals the schema's default."""
        return _plain(value) == _plain(default)


def _plain(value: Any) -> Any:
    """Tuples as lists, for comparisons."""
    return list(value) if isinstance(value, tuple) else value


class Pair(Plain):
    """Keras's int-or-pair sizes (``kernel_size: 3``), kept as written; None passes."""

    def to_kconf(self, value: Any, version: int) -> Any:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, (list, tuple)) and len(value) == 2)
        if value is not None and not ok:
            raise Unsupported(f"expected an integer or two, got {value!r}")
        return list(value) if isinstance(value, (list, tuple)) else value

    def same(self, value: Any, default: Any) -> bool:
        return _pair(value) == _pair(default)


def _pair(value: Any) -> Any:
    """An int-or-pair as a pair (a list), for comparisons."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    return _plain(value)


class Padding(Plain):
    """``valid`` or ``same`` (Keras also has ``causal``, which kconf does not)."""

    def to_kconf(self, value: Any, version: int) -> Any:
        text = str(value).lower()
        if text not in PADDING_NAMES:
            raise Unsupported(f"padding {value!r} is not supported by kconf (only "
                              f"{' and '.join(PADDING_NAMES)})")
        return text


class Axes(Plain):
    """One axis or a list of axes; Keras writes ``axis=-1`` as ``[-1]`` once a layer is built
    (LayerNormalization, Keras 2's BatchNormalization), which is the one axis."""

    def to_kconf(self, value: Any, version: int) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 1:
            return value[0]
        return list(value) if isinstance(value, tuple) else value

    def same(self, value: Any, default: Any) -> bool:
        return self.to_kconf(_plain(value), 3) == self.to_kconf(_plain(default), 3)


class CausalPadding(Plain):
    """Conv1D's ``valid``, ``same`` or ``causal``."""

    def to_kconf(self, value: Any, version: int) -> Any:
        text = str(value).lower()
        if text not in (*PADDING_NAMES, "causal"):
            raise Unsupported(f"padding {value!r} is not supported by kconf")
        return text
class Ints(Plain):
    """Keras's int-or-tuple sizes and paddings of any rank (Conv1D's ``kernel_size: [3]``,
    ``pool_size: [2, 2, 2]``, ``cropping: [[1, 1], [0, 2]]``), kept as written; an int stands
    for every entry; None passes."""

    def to_kconf(self, value: Any, version: int) -> Any:
        if value is None:
            return None
        if not _ints(value):
            raise Unsupported(f"expected integers, got {value!r}")
        return _plain_deep(value)

    def to_keras(self, value: Any) -> Any:
        return _plain_deep(value)

    def same(self, value: Any, default: Any) -> bool:
        return _same_ints(value, default)


def _ints(value: Any) -> bool:
    """An int, or (nested) lists of ints."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_ints(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


def _plain_deep(value: Any) -> Any:
    """Nested tuples as nested lists."""
    return [_plain_deep(v) for v in value] if isinstance(value, (list, tuple)) else value


def _same_ints(a: Any, b: Any) -> bool:
    """Whether two int-or-tuple values are equal, an int standing for every entry."""
    a_seq, b_seq = isinstance(a, (list, tuple)), isinstance(b, (list, tuple))
    if a_seq and b_seq:
        return len(a) == len(b) and all(_same_ints(x, y) for x, y in zip(a, b))
    if a_seq:
        return all(_same_ints(x, b) for x in a)
    if b_seq:
        return all(_same_ints(a, y) for y in b)
    return a == b


class Interpolation(Plain):
    """UpSampling2D's ``nearest`` or ``bilinear`` (Keras's others are reported)."""

    def to_kconf(self, value: Any, version: int) -> Any:
        problem = interpolation_problem(value)
        if problem is not None:
            raise Unsupported(problem)
        return value.lower()


#: Keras 2's hard_sigmoid was 0.2·x + 0.5; Keras 3's (and kconf's) is x/6 + 1/2.
_KERAS2_HARD_SIGMOID = ("Keras 2's hard_sigmoid (clip(0.2·x + 0.5)) differs from kconf's, which "
                        "is Keras 3's (clip(x/6 + 1/2)); use sigmoid, or save the model with "
                        "Keras 3")


class Activation(Plain):
    """An activation by name; None and ``linear`` are the same."""

    def to_kconf(self, value: Any, version: int) -> Any:
        if value is None:
            return "linear"
        if isinstance(value, dict):  # Keras 3's serialised function, or an activation object
            if value.get("class_name") == "function" and isinstance(value.get("config"), str):
                value = value["config"]
            else:
                raise Unsupported(f"the activation {value.get('class_name')!r} object is not "
                                  "supported by kconf (give an activation by name)")
        if version < 3 and value == "hard_sigmoid":
            raise Unsupported(_KERAS2_HARD_SIGMOID)
        if value not in ACTIVATION_NAMES:
            raise Unsupported(f"activation {value!r} is not supported by kconf (kconf has "
                              f"{', '.join(ACTIVATION_NAMES)})")
        return value

    def to_keras(self, value: Any) -> Any:
        return activation_name(value)

    def same(self, value: Any, default: Any) -> bool:
        return (value or "linear") == (default or "linear")


def activation_name(fn: Any) -> str:
    """The Keras name of an engine activation (a function, a recurrent ``StepActivation``,
    a name or None)."""
    from kconf.engine.activations import ACTIVATIONS

    fn = getattr(fn, "fn", fn)
    if fn is None:
        return "linear"
    if isinstance(fn, str):
        return fn
    for name, candidate in ACTIVATIONS.items():
        if candidate is fn:
            return name
    raise ValueError(f"activation {fn!r} has no Keras name")


#: Keras initializer class -> (kconf name, Keras's arguments with their defaults).
INITIALIZERS: dict[str, tuple[str, dict[str, float]]] = {
    "GlorotUniform": ("glorot_uniform", {}),
    "GlorotNormal": ("glorot_normal", {}),
    "HeUniform": ("he_uniform", {}),
    "HeNormal": ("he_normal", {}),
    "LecunUniform": ("lecun_uniform", {}),
    "LecunNormal": ("lecun_normal", {}),
    "Zeros": ("zeros", {}),
    "Ones": ("ones", {}),
    "RandomNormal": ("random_normal", {"mean": 0.0, "stddev": 0.05}),
    "RandomUniform": ("random_uniform", {"minval": -0.05, "maxval": 0.05}),
    "TruncatedNormal": ("truncated_normal", {"mean": 0.0, "stddev": 0.05}),
    "Constant": ("constant", {"value": 0.0}),
    "Orthogonal": ("orthogonal", {"gain": 1.0}),
    "VarianceScaling": ("variance_scaling", {"scale": 1.0, "mode": "fan_in",
                                             "distribution": "truncated_normal"}),
}
_INITIALIZER_CLASS = {name: cls for cls, (name, _) in INITIALIZERS.items()}

#: VarianceScaling(scale, mode, distribution) -> the named initializer it is (Keras 2 wrote
#: glorot_uniform that way; its "normal" meant truncated normal); any other is kconf's
#: variance_scaling.
_VARIANCE_SCALING = {
    (1.0, "fan_avg", "uniform"): "glorot_uniform",
    (1.0, "fan_avg", "truncated_normal"): "glorot_normal",
    (2.0, "fan_in", "uniform"): "he_uniform",
    (2.0, "fan_in", "truncated_normal"): "he_normal",
    (1.0, "fan_in", "uniform"): "lecun_uniform",
    (1.0, "fan_in", "truncated_normal"): "lecun_normal",
}

#: Initializer arguments that change no number kconf computes: kconf draws initial values
#: from its own seeded stream, so Keras's initializer seed cannot apply.
_INITIALIZER_IGNORED = ("seed",)
#: Keras 3.15's fan axes of variance-scaling initializers, supported at their default.
_INITIALIZER_FIXED = {"input_axes": None, "output_axes": None}


class Initializer(Plain):
    """An initializer: a name, or ``{name: {non-default args}}`` in kconf; a
    ``{class_name, config}`` object (or a name) in Keras."""

    def to_kconf(self, value: Any, version: int) -> Any:
        if isinstance(value, str):
            if value in INITIALIZER_NAMES:
                return value
            value = {"class_name": value, "config": {}}
        if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
            raise Unsupported(f"cannot read the initializer {value!r}")
        cls = value["class_name"]
        config = dict(value.get("config") or {})
        for key in _INITIALIZER_IGNORED:
            config.pop(key, None)
        for key, allowed in _INITIALIZER_FIXED.items():
            if config.pop(key, allowed) != allowed:
                raise Unsupported(f"initializer {cls} with {key} is not supported by kconf")
        if cls == "VarianceScaling":
            return _variance_scaling(config)
        if cls not in INITIALIZERS:
            raise Unsupported(f"initializer {cls!r} is not supported by kconf (kconf has "
                              f"{', '.join(INITIALIZER_NAMES)})")
        name, defaults = INITIALIZERS[cls]
        unknown = sorted(set(config) - set(defaults))
        if unknown:
            raise Unsupported(f"initializer {cls} argument(s) {', '.join(unknown)} are not "
                              "supported by kconf")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in config.values()):
            raise Unsupported(f"initializer {cls} takes numbers in kconf, got {config!r}")
        return compact_initializer(name, config)

    def to_keras(self, value: Any) -> Any:
        if isinstance(value, str):
            name, args = value, {}
        else:
            ((name, args),) = value.items()
        cls = _INITIALIZER_CLASS[name]
        config = {"seed": None} if cls not in ("Zeros", "Ones", "Constant") else {}
        config.update({**INITIALIZERS[cls][1], **args})
        return {"module": "keras.initializers", "class_name": cls, "config": config,
                "registered_name": None}

    def same(self, value: Any, default: Any) -> bool:
        return normal_initializer(value) == normal_initializer(default)


def _variance_scaling(config: Mapping[str, Any]) -> Any:
    """A VarianceScaling config as the named initializer it is (glorot, he, lecun), else as
    ``{variance_scaling: {its non-default args}}``."""
    unknown = sorted(set(config) - {"scale", "mode", "distribution"})
    if unknown:
        raise Unsupported(f"initializer VarianceScaling argument(s) {', '.join(unknown)} are "
                          "not supported by kconf")
    scale = config.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise Unsupported(f"VarianceScaling needs a positive scale, got {scale!r}")
    mode = config.get("mode", "fan_in")
    distribution = config.get("distribution", "truncated_normal")
    if distribution == "normal":  # Keras's old name of the truncated normal
        distribution = "truncated_normal"
    if mode not in ("fan_in", "fan_out", "fan_avg") or distribution not in (
            "truncated_normal", "untruncated_normal", "uniform"):
        raise Unsupported(f"VarianceScaling(mode={mode!r}, distribution={distribution!r}) is "
                          "not one Keras defines")
    named = _VARIANCE_SCALING.get((float(scale), mode, distribution))
    if named is not None:
        return named
    return compact_initializer("variance_scaling", {"scale": float(scale), "mode": mode,
                                                    "distribution": distribution})


def compact_initializer(name: str, args: Mapping[str, Any]) -> Any:
    """``name``, or ``{name: {the args that differ from the defaults}}``."""
    cls = _INITIALIZER_CLASS[name]
    defaults = INITIALIZERS[cls][1]
    changed = {k: v for k, v in args.items() if k not in defaults or v != defaults[k]}
    return {name: changed} if changed else name


def normal_initializer(value: Any) -> Any:
    """An initializer in any kconf form (a name, ``{name: {args}}``, a validated spec) in its
    compact form, for comparisons."""
    if hasattr(value, "tag") and hasattr(value, "args"):  # a validated {name: {args}} spec
        value = {value.tag: value.args.model_dump()}
    if isinstance(value, dict):
        ((name, args),) = value.items()
        return compact_initializer(name, dict(args or {}))
    return value


class WeightOption(Plain):
    """A regularizer or constraint: ``{Class: {args}}`` (or a name) in kconf, a ``{module,
    class_name, config}`` object (Keras 3), ``{class_name, config}`` (Keras 2) or a name in
    Keras; the engine's object on export."""

    def __init__(self, module: str, names: dict, args: dict):
        self.module = module
        self.names = names  # kconf's names -> (class, arguments)
        self.args = args  # class -> argument model

    def to_kconf(self, value: Any, version: int) -> Any:
        if value is None:
            return None
        noun = self.module.rsplit(".", 1)[-1][:-1]
        if isinstance(value, str):
            if value not in self.names or value == "l1_l2":  # Keras 3 has no 'l1_l2'
                raise Unsupported(f"{noun} {value!r} is not supported by kconf")
            return value
        if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
            raise Unsupported(f"cannot read the {noun} {value!r}")
        cls, config = value["class_name"], dict(value.get("config") or {})
        cls = self.names.get(cls, (cls,))[0]  # Keras 2's lower-case class names
        if cls not in self.args:
            raise Unsupported(f"{noun} {cls!r} is not supported by kconf (kconf has "
                              f"{', '.join(self.args)})")
        unknown = sorted(set(config) - set(self.args[cls].model_fields))
        if unknown:
            raise Unsupported(f"{noun} {cls} argument(s) {', '.join(unknown)} are not "
                              "supported by kconf")
        return {cls: config}

    def to_keras(self, value: Any) -> Any:
        if value is None:
            return None
        return {"module": self.module, "class_name": value.class_name,
                "config": value.get_config(), "registered_name": None}

    def same(self, value: Any, default: Any) -> bool:
        return value is None and default is None


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
