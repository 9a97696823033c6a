"""What layers' argument models are made of: ``LayerArgs`` (the arguments every layer takes,
and the ClassVars that say how the rest maps to the engine and to Keras) and the field types
of layer arguments (``Activation``, ``Padding``, ``Initializer``, ``Axis``, ``Axes``).

A layer's own argument model (``DenseArgs``) subclasses ``LayerArgs`` in the layer's engine
file, beside its math; the registry (``kconf.engine.layers.REGISTRY``) pairs the two.
"""

from typing import Annotated, Any, ClassVar, Union

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    WithJsonSchema,
    model_validator,
)

from kconf.args.fields import (
    Bool,
    ConfigModel,
    KerasForm,
    Number,
    PositiveFloat,
    PositiveInt,
    Shape,
    Str,
    choice,
    config_error,
)
from kconf.args.unions import (
    SingleKey,
    TaggedSpec,
    Wrappers,
    lazy_union,
    or_name,
    wrapper_lookup,
)
from kconf.args.weight_options import option_value
from kconf.args.names import ACTIVATION_NAMES, INITIALIZER_NAMES, PADDING_NAMES
from kconf.text import show

#: An activation by name (``relu``); ``None`` (where allowed) means linear.
Activation = Annotated[choice("activation", ACTIVATION_NAMES), KerasForm("activation")]
#: ``valid`` or ``same``, any case.
Padding = Annotated[choice("padding", PADDING_NAMES, casefold=True), KerasForm("padding")]

# --- initializers: a name, or {name: {args}} --------------------------------------------------


class RandomNormalArgs(ConfigModel):
    mean: Number = 0.0
    stddev: PositiveFloat = 0.05


class RandomUniformArgs(ConfigModel):
    minval: Number = -0.05
    maxval: Number = 0.05

    @model_validator(mode="after")
    def _ordered(self):
        if not self.minval < self.maxval:
            raise config_error("bad_range", "maxval must be greater than minval, got "
                                            f"{show(self.maxval)} <= {show(self.minval)}",
                               at="maxval")
        return self


class ConstantArgs(ConfigModel):
    value: Number = 0.0


class OrthogonalArgs(ConfigModel):
    gain: PositiveFloat = 1.0


class VarianceScalingArgs(ConfigModel):
    """Keras's ``VarianceScaling``: variance ``scale / n``, n by ``mode``, drawn from
    ``distribution``."""

    scale: PositiveFloat = 1.0
    mode: choice("fan mode", ("fan_in", "fan_out", "fan_avg")) = "fan_in"
    distribution: choice("distribution", ("truncated_normal", "untruncated_normal",
                                          "uniform")) = "truncated_normal"


class NoArgs(ConfigModel):
    """An initializer without arguments, written as a mapping (``{he_normal: {}}``)."""


_INITIALIZER_ARGS: dict[str, type[ConfigModel]] = {
    "random_normal": RandomNormalArgs,
    "random_uniform": RandomUniformArgs,
    "truncated_normal": RandomNormalArgs,
    "constant": ConstantArgs,
    "orthogonal": OrthogonalArgs,
    "variance_scaling": VarianceScalingArgs,
}


#: Initializer name -> its wrapper ``{name: {args}}`` (``Initializer_random_normal``, a name of
#: this module too), built when a config first names it.
INITIALIZER_SPECS = Wrappers(TaggedSpec, __name__, INITIALIZER_NAMES,
                             lambda name: _INITIALIZER_ARGS.get(name, NoArgs),
                             name="Initializer_{}".format)

#: Tag of the plain-name member of the initializer union.
NAME_TAG = "name"
InitializerName = choice("initializer", INITIALIZER_NAMES)
#: An initializer: a name (``glorot_uniform``) or ``{name: {args}}``.
Initializer = Annotated[
    lazy_union(
        SingleKey("initializer", INITIALIZER_NAMES, "{random_normal: {stddev: 0.05}}",
                  str_tag=NAME_TAG),
        or_name(NAME_TAG, InitializerName, INITIALIZER_SPECS),
    ),
    KerasForm("initializer"),
]
__getattr__ = wrapper_lookup(__name__, INITIALIZER_SPECS)


