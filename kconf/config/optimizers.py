"""The argument models of the optimizers and learning-rate schedules of ``compile``
(Keras's names and defaults), and the options every optimizer takes (``OptimizerOptions``).

``kconf.config.compile`` names the families (``OPTIMIZER_SPECS``, ``SCHEDULE_SPECS``); this
module is imported when a config first names an optimizer or a schedule, so that start-up
does not build them all.
"""

from typing import Annotated, Any

from pydantic import AliasChoices, Field, model_validator

from kconf.args.fields import (
    Bool,
    ConfigModel,
    DeferredModel,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    bounded,
    config_error,
)
from kconf.args.unions import SingleKey, by_kind, lazy_union
from kconf.config.compile import SCHEDULE_SPECS

# --- learning-rate schedules (keras.optimizers.schedules) -------------------------------------


class ExponentialDecayArgs(DeferredModel):
    initial_learning_rate: PositiveFloat
    decay_steps: PositiveInt
    decay_rate: PositiveFloat
    staircase: Bool = False


class InverseTimeDecayArgs(ExponentialDecayArgs):
    pass


class PiecewiseConstantDecayArgs(DeferredModel):
    boundaries: list[PositiveInt]
    values: list[PositiveFloat]

    @model_validator(mode="after")
    def _one_more_value(self):
        if len(self.values) != len(self.boundaries) + 1:
            raise config_error("schedule", "give one more value than boundaries", at="values")
        return self


class CosineDecayArgs(DeferredModel):
    initial_learning_rate: NonNegativeFloat
    decay_steps: PositiveInt
    alpha: NonNegativeFloat = 0.0
    warmup_target: PositiveFloat | None = None
    warmup_steps: NonNegativeInt = 0


class PolynomialDecayArgs(DeferredModel):
    initial_learning_rate: NonNegativeFloat
    decay_steps: PositiveInt
    end_learning_rate: NonNegativeFloat = 0.0001
    power: NonNegativeFloat = 1.0
    cycle: Bool = False


class CosineDecayRestartsArgs(DeferredModel):
    initial_learning_rate: NonNegativeFloat
    first_decay_steps: PositiveInt
    t_mul: PositiveFloat = 2.0
    m_mul: NonNegativeFloat = 1.0
    alpha: NonNegativeFloat = 0.0


LearningRate = by_kind(
    "a positive number or a schedule like {ExponentialDecay: {...}}",
    scalar=PositiveFloat,
    mapping=lazy_union(SingleKey("learning-rate schedule", SCHEDULE_SPECS,
                                   "{ExponentialDecay: {initial_learning_rate: 0.1, "
                                   "decay_steps: 1000, decay_rate: 0.9}}"), SCHEDULE_SPECS))


def learning_rate(default: float) -> Any:
    """A ``learning_rate`` field that also reads Keras 2's ``lr`` (giving both is an error)."""
    return Field(default, validation_alias=AliasChoices("learning_rate", "lr"))


#: kconf's option (not Keras's): how a row-sparse gradient (an Embedding's) is applied. Left
#: out (or null), the engine's default: false, Keras's dense semantics.
LazySparse = Annotated[Bool | None, Field(
    None,
    description="true: update only the rows a sparse (Embedding) gradient touches, their "
                "slots included (TensorFlow's LazyAdam semantics); false (default): Keras's "
                "dense semantics, the same result as the dense gradient",
)]


# --- optimizers: one small args model each ----------------------------------------------------

#: The number of calls whose gradients make one update: 2 or more (Keras's).
AccumulationSteps = bounded(int, ge=2)
#: EMA momentum: a number in [0, 1].
EmaMomentum = bounded(float, ge=0, le=1)


class OptimizerOptions(DeferredModel):
    """Keras's arguments of every optimizer (``kconf.engine.optimizers.options``), after each
    optimizer's own ones."""

    weight_decay: NonNegativeFloat | None = None
    clipnorm: NonNegativeFloat | None = None
    clipvalue: NonNegativeFloat | None = None
    global_clipnorm: NonNegativeFloat | None = None
    # left out (null) means Keras's default; so resolved configs list only the options given
    use_ema: Bool | None = Field(None, description="keep a moving average of the weights "
                                                   "(default false)")
    ema_momentum: EmaMomentum | None = Field(None, description="default 0.99")
    ema_overwrite_frequency: PositiveInt | None = None
    loss_scale_factor: PositiveFloat | None = None
    gradient_accumulation_steps: AccumulationSteps | None = None

    @model_validator(mode="after")
    def _one_clipping(self):
        given = [name for name in ("clipnorm", "clipvalue", "global_clipnorm")
                 if getattr(self, name) is not None]
        if len(given) > 1:
            raise config_error("clipping", f"give only one of clipnorm, clipvalue and "
                               f"global_clipnorm (here: {', '.join(given)})", at=given[1])
        if getattr(self, "lazy_sparse", None) and self.gradient_accumulation_steps:
            raise config_error("lazy_accumulation", "lazy_sparse cannot be used with "
                               "gradient_accumulation_steps (the accumulated gradient is "
                               "dense)", at="lazy_sparse")
        return self


