"""Layer configs: one frozen args model per Keras layer, wrapped as ``{ClassName: args}``.

``LAYER_SPECS`` (tag -> wrapper) is the closed list of layers a model may name; ``LayerSpec``
is the tagged union built from it once. ``TimeDistributed`` wraps a member of the same union
(or a model's name), so the union is recursive.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Union

from pydantic import (
    AfterValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    WithJsonSchema,
    create_model,
    model_validator,
)

from kconf.config.fields import (
    Bool,
    ConfigModel,
    Fraction,
    IntPair,
    Name,
    Number,
    PositiveFloat,
    PositiveInt,
    Shape,
    SingleKey,
    Str,
    TaggedSpec,
    args_of,
    choice,
    config_error,
    show,
    tagged_union,
)
from kconf.config.names import ACTIVATION_NAMES, INITIALIZER_NAMES, PADDING_NAMES

Activation = choice("activation", ACTIVATION_NAMES)
Padding = choice("padding", PADDING_NAMES, casefold=True)

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


class NoArgs(ConfigModel):
    """An initializer without arguments, written as a mapping (``{he_normal: {}}``)."""


_INITIALIZER_ARGS: dict[str, type[ConfigModel]] = {
    "random_normal": RandomNormalArgs,
    "random_uniform": RandomUniformArgs,
    "truncated_normal": RandomNormalArgs,
    "constant": ConstantArgs,
    "orthogonal": OrthogonalArgs,
}


def _initializer_spec(name: str) -> type[TaggedSpec]:
    """The wrapper ``{name: {args}}`` of one initializer."""
    args = _INITIALIZER_ARGS.get(name, NoArgs)
    return create_model(f"Initializer_{name}", __base__=TaggedSpec, **{name: (args_of(args), ...)})


_INITIALIZER_SPECS = {n: _initializer_spec(n) for n in INITIALIZER_NAMES}

#: Tag of the plain-name member of the initializer union.
NAME_TAG = "name"
InitializerName = choice("initializer", INITIALIZER_NAMES)
Initializer = tagged_union(
    SingleKey("initializer", INITIALIZER_NAMES, "{random_normal: {stddev: 0.05}}",
              str_tag=NAME_TAG),
    {NAME_TAG: InitializerName, **_INITIALIZER_SPECS},
)


def initializer_value(init: Any) -> Any:
    """The engine's form of an initializer: its name, or ``{name: {all args}}``."""
    if isinstance(init, str):
        return init
    return {init.tag: init.args.model_dump()}


# --- layer arguments --------------------------------------------------------------------------

#: A shape with the batch axis first (``[null, 20]``).
BatchShape = Annotated[tuple[Union[PositiveInt, None], ...], Field(min_length=2)]

#: Arguments every layer takes that are not constructor arguments of the engine layer.
_COMMON_FIELDS = ("name", "trainable", "input_shape", "batch_size", "batch_input_shape")


class LayerArgs(ConfigModel):
    """Arguments every layer takes: ``name``, ``trainable`` and the input-shape hints.

    A subclass lists Keras's shape shortcuts it takes (Dense's ``input_dim``) in
    ``shape_shortcuts`` and says what shape they mean in ``shortcut_shape``; fields accepted
    for Keras compatibility that the engine does not take go in ``config_only``.
    """

    #: Fields that set the input shape the Keras 2 way (``input_dim``...).
    shape_shortcuts: ClassVar[tuple[str, ...]] = ()
    #: Fields checked here but not passed to the engine layer (``mask_zero: false``...).
    config_only: ClassVar[tuple[str, ...]] = ()

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

    def shortcut_shape(self) -> tuple[int | None, ...] | None:
        """The input shape (without the batch axis) the shape shortcuts give, or None."""
        return None

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
        skip = (*_COMMON_FIELDS, *self.shape_shortcuts, *self.config_only)
        out = {}
        for field in type(self).model_fields:
            if field in skip:
                continue
            value = getattr(self, field)
            if field.endswith("_initializer"):
                value = initializer_value(value)
            out[field] = value
        return out


class DenseArgs(LayerArgs):
    """``Dense(units, activation=None, use_bias=True, ...)``; ``input_dim`` is Keras's shortcut
    for ``input_shape: [input_dim]``."""

    shape_shortcuts: ClassVar[tuple[str, ...]] = ("input_dim",)

    units: PositiveInt
    activation: Activation | None = None
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"
    input_dim: PositiveInt | None = None

    def shortcut_shape(self) -> tuple[int | None, ...] | None:
        """``input_dim: 20`` means ``input_shape: [20]``."""
        return None if self.input_dim is None else (self.input_dim,)


class ActivationArgs(LayerArgs):
    activation: Activation


class DropoutArgs(LayerArgs):
    rate: Fraction


class FlattenArgs(LayerArgs):
    pass


class Conv2DArgs(LayerArgs):
    filters: PositiveInt
    kernel_size: IntPair
    strides: IntPair = (1, 1)
    padding: Padding = "valid"
    activation: Activation | None = None
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