def initializer(name: str, **args: Any) -> Any:
    """An initializer spec ``{name: {args}}`` as a field default (``default_factory``).

    Args:
        name: an initializer name with arguments (``random_uniform``).
        args: its arguments; the others keep their defaults.

    Returns:
        The validated ``{name: {args}}`` model.
    """
    return INITIALIZER_SPECS[name](**{name: _INITIALIZER_ARGS.get(name, NoArgs)(**args)})


def initializer_value(init: Any) -> Any:
    """The engine's form of an initializer: its name, or ``{name: {all args}}``."""
    if isinstance(init, str):
        return init
    return {init.tag: init.args.model_dump()}


# --- axes -------------------------------------------------------------------------------------


def _no_batch_axis(value: int) -> int:
    if value == 0:
        raise config_error("batch_axis", "axis 0 is the batch axis; count the axes of one "
                                         "sample from 1, or from the end with -1")
    return value


#: A tensor axis: a nonzero integer (negative counts from the last axis).
Axis = Annotated[int, Strict(), AfterValidator(_no_batch_axis)]


def _axes(value: Any) -> int | tuple[int, int]:
    """``Dot``'s ``axes``: one axis for both inputs, or a pair (one per input)."""
    def axis(v):
        return isinstance(v, int) and not isinstance(v, bool) and v != 0

    if axis(value):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(axis(v) for v in value):
        return (value[0], value[1])
    raise config_error("axes", "expected an axis (a nonzero integer) or a list of two, one "
                               f"per input, got {show(value)}")


_AXIS_SCHEMA = {"type": "integer", "not": {"const": 0}}

#: One axis for every input, or a pair (one per input).
Axes = Annotated[
    Union[int, tuple[int, int]],
    PlainValidator(_axes),
    PlainSerializer(lambda v: v if isinstance(v, int) else list(v), when_used="json"),
    WithJsonSchema({"anyOf": [_AXIS_SCHEMA, {"type": "array", "items": _AXIS_SCHEMA,
                                             "minItems": 2, "maxItems": 2}]}),
]

# --- the base of every layer's arguments ------------------------------------------------------

#: A shape with the batch axis first (``[null, 20]``).
BatchShape = Annotated[tuple[Union[PositiveInt, None], ...], Field(min_length=2)]

#: Arguments every layer takes that are not constructor arguments of the engine layer.
COMMON_FIELDS = ("name", "trainable", "input_shape", "batch_size", "batch_input_shape")

#: A Keras argument kconf supports only at some values: (those values, why no other).
Fixed = tuple[tuple[Any, ...], str]


