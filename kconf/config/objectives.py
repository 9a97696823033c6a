"""Losses and metrics in the ``compile`` section: Keras's names, or classes with arguments.

A loss is a name (``huber``, ``mse``) or ``{Huber: {delta: 0.5}}``; a metric a name (``auc``,
``accuracy``), an import path of a custom function, or ``{AUC: {curve: PR}}``. The wrappers
``{Class: args}`` are derived from the engine's registries (``kconf.engine.loss_classes``,
``kconf.engine.metric_classes``), whose classes carry their argument models; an unknown
argument or a bad value is a located config error like any other.

``loss: {Huber: {...}}`` (one key, a loss class) is one loss for every output; a mapping by
output name is told apart by its keys. ``metric_problems`` checks each metric against the
output it will see (AUC on a 10-way softmax without ``multi_label`` ...), located at the
metric in the file.
"""

from typing import Annotated, Any, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, WithJsonSchema

from kconf.args.fields import IMPORT_PATH_PATTERN, Str, check_import_path, choice, config_error
from kconf.args.unions import (
    SingleKey,
    TaggedSpec,
    Wrappers,
    by_kind,
    lazy_union,
    wrapper_lookup,
)
from kconf.engine import loss_classes, metric_classes
from kconf.errors import Problem
from kconf.text import unknown_name_message


class LossSpecBase(TaggedSpec):
    """A loss class with its arguments: ``{Huber: {delta: 0.5}}``."""


class MetricSpecBase(TaggedSpec):
    """A metric class with its arguments: ``{AUC: {curve: PR}}``."""


#: Class name -> the wrapper ``{Class: args}`` of each class of the engine's registries, built
#: when a config first names it.
LOSS_SPECS = Wrappers(LossSpecBase, __name__, loss_classes.LOSS_CLASSES,
                      lambda name: loss_classes.LOSS_CLASSES[name].Args)
METRIC_SPECS = Wrappers(MetricSpecBase, __name__, metric_classes.METRIC_CLASSES,
                        lambda name: metric_classes.METRIC_CLASSES[name].Args)

#: Each wrapper is also a name of this module (``HuberSpec``).
__getattr__ = wrapper_lookup(__name__, LOSS_SPECS, METRIC_SPECS)

LOSS_NAMES: tuple[str, ...] = loss_classes.NAMES
METRIC_NAMES: tuple[str, ...] = metric_classes.NAMES

LossClass = lazy_union(SingleKey("loss", LOSS_SPECS, "{Huber: {delta: 0.5}}"), LOSS_SPECS)
MetricClass = lazy_union(SingleKey("metric", METRIC_SPECS, "{AUC: {curve: PR}}"),
                           METRIC_SPECS)

#: One loss: a name or a class with arguments.
Loss = by_kind(scalar=choice("loss", LOSS_NAMES), mapping=LossClass,
               expected="a loss name or a mapping like {Huber: {delta: 0.5}}")


def _check_metric(value: str) -> str:
    if ":" in value:
        return check_import_path(value)
    if value not in METRIC_NAMES:
        raise config_error("unknown_metric", unknown_name_message("metric", value, METRIC_NAMES)
                           + "; a custom metric is an import path 'package.module:function'")
    return value


MetricName = Annotated[
    Str,
    AfterValidator(_check_metric),
    WithJsonSchema({"anyOf": [{"type": "string", "enum": list(METRIC_NAMES)},
                              {"type": "string", "pattern": IMPORT_PATH_PATTERN}]}),
]

#: One metric: a name, an import path, or a class with arguments.
Metric = by_kind(scalar=MetricName, mapping=MetricClass,
                 expected="a metric name or a mapping like {AUC: {curve: PR}}")