class MaxPooling2DArgs(LayerArgs):
    pool_size: IntPair = (2, 2)
    strides: IntPair | None = None
    padding: Padding = "valid"

    def layer_kwargs(self) -> dict[str, Any]:
        """As ``LayerArgs.layer_kwargs``, with ``strides`` defaulting to ``pool_size``."""
        out = super().layer_kwargs()
        if out["strides"] is None:
            out["strides"] = out["pool_size"]
        return out


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

Axes = Annotated[
    Union[int, tuple[int, int]],
    PlainValidator(_axes),
    PlainSerializer(lambda v: v if isinstance(v, int) else list(v), when_used="json"),
    WithJsonSchema({"anyOf": [_AXIS_SCHEMA, {"type": "array", "items": _AXIS_SCHEMA,
                                             "minItems": 2, "maxItems": 2}]}),
]


class EmbeddingArgs(LayerArgs):
    """``Embedding(input_dim, output_dim)``: ``input_dim`` is the vocabulary size here, and
    ``input_length`` (Keras 2) the shortcut for ``input_shape: [input_length]``. Without any
    shape, a first Embedding takes sequences of any length (``input_shape: [null]``)."""

    shape_shortcuts: ClassVar[tuple[str, ...]] = ("input_length",)
    config_only: ClassVar[tuple[str, ...]] = ("mask_zero",)

    input_dim: PositiveInt
    output_dim: PositiveInt
    embeddings_initializer: Initializer = Field(
        default_factory=lambda: _INITIALIZER_SPECS["random_uniform"](
            random_uniform=RandomUniformArgs()))
    input_length: PositiveInt | None = None
    mask_zero: Bool = False

    @model_validator(mode="after")
    def _no_masking(self):
        if self.mask_zero:
            raise config_error("unsupported", "mask_zero is not supported yet", at="mask_zero")
        return self

    def shortcut_shape(self) -> tuple[int | None, ...] | None:
        """``input_length: 100`` means ``input_shape: [100]``."""
        return None if self.input_length is None else (self.input_length,)

    def input_hint(self) -> tuple[int | None, tuple[int | None, ...]] | None:
        """As ``LayerArgs.input_hint``; without a shape, sequences of any length (Keras 2)."""
        return super().input_hint() or (None, (None,))


class RecurrentArgs(LayerArgs):
    """What SimpleRNN, LSTM and GRU share: the Keras 2 shortcuts ``input_dim`` (features per
    step) and ``input_length`` (steps), and arguments accepted only at their defaults."""

    shape_shortcuts: ClassVar[tuple[str, ...]] = ("input_dim", "input_length")
    config_only: ClassVar[tuple[str, ...]] = ("dropout", "recurrent_dropout", "stateful")

    @model_validator(mode="after")
    def _supported(self):
        for field in ("dropout", "recurrent_dropout"):
            if getattr(self, field) != 0:
                raise config_error("unsupported", "dropout inside recurrent layers is not "
                                                  "supported yet; put a Dropout layer before "
                                                  "or after", at=field)
        if self.stateful:
            raise config_error("unsupported", "stateful recurrent layers are not supported "
                                              "yet", at="stateful")
        if self.input_length is not None and self.input_dim is None:
            raise config_error("input_hints", "input_length needs input_dim (the features of "
                                              "each step), or give input_shape",
                               at="input_length")
        return self

    def shortcut_shape(self) -> tuple[int | None, ...] | None:
        """``input_dim`` (+ ``input_length``) means ``input_shape: [input_length, input_dim]``."""
        if self.input_dim is None:
            return None
        return (self.input_length, self.input_dim)


class SimpleRNNArgs(RecurrentArgs):
    units: PositiveInt
    activation: Activation | None = "tanh"
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    recurrent_initializer: Initializer = "orthogonal"
    bias_initializer: Initializer = "zeros"
    return_sequences: Bool = False
    return_state: Bool = False
    go_backwards: Bool = False
    dropout: Fraction = 0.0
    recurrent_dropout: Fraction = 0.0
    stateful: Bool = False
    input_dim: PositiveInt | None = None
    input_length: PositiveInt | None = None


class LSTMArgs(SimpleRNNArgs):
    recurrent_activation: Activation | None = "sigmoid"
    unit_forget_bias: Bool = True


class GRUArgs(SimpleRNNArgs):
    recurrent_activation: Activation | None = "sigmoid"
    reset_after: Bool = True


class MergeArgs(LayerArgs):
    """Add, Subtract, Multiply, Average, Maximum, Minimum: no arguments of their own."""


class ConcatenateArgs(LayerArgs):
    axis: Axis = -1


class DotArgs(LayerArgs):
    axes: Axes
    normalize: Bool = False


#: Tag of the model-name member of the union TimeDistributed wraps.
MODEL_TAG = "model name"


