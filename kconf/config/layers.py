"""Layer configs: one frozen args model per Keras layer, wrapped as ``{ClassName: args}``.

``LAYER_SPECS`` (tag -> wrapper) is the closed list of layers a sequential model may name;
``LayerSpec`` is the tagged union built from it once.
"""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, create_model, model_validator

from kconf.config.fields import (
    Bool,
    ConfigModel,
    Fraction,
    IntPair,
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


#: Tag of the plain-name member of the initializer union.
NAME_TAG = "name"
InitializerName = choice("initializer", INITIALIZER_NAMES)
Initializer = tagged_union(
    SingleKey("initializer", INITIALIZER_NAMES, "{random_normal: {stddev: 0.05}}",
              str_tag=NAME_TAG),
    {NAME_TAG: InitializerName, **{n: _initializer_spec(n) for n in INITIALIZER_NAMES}},
)


def initializer_value(init: Any) -> Any:
    """The engine's form of an initializer: its name, or ``{name: {all args}}``."""
    if isinstance(init, str):
        return init
    return {init.tag: init.args.model_dump()}


# --- layer arguments --------------------------------------------------------------------------

#: A shape with the batch axis first (``[null, 20]``).
BatchShape = Annotated[tuple[Union[PositiveInt, None], ...], Field(min_length=2)]

_HINT_FIELDS = ("input_shape", "input_dim", "batch_input_shape", "batch_size")
_COMMON_FIELDS = ("name", "trainable", *_HINT_FIELDS)


class LayerArgs(ConfigModel):
    """Arguments every layer takes: ``name``, ``trainable`` and the input-shape hints."""

    name: Str | None = None
    trainable: Bool = True
    input_shape: Shape | None = None
    batch_size: PositiveInt | None = None
    batch_input_shape: BatchShape | None = None

    @model_validator(mode="after")
    def _one_input_hint(self):
        given = [f for f in ("input_dim", "input_shape", "batch_input_shape")
                 if getattr(self, f, None) is not None]
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

    def input_hint(self) -> tuple[int | None, tuple[int | None, ...]] | None:
        """The input shape this layer declares, Keras-style.

        Returns:
            ``(batch_size, shape_without_batch)`` from ``input_shape``/``input_dim``
            (+ ``batch_size``) or ``batch_input_shape``; None when no shape is given.
        """
        if self.batch_input_shape is not None:
            return self.batch_input_shape[0], tuple(self.batch_input_shape[1:])
        input_dim = getattr(self, "input_dim", None)
        if input_dim is not None:
            return self.batch_size, (input_dim,)
        if self.input_shape is not None:
            return self.batch_size, tuple(self.input_shape)
        return None

    def layer_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the engine layer's constructor.

        Returns:
            Every argument except ``name``, ``trainable`` and the input-shape hints; pairs
            are tuples and initializers are names or ``{name: {args}}``.
        """
        out = {}
        for field in type(self).model_fields:
            if field in _COMMON_FIELDS:
                continue
            value = getattr(self, field)
            if field.endswith("_initializer"):
                value = initializer_value(value)
            out[field] = value
        return out


class DenseArgs(LayerArgs):
    """``Dense(units, activation=None, use_bias=True, ...)``; ``input_dim`` is Keras's shortcut
    for ``input_shape: [input_dim]``."""

    units: PositiveInt
    activation: Activation | None = None
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"
    input_dim: PositiveInt | None = None


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


#: Tag (Keras class name) -> wrapper model; equals the engine's layer registry.
LAYER_SPECS: dict[str, type[LayerSpecBase]] = {
    "Dense": DenseSpec,
    "Activation": ActivationSpec,
    "Dropout": DropoutSpec,
    "Flatten": FlattenSpec,
    "Conv2D": Conv2DSpec,
    "MaxPooling2D": MaxPooling2DSpec,
}

LayerSpec = tagged_union(
    SingleKey("layer", LAYER_SPECS, "{Dense: {units: 10}}"), LAYER_SPECS,
)