def is_loss_class_mapping(value: Any) -> bool:
    """Whether a ``loss`` mapping is one loss class (``{Huber: {delta: 0.5}}``, or a
    misspelt class: one capitalised key over arguments) rather than losses by output."""
    if isinstance(value, LossSpecBase):
        return True
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((key, inner),) = value.items()
    if key in LOSS_SPECS:
        return True
    inner_is_loss = (isinstance(inner, str) or
                     (isinstance(inner, dict) and len(inner) == 1
                      and next(iter(inner)) in LOSS_SPECS))
    return isinstance(key, str) and key[:1].isupper() and not inner_is_loss


def _loss_mapping_kind(value: Any) -> str:
    return "loss_class" if is_loss_class_mapping(value) else "by_output"


#: A ``loss`` mapping: one loss class for every output, or a loss per output name.
LossMapping = Annotated[
    Union[Annotated[LossClass, Tag("loss_class")],
          Annotated[Annotated[dict[Str, Loss], Field(min_length=1)], Tag("by_output")]],
    Discriminator(_loss_mapping_kind),
]


def loss_class_name(loss: Any) -> str:
    """The class a config's loss stands for (``"mse"`` -> ``"MeanSquaredError"``)."""
    return loss_classes.split(loss)[0]


def metric_problems(cfg, graph) -> list[Problem]:
    """Metrics that cannot take the output they are given, located at the metric.

    Args:
        cfg: a loaded config (its ``compile`` and ``source``).
        graph: the model's graph (output shapes).

    Returns:
        One problem per metric and output that do not fit (empty when all do).
    """
    outputs = [t.name for t in graph.outputs]
    shapes = dict(zip(outputs, (tuple(t.shape) for t in graph.outputs)))
    aliases = cfg.output_aliases()
    problems = []
    for path, entry in cfg.compile.metric_items():
        if isinstance(entry, str) and (entry in metric_classes.function_metrics.METRIC_NAMES
                                       or ":" in entry):
            continue
        metric = metric_classes.get(entry)
        named = path[2] if len(path) > 2 and isinstance(path[2], str) else None
        targets = outputs if named is None else [named if named in shapes else aliases[named]]
        for output in targets:
            why = metric.check(shapes[output], shapes[output])
            if why:
                where = f" (output {output})" if len(outputs) > 1 and named is None else ""
                problems.append(Problem(why + where, path, cfg.source.locate(path)))
                break
    return problems


def class_weight_problems(cfg, graph) -> list[Problem]:
    """``fit.class_weight`` entries that name no class of their output (or no output),
    located at the entry.

    A softmax-like output of C units has classes 0 .. C-1; a one-unit output has 0 and 1.

    Args:
        cfg: a loaded config (its ``fit``, ``compile`` and ``source``).
        graph: the model's graph (output shapes).

    Returns:
        One problem per entry that does not fit (empty when all do).
    """
    given = cfg.fit.class_weight
    if not given:
        return []
    outputs = [t.name for t in graph.outputs]
    shapes = dict(zip(outputs, (tuple(t.shape) for t in graph.outputs)))
    aliases = cfg.output_aliases()
    base = ("fit", "class_weight")
    by_class = all(isinstance(k, int) for k in given)
    if by_class and len(outputs) > 1:
        return [Problem(f"a class_weight by class is for a model with one output; this one "
                        f"has {len(outputs)} ({', '.join(outputs)}): give output -> "
                        "{class: weight}", base, cfg.source.locate(base))]
    entries = [(outputs[0], given, base)] if by_class else [
        (key, inner, (*base, key)) for key, inner in given.items()]
    problems = []
    for key, weights, path in entries:
        output = key if key in shapes else aliases.get(key)
        if output is None:
            problems.append(Problem(f"{key!r} is not an output ({', '.join(outputs)})",
                                    path, cfg.source.locate_key(path)))
            continue
        units = shapes[output][-1] if shapes[output] else 1
        count = 2 if units in (1, None) else units
        for cls in weights:
            if cls >= count:
                at = (*path, str(cls))
                problems.append(Problem(
                    f"class {cls} does not exist: output {output} has classes 0 .. "
                    f"{count - 1}", at, cfg.source.locate_key(at)))
    return problems