class TimeDistributedArgs(LayerArgs):
    """``TimeDistributed(layer)``: ``layer`` is a layer (``{Dense: {units: 10}}``) or the name of
    a model of the ``models`` section. The graph constructor builds the inner layer (or
    model) itself, so ``layer_kwargs()`` is empty; ``layer`` is on ``args.layer``."""

    layer: InnerLayer

    @model_validator(mode="after")
    def _shape_on_the_wrapper(self):
        if isinstance(self.layer, LayerSpecBase):
            inner = self.layer.args
            for field in (*inner.shape_shortcuts, "input_shape", "batch_input_shape"):
                if getattr(inner, field) is not None:
                    raise config_error(
                        "input_hints", "give the input shape to TimeDistributed (with the "
                                       "time axis first), not to the layer it wraps",
                        at=f"layer.{self.layer.tag}.{field}")
        return self

    @property
    def model_name(self) -> str | None:
        """The model this wraps (a name of the ``models`` section), or None for a layer."""
        return self.layer if isinstance(self.layer, str) else None

    def layer_kwargs(self) -> dict[str, Any]:
        """Nothing: the wrapped layer is built by the graph constructor from ``layer``."""
        return {}


# --- the wrappers {ClassName: args} -----------------------------------------------------------


class LayerSpecBase(TaggedSpec):
    """A layer as written in a sequential list: ``{Dense: {units: 10}}``."""

    @property
    def class_name(self) -> str:
        """The Keras class name (``"Dense"``)."""
        return self.tag


class DenseSpec(LayerSpecBase):
    Dense: args_of(DenseArgs)


class ActivationSpec(LayerSpecBase):
    Activation: args_of(ActivationArgs)


class DropoutSpec(LayerSpecBase):
    Dropout: args_of(DropoutArgs)


class FlattenSpec(LayerSpecBase):
    Flatten: args_of(FlattenArgs)


class Conv2DSpec(LayerSpecBase):
    Conv2D: args_of(Conv2DArgs)


class MaxPooling2DSpec(LayerSpecBase):
    MaxPooling2D: args_of(MaxPooling2DArgs)


class EmbeddingSpec(LayerSpecBase):
    Embedding: args_of(EmbeddingArgs)


class LSTMSpec(LayerSpecBase):
    LSTM: args_of(LSTMArgs)


class GRUSpec(LayerSpecBase):
    GRU: args_of(GRUArgs)


class SimpleRNNSpec(LayerSpecBase):
    SimpleRNN: args_of(SimpleRNNArgs)


class TimeDistributedSpec(LayerSpecBase):
    TimeDistributed: args_of(TimeDistributedArgs)


class ConcatenateSpec(LayerSpecBase):
    Concatenate: args_of(ConcatenateArgs)


class AddSpec(LayerSpecBase):
    Add: args_of(MergeArgs)


class SubtractSpec(LayerSpecBase):
    Subtract: args_of(MergeArgs)


class MultiplySpec(LayerSpecBase):
    Multiply: args_of(MergeArgs)


class AverageSpec(LayerSpecBase):
    Average: args_of(MergeArgs)


class MaximumSpec(LayerSpecBase):
    Maximum: args_of(MergeArgs)


class MinimumSpec(LayerSpecBase):
    Minimum: args_of(MergeArgs)


class DotSpec(LayerSpecBase):
    Dot: args_of(DotArgs)


#: Tag (Keras class name) -> wrapper model; equals the engine's layer registry.
LAYER_SPECS: dict[str, type[LayerSpecBase]] = {
    "Dense": DenseSpec,
    "Activation": ActivationSpec,
    "Dropout": DropoutSpec,
    "Flatten": FlattenSpec,
    "Conv2D": Conv2DSpec,
    "MaxPooling2D": MaxPooling2DSpec,
    "Embedding": EmbeddingSpec,
    "LSTM": LSTMSpec,
    "GRU": GRUSpec,
    "SimpleRNN": SimpleRNNSpec,
    "TimeDistributed": TimeDistributedSpec,
    "Concatenate": ConcatenateSpec,
    "Add": AddSpec,
    "Subtract": SubtractSpec,
    "Multiply": MultiplySpec,
    "Average": AverageSpec,
    "Maximum": MaximumSpec,
    "Minimum": MinimumSpec,
    "Dot": DotSpec,
}

LayerSpec = tagged_union(
    SingleKey("layer", LAYER_SPECS, "{Dense: {units: 10}}"), LAYER_SPECS,
)

#: What TimeDistributed wraps: a layer, or a model's name (the same union plus a string).
InnerLayer = tagged_union(
    SingleKey("layer", LAYER_SPECS, "{Dense: {units: 10}} or a model's name",
              str_tag=MODEL_TAG),
    {MODEL_TAG: Name, **LAYER_SPECS},
)

# TimeDistributed refers to the union that contains it: complete the two models now.
TimeDistributedArgs.model_rebuild()
TimeDistributedSpec.model_rebuild()