def with_options(fields: type[ConfigModel], name: str) -> type[ConfigModel]:
    """The arguments model ``name``: an optimizer's own ``fields`` followed by Keras's common
    options (its own are listed first, in "valid keys" messages and the JSON Schema). The
    result is bound to ``name`` in this module, so it pickles as any class."""
    return type(name, (OptimizerOptions, fields),
                {"__module__": __name__, "__qualname__": name, "__doc__": fields.__doc__})


# Each optimizer's own arguments (Keras's names and defaults); its public ``<Name>Args`` model
# adds the common options after them (``with_options``, below).


class _SGDFields(DeferredModel):
    learning_rate: LearningRate = learning_rate(0.01)
    momentum: NonNegativeFloat = 0.0
    nesterov: Bool = False
    decay: NonNegativeFloat = 0.0
    lazy_sparse: LazySparse


class _RMSpropFields(DeferredModel):
    learning_rate: LearningRate = learning_rate(0.001)
    rho: Fraction = 0.9
    momentum: NonNegativeFloat = 0.0
    epsilon: PositiveFloat = 1e-7
    centered: Bool = False
    decay: NonNegativeFloat = 0.0
    lazy_sparse: LazySparse


class _AdamFields(DeferredModel):
    learning_rate: LearningRate = learning_rate(0.001)
    beta_1: Fraction = 0.9
    beta_2: Fraction = 0.999
    epsilon: PositiveFloat = 1e-7
    amsgrad: Bool = False
    decay: NonNegativeFloat = 0.0
    lazy_sparse: LazySparse


class _AdamaxFields(DeferredModel):
    learning_rate: LearningRate = learning_rate(0.001)
    beta_1: Fraction = 0.9
    beta_2: Fraction = 0.999
    epsilon: PositiveFloat = 1e-7
    decay: NonNegativeFloat = 0.0
    lazy_sparse: LazySparse


class _AdagradFields(DeferredModel):
    learning_rate: LearningRate = learning_rate(0.001)
    initial_accumulator_value: NonNegativeFloat = 0.1
    epsilon: PositiveFloat = 1e-7
    decay: NonNegativeFloat = 0.0
    lazy_sparse: LazySparse


class _AdadeltaFields(DeferredModel):
    learning_rate: LearningRate = learning_rate(0.001)
    rho: Fraction = 0.95
    epsilon: PositiveFloat = 1e-7
    decay: NonNegativeFloat = 0.0
    lazy_sparse: LazySparse


class _FtrlFields(DeferredModel):
    learning_rate: LearningRate = learning_rate(0.001)
    learning_rate_power: bounded(float, le=0) = -0.5
    initial_accumulator_value: NonNegativeFloat = 0.1
    l1_regularization_strength: NonNegativeFloat = 0.0
    l2_regularization_strength: NonNegativeFloat = 0.0
    l2_shrinkage_regularization_strength: NonNegativeFloat = 0.0
    beta: NonNegativeFloat = 0.0
    decay: NonNegativeFloat = 0.0
    lazy_sparse: LazySparse


class _LionFields(DeferredModel):
    learning_rate: LearningRate = learning_rate(0.001)
    beta_1: bounded(float, gt=0, le=1) = 0.9
    beta_2: Fraction = 0.99
    decay: NonNegativeFloat = 0.0
    lazy_sparse: LazySparse


SGDArgs = with_options(_SGDFields, "SGDArgs")
RMSpropArgs = with_options(_RMSpropFields, "RMSpropArgs")
AdamArgs = with_options(_AdamFields, "AdamArgs")
AdamaxArgs = with_options(_AdamaxFields, "AdamaxArgs")
AdagradArgs = with_options(_AdagradFields, "AdagradArgs")
AdadeltaArgs = with_options(_AdadeltaFields, "AdadeltaArgs")
FtrlArgs = with_options(_FtrlFields, "FtrlArgs")
LionArgs = with_options(_LionFields, "LionArgs")
NadamArgs = with_options(_AdamaxFields, "NadamArgs")
LambArgs = with_options(_AdamaxFields, "LambArgs")


class AdamWArgs(AdamArgs):
    """Adam's arguments and options, ``weight_decay`` a number (0.004 by default)."""

    weight_decay: NonNegativeFloat = 0.004
