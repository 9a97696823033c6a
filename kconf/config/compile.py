"""The ``compile`` section: optimizer, loss(es), loss weights and metrics, as in
``model.compile(...)``."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping, Sequence, Union

from pydantic import (
    AfterValidator,
    create_model,
    AliasChoices,
    BeforeValidator,
    Field,
    WithJsonSchema,
    model_validator,
)

from kconf.args.lazy import LazyMembers
from kconf.args.fields import (
    IMPORT_PATH_PATTERN,
    Bool,
    ConfigModel,
    DeferredModel,
    bounded,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Str,
    check_import_path,
    choice,
    config_error,
)
from kconf.args.unions import SingleKey, TaggedSpec, args_of, by_kind, lazy_union
from kconf.text import unknown_name_message
from kconf.args.names import OPTIMIZER_ALIASES, OPTIMIZER_NAMES
from kconf.config.objectives import (
    Loss,
    LossMapping,
    Metric,
    MetricClass,
    MetricName,
    is_loss_class_mapping,
)


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


class ScheduleSpecBase(TaggedSpec):
    """A schedule as ``{ExponentialDecay: {args}}``."""


def _wrappers(base: type[TaggedSpec], args: dict[str, type]) -> LazyMembers:
    """The wrapper ``{Name: args}`` of each member of a family, built when a config first
    names it (``SGDSpec``), as a name of this module too (pickle finds it there)."""
    return LazyMembers(args, lambda name: create_model(
        f"{name}Spec", __base__=base, __module__=__name__, **{name: (args_of(args[name]), ...)}))


SCHEDULE_SPECS = _wrappers(ScheduleSpecBase, {
    "ExponentialDecay": ExponentialDecayArgs, "InverseTimeDecay": InverseTimeDecayArgs,
    "PiecewiseConstantDecay": PiecewiseConstantDecayArgs, "CosineDecay": CosineDecayArgs,
    "PolynomialDecay": PolynomialDecayArgs, "CosineDecayRestarts": CosineDecayRestartsArgs})

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


class OptimizerSpecBase(TaggedSpec):
    """An optimizer as ``{SGD: {args}}`` (the string form ``sgd`` becomes ``{SGD: {}}``)."""

    @property
    def class_name(self) -> str:
        """The engine's optimizer class name (``"SGD"``, ``"AdamW"``, ...)."""
        return self.tag

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the engine optimizer's constructor (``learning_rate``,
        never ``lr``), defaults filled; ``lazy_sparse`` and Keras's common options
        (``OptimizerOptions``) only where the config sets them."""
        return self.args.model_dump(exclude_none=True)


OPTIMIZER_SPECS: Mapping[str, type[OptimizerSpecBase]] = _wrappers(OptimizerSpecBase, {
    "SGD": SGDArgs, "RMSprop": RMSpropArgs, "Adam": AdamArgs, "AdamW": AdamWArgs,
    "Adamax": AdamaxArgs, "Nadam": NadamArgs, "Adagrad": AdagradArgs,
    "Adadelta": AdadeltaArgs, "Ftrl": FtrlArgs, "Lion": LionArgs, "Lamb": LambArgs})


def __getattr__(name: str) -> Any:
    """The wrappers as names of this module (``SGDSpec``): pickle and copy find them here."""
    for specs in (OPTIMIZER_SPECS, SCHEDULE_SPECS):
        if name.endswith("Spec") and name[:-len("Spec")] in specs:
            return specs[name[:-len("Spec")]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


class _NameOrSpec:
    """The JSON schema of an optimizer: one of its names, or a ``{Name: {args}}`` wrapper."""

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        members = handler(schema)
        return {"anyOf": [{"type": "string", "enum": list(_OPTIMIZER_STRINGS)},
                          *members.get("oneOf", [members])]}


Optimizer = Annotated[
    lazy_union(SingleKey("optimizer", OPTIMIZER_NAMES, "{SGD: {learning_rate: 0.01}}"),
               OPTIMIZER_SPECS),
    BeforeValidator(_optimizer_from_string),
    _NameOrSpec(),
]

# --- loss and metrics (names, or classes with arguments: kconf.config.objectives) ----------

#: One loss for every output, one per output in order, or one per output by name.
Losses = by_kind(
    scalar=Loss,
    list=Annotated[list[Loss], Field(min_length=1)],
    mapping=LossMapping,
    expected="a loss name, a list (one per output) or a mapping output -> loss",
)

#: Weights of the outputs' losses in the total: a list in output order, or by output name.
LossWeights = by_kind(
    list=Annotated[list[NonNegativeFloat], Field(min_length=1)],
    mapping=Annotated[dict[Str, NonNegativeFloat], Field(min_length=1)],
    expected="a list (one weight per output) or a mapping output -> weight",
)

#: The metrics of one output: a name, a class with arguments, or a list.
OutputMetrics = by_kind(scalar=MetricName, list=list[Metric], mapping=MetricClass)

#: Metrics for every output (a list), or by output name.
Metrics = by_kind(
    list=list[Metric], mapping=dict[Str, OutputMetrics],
    expected="a list of metrics (for every output) or a mapping output -> metrics",
)


class CompileConfig(ConfigModel):
    """``model.compile(optimizer, loss, metrics, loss_weights, weighted_metrics)``.

    With several outputs, ``loss`` is one name (for every output), a list (in output order)
    or a mapping by output name; ``loss_weights`` a list or a mapping (an output left out
    weighs 1.0); ``metrics`` a list (for every output) or a mapping by output name. An output
    is named by its tensor name in ``outputs``, or by the layer whose call computed it
    (``RunConfig.output_aliases``, which the ``*_for`` methods take); ``load_config`` checks
    every name and count.
    """

    optimizer: Optimizer = Field(description="a name (sgd, adam, adamw, ...), or "
                                             "{SGD: {args}}")
    loss: Losses = Field(description="a name, a list (one per output) or a mapping "
                                     "output -> name")
    loss_weights: LossWeights | None = Field(
        None, description="a list (one per output) or a mapping output -> weight; default 1",
    )
    metrics: Metrics = Field(
        default_factory=list,
        description="names, or import paths 'package.module:function' of custom metrics; "
                    "a list for every output, or a mapping output -> list",
    )
    weighted_metrics: Metrics = Field(
        default_factory=list,
        description="metrics that take the sample weights (sample_weight data, "
                    "fit.class_weight), as metrics: a list or a mapping output -> list",
    )

    @staticmethod
    def _by_output(mapping: dict[str, Any], outputs: Sequence[str],
                   aliases: Mapping[str, str] | None) -> dict[str, Any]:
        """A mapping keyed by output or alias, keyed by output.

        Raises:
            ValueError: a key that is neither (the aliases were not given).
        """
        aliases = aliases or {}
        out = {}
        for key, value in mapping.items():
            name = key if key in outputs else aliases.get(key)
            if name is None:
                raise ValueError(f"{key!r} is not an output ({', '.join(outputs)}) nor a name "
                                 "of one; pass the config's output_aliases()")
            out[name] = value
        return out

    def loss_for(self, outputs: Sequence[str],
                 aliases: Mapping[str, str] | None = None) -> list[Any]:
        """The loss of each output: a name, or a ``{Class: args}`` spec
        (``kconf.engine.loss_classes.get`` takes both).

        Args:
            outputs: the model's output names, in order.
            aliases: other names of outputs (layer name -> output):
                ``RunConfig.output_aliases()``; default: none.

        Returns:
            One loss per output, in order.

        Raises:
            ValueError: the loss does not fit ``outputs`` (``load_config`` reports that to
                users first).
        """
        if isinstance(self.loss, str) or is_loss_class_mapping(self.loss):
            return [self.loss] * len(outputs)
        if isinstance(self.loss, list):
            if len(self.loss) != len(outputs):
                raise ValueError(f"{len(self.loss)} losses for {len(outputs)} outputs")
            return list(self.loss)
        by_output = self._by_output(self.loss, outputs, aliases)
        missing = [o for o in outputs if o not in by_output]
        if missing:
            raise ValueError(f"no loss for output(s) {', '.join(missing)}")
        return [by_output[o] for o in outputs]

    def loss_weights_for(self, outputs: Sequence[str],
                         aliases: Mapping[str, str] | None = None) -> list[float]:
        """The weight of each output's loss in the total loss (Σ wᵢ·Lᵢ).

        Args:
            outputs: the model's output names, in order.
            aliases: as for ``loss_for``.

        Returns:
            One weight per output; 1.0 where none is given.
        """
        weights = self.loss_weights
        if weights is None:
            return [1.0] * len(outputs)
        if isinstance(weights, list):
            if len(weights) != len(outputs):
                raise ValueError(f"{len(weights)} loss weights for {len(outputs)} outputs")
            return [float(w) for w in weights]
        by_output = self._by_output(weights, outputs, aliases)
        return [float(by_output.get(o, 1.0)) for o in outputs]

    def metrics_for(self, outputs: Sequence[str],
                    aliases: Mapping[str, str] | None = None,
                    key: str = "metrics") -> list[list[str]]:
        """The metrics of each output (names or import paths, as written).

        Args:
            outputs: the model's output names, in order.
            aliases: as for ``loss_for``.
            key: ``metrics``, or ``weighted_metrics``.

        Returns:
            One list per output: the whole list for a list, the output's entry (or none)
            for a mapping.
        """
        metrics = getattr(self, key)
        if isinstance(metrics, list):
            return [list(metrics) for _ in outputs]
        by_output = self._by_output(metrics, outputs, aliases)
        out = []
        for name in outputs:
            given = by_output.get(name, [])
            out.append(list(given) if isinstance(given, list) else [given])
        return out

    def metric_items(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every metric (``metrics``, then ``weighted_metrics``) with its config path.

        Returns:
            ``(("compile", "metrics", i), name)`` for a list; ``(("compile", "metrics",
            output, i), name)`` (or ``(..., output)`` for a single name) for a mapping;
            likewise under ``weighted_metrics``.
        """
        out = []
        for section in ("metrics", "weighted_metrics"):
            base, metrics = ("compile", section), getattr(self, section)
            if isinstance(metrics, list):
                out += [((*base, i), m) for i, m in enumerate(metrics)]
                continue
            for key, given in metrics.items():
                if not isinstance(given, list):
                    out.append(((*base, key), given))
                else:
                    out += [((*base, key, i), m) for i, m in enumerate(given)]
        return out
