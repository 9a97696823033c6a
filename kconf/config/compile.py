"""The ``compile`` section: optimizer, loss(es), loss weights and metrics, as in
``model.compile(...)``.

An optimizer is a name (``adam``) or ``{SGD: {args}}``, its learning rate a number or a
schedule ``{ExponentialDecay: {args}}``; their argument models are in
``kconf.config.optimizers``, imported (and each wrapper built) when a config first names one.
"""

from typing import Annotated, Any, Mapping, Sequence

from pydantic import BeforeValidator, Field

from kconf.args.fields import ConfigModel, NonNegativeFloat, Str, config_error
from kconf.args.unions import (
    SingleKey,
    TaggedSpec,
    Wrappers,
    by_kind,
    imported,
    lazy_union,
    wrapper_lookup,
)
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

#: Keras's learning-rate schedules (``keras.optimizers.schedules``) a config can name.
SCHEDULE_NAMES: tuple[str, ...] = ("ExponentialDecay", "InverseTimeDecay",
                                   "PiecewiseConstantDecay", "CosineDecay", "PolynomialDecay",
                                   "CosineDecayRestarts")


def _args_models(names: tuple[str, ...]) -> Any:
    """Name -> its argument model ``<Name>Args`` in ``kconf.config.optimizers``."""
    return imported({name: f"kconf.config.optimizers:{name}Args" for name in names})


class ScheduleSpecBase(TaggedSpec):
    """A schedule as ``{ExponentialDecay: {args}}``."""


SCHEDULE_SPECS = Wrappers(ScheduleSpecBase, __name__, SCHEDULE_NAMES,
                          _args_models(SCHEDULE_NAMES))


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


OPTIMIZER_SPECS: Mapping[str, type[OptimizerSpecBase]] = Wrappers(
    OptimizerSpecBase, __name__, OPTIMIZER_NAMES, _args_models(OPTIMIZER_NAMES))

#: The wrappers are names of this module too (``SGDSpec``).
__getattr__ = wrapper_lookup(__name__, OPTIMIZER_SPECS, SCHEDULE_SPECS)


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