class LayerArgs(ConfigModel):
    """Arguments every layer takes: ``name``, ``trainable`` and the input-shape hints.

    A subclass declares the layer's own arguments as fields, with Keras's names, types and
    defaults; the engine layer's constructor takes them as keywords (``layer_kwargs()``). The
    ClassVars say what is not a plain constructor argument:

    - ``shape_shortcuts``: fields that set the input shape the Keras 2 way (Dense's
      ``input_dim``), with ``shortcut_shape`` saying what shape they mean;
    - ``config_only``: fields checked here but not passed to the engine (``stateful:
      false``);
    - ``keras_fixed``: Keras arguments kconf implements only at the listed values
      (``dilation_rate: 1``), with the reason; a config-only field listed here is checked
      on import. Regularizers and constraints are fields generated from the ``X_initializer``
      fields (``weight_option_fields``, ``kconf.args.weight_options``); where a layer has
      none, ``X_regularizer``/``X_constraint``/``activity_regularizer: null`` are implied;
    - ``keras_ignored``: Keras arguments that change no number (a ``seed``);
    - ``keras_channels_last``: the layer has Keras's ``data_format``, kconf's is
      ``channels_last`` only;
    - ``keras_default_from``: argument -> the argument whose value is its default (Keras's
      MaxPooling2D ``strides`` default to ``pool_size``);
    - ``keras_module``: the module Keras loads the class from (``keras.layers``; a layer of
      ``keras.applications``, such as ConvNeXt's ``LayerScale``, names its own);
    - ``keras_takes_trainable``: False where Keras's constructor has no ``trainable``
      (the SpatialDropout layers): the export leaves it out.
    - ``engine_names``: argument -> the name of the engine layer's keyword and attribute,
      where Keras's name is taken on the layer (MultiHeadAttention's ``output_shape``, which
      is also the node API's ``layer.output_shape``).
    """

    # Built on first use (a config naming the layer), not on import: ~100 layers.
    model_config = ConfigDict(**ConfigModel.model_config, defer_build=True)

    shape_shortcuts: ClassVar[tuple[str, ...]] = ()
    config_only: ClassVar[tuple[str, ...]] = ()
    keras_fixed: ClassVar[dict[str, Fixed]] = {}
    keras_ignored: ClassVar[frozenset[str]] = frozenset()
    keras_channels_last: ClassVar[bool] = False
    keras_default_from: ClassVar[dict[str, str]] = {}
    keras_module: ClassVar[str] = "keras.layers"
    keras_takes_trainable: ClassVar[bool] = True
    engine_names: ClassVar[dict[str, str]] = {}
    #: Regularizer and constraint fields ``with_weight_options`` generated (see
    #: ``kconf.args.weight_options``); not constructor arguments.
    weight_option_fields: ClassVar[tuple[str, ...]] = ()
    #: Whether Keras's constructor names ``activity_regularizer``; None: where the layer has
    #: a kernel, a depthwise kernel or an embeddings table.
    keras_activity_regularizer: ClassVar[bool | None] = None

    name: Str | None = None
    trainable: Bool = True
    input_shape: Shape | None = None
    batch_size: PositiveInt | None = None
    batch_input_shape: BatchShape | None = None

    @model_validator(mode="after")
    def _one_input_hint(self):
        shortcut = next((f for f in self.shape_shortcuts if getattr(self, f) is not None), None)
        given = [f for f in (shortcut, "input_shape", "batch_input_shape")
                 if f is not None and getattr(self, f) is not None]
        if len(given) > 1:
            raise config_error("input_hints", f"give only one of {', '.join(given)}: each "
                                              "sets the input shape", at=given[1])
        if self.batch_size is not None and not given:
            raise config_error("input_hints", "batch_size needs an input shape: give "
                                              "input_shape too", at="batch_size")
        if self.batch_size is not None and self.batch_input_shape is not None:
            raise config_error("input_hints", "give batch_input_shape or batch_size, "
                                              "not both", at="batch_size")
        return self

    @classmethod
    def constructor_fields(cls) -> list[str]:
        """The fields passed to the engine layer's constructor, in declaration order."""
        skip = (*COMMON_FIELDS, *cls.shape_shortcuts, *cls.config_only,
                *cls.weight_option_fields)
        return [f for f in cls.model_fields if f not in skip]

    def shortcut_shape(self) -> tuple[int | None, ...] | None:
        """The input shape (without the batch axis) the shape shortcuts give, or None."""
        return None

    def weight_options(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """The regularizers and constraints given (``kernel_regularizer`` ...), each as
        ``(Keras class, arguments)``; empty when none is (``kconf.args.weight_options``)."""
        return {f: option_value(getattr(self, f)) for f in self.weight_option_fields
                if getattr(self, f) is not None}

    def input_hint(self) -> tuple[int | None, tuple[int | None, ...]] | None:
        """The input shape this layer declares, Keras-style.

        Returns:
            ``(batch_size, shape_without_batch)`` from ``input_shape`` or a shortcut such as
            ``input_dim`` (+ ``batch_size``), or from ``batch_input_shape``; None when no
            shape is given.
        """
        if self.batch_input_shape is not None:
            return self.batch_input_shape[0], tuple(self.batch_input_shape[1:])
        shape = self.shortcut_shape()
        if shape is not None:
            return self.batch_size, shape
        if self.input_shape is not None:
            return self.batch_size, tuple(self.input_shape)
        return None

    def layer_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the engine layer's constructor.

        Returns:
            Every argument except ``name``, ``trainable``, the input-shape hints and the
            ``config_only`` fields; pairs are tuples and initializers are names or
            ``{name: {args}}``.
        """
        out = {}
        for field in self.constructor_fields():
            value = getattr(self, field)
            if field.endswith("_initializer"):
                value = initializer_value(value)
            out[self.engine_names.get(field, field)] = value
        return out
