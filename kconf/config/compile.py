"""The ``compile`` section: optimizer, loss and metrics, as in ``model.compile(...)``."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, WithJsonSchema

from kconf.config.fields import (
    IMPORT_PATH_PATTERN,
    Bool,
    ConfigModel,
    Fraction,
    NonNegativeFloat,
    PositiveFloat,
    SingleKey,
    Str,
    TaggedSpec,
    args_of,
    check_import_path,
    choice,
    config_error,
    tagged_union,
    unknown_name_message,
)
from kconf.config.names import LOSS_NAMES, METRIC_NAMES, OPTIMIZER_ALIASES, OPTIMIZER_NAMES


def learning_rate(default: float) -> Any:
    """A ``learning_rate`` field that also reads Keras 2's ``lr`` (giving both is an error)."""
    return Field(default, validation_alias=AliasChoices("learning_rate", "lr"))


# --- optimizers: one small args model each ----------------------------------------------------


class SGDArgs(ConfigModel):
    learning_rate: PositiveFloat = learning_rate(0.01)
    momentum: NonNegativeFloat = 0.0
    nesterov: Bool = False
    decay: NonNegativeFloat = 0.0


class RMSpropArgs(ConfigModel):
    learning_rate: PositiveFloat = learning_rate(0.001)
    rho: Fraction = 0.9
    momentum: NonNegativeFloat = 0.0
    epsilon: PositiveFloat = 1e-7
    centered: Bool = False
    decay: NonNegativeFloat = 0.0


class AdamArgs(ConfigModel):
    learning_rate: PositiveFloat = learning_rate(0.001)
    beta_1: Fraction = 0.9
    beta_2: Fraction = 0.999
    epsilon: PositiveFloat = 1e-7
    amsgrad: Bool = False
    decay: NonNegativeFloat = 0.0


class OptimizerSpecBase(TaggedSpec):
    """An optimizer as ``{SGD: {args}}`` (the string form ``sgd`` becomes ``{SGD: {}}``)."""

    @property
    def class_name(self) -> str:
        """The engine's optimizer class name: ``"SGD"``, ``"RMSprop"`` or ``"Adam"``."""
        return self.tag

    def kwargs(self) -> dict[str, Any]:
        """Every keyword argument of the engine optimizer's constructor (``learning_rate``,
        never ``lr``), defaults filled."""
        return self.args.model_dump()


class SGDSpec(OptimizerSpecBase):
    SGD: args_of(SGDArgs)


class RMSpropSpec(OptimizerSpecBase):
    RMSprop: args_of(RMSpropArgs)


class AdamSpec(OptimizerSpecBase):
    Adam: args_of(AdamArgs)


OPTIMIZER_SPECS: dict[str, type[OptimizerSpecBase]] = {
    "SGD": SGDSpec, "RMSprop": RMSpropSpec, "Adam": AdamSpec,
}

_OPTIMIZER_STRINGS = (*OPTIMIZER_ALIASES, *OPTIMIZER_NAMES)


def _optimizer_from_string(value: Any) -> Any:
    """``"adam"`` or ``"Adam"`` -> ``{"Adam": {}}``; anything else passes through."""
    if isinstance(value, str):
        name = OPTIMIZER_ALIASES.get(value, value)
        if name in OPTIMIZER_SPECS:
            return {name: {}}
        raise config_error("unknown_optimizer",
                           unknown_name_message("optimizer", value, _OPTIMIZER_STRINGS))
    return value


Optimizer = Annotated[
    tagged_union(SingleKey("optimizer", OPTIMIZER_NAMES, "{SGD: {learning_rate: 0.01}}"),
                 OPTIMIZER_SPECS),
    BeforeValidator(
        _optimizer_from_string,
        json_schema_input_type=Union[Literal[_OPTIMIZER_STRINGS], SGDSpec, RMSpropSpec, AdamSpec],
    ),
]

# --- loss and metrics -------------------------------------------------------------------------

Loss = choice("loss", LOSS_NAMES)


def _check_metric(value: str) -> str:
    if ":" in value:
        return check_import_path(value)
    if value not in METRIC_NAMES:
        raise config_error("unknown_metric", unknown_name_message("metric", value, METRIC_NAMES)
                           + "; a custom metric is an import path 'package.module:function'")
    return value


Metric = Annotated[
    Str,
    AfterValidator(_check_metric),
    WithJsonSchema({"anyOf": [{"type": "string", "enum": list(METRIC_NAMES)},
                              {"type": "string", "pattern": IMPORT_PATH_PATTERN}]}),
]


class CompileConfig(ConfigModel):
    """``model.compile(optimizer, loss, metrics)``."""

    optimizer: Optimizer = Field(description="sgd | rmsprop | adam, or {SGD: {args}}")
    loss: Loss
    metrics: list[Metric] = Field(
        default_factory=list,
        description="names, or import paths 'package.module:function' of custom metrics",
    )
