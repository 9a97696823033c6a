"""Keras's metric classes that kconf streams over batches: a closed registry.

A config names a metric by its Keras string (``auc``, ``precision``, ``top_k_categorical_
accuracy``, ``kl_divergence`` ...) or by its class with arguments (``{AUC: {curve: PR}}``,
``{Precision: {class_id: 2}}``). ``get`` turns either into a ``KerasMetric``: ``stats(y_true,
y_pred, sample_weight=None)`` for one batch, ``result_of(summed stats)`` for any number of
them, and Keras's ``update``/``result``/``reset``. The shape-resolved accuracies and the mean
errors of ``kconf.engine.metrics`` keep their functions (strings, unchanged path).

``METRIC_CLASSES`` maps each class name to its class (its argument model is ``cls.Args``).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from kconf.engine import metrics as function_metrics
from kconf.engine.metric_classes.base import KerasMetric, MeanMetric, MetricArgs
from kconf.engine.metric_classes.confusion import (
    AUC,
    F1Score,
    FBetaScore,
    MeanIoU,
    Precision,
    PrecisionAtRecall,
    Recall,
    RecallAtPrecision,
)
from kconf.engine.metric_classes.means import (
    BinaryAccuracy,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCoshError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Poisson,
    R2Score,
    RootMeanSquaredError,
    SparseCategoricalCrossentropy,
    SparseTopKCategoricalAccuracy,
    SquaredHinge,
    TopKCategoricalAccuracy,
)


class _FunctionMean(MeanMetric):
    """A class form of one of ``kconf.engine.metrics``'s functions (no arguments)."""

    function = ""

    def values(self, y_true, y_pred):
        return function_metrics.METRICS[self.function](y_true, y_pred)


def _function_class(name: str, function: str, direction: str) -> type[MeanMetric]:
    return type(name, (_FunctionMean,), {
        "function": function, "default_name": function, "direction": direction,
        "__doc__": f"``{name}()``: the weighted mean of ``{function}``.",
        "__module__": __name__,
    })


CategoricalAccuracy = _function_class("CategoricalAccuracy", "categorical_accuracy", "up")
SparseCategoricalAccuracy = _function_class("SparseCategoricalAccuracy",
                                            "sparse_categorical_accuracy", "up")
MeanSquaredError = _function_class("MeanSquaredError", "mean_squared_error", "down")
MeanAbsoluteError = _function_class("MeanAbsoluteError", "mean_absolute_error", "down")

METRIC_CLASSES: dict[str, type[KerasMetric]] = {cls.__name__: cls for cls in (
    AUC, Precision, Recall, PrecisionAtRecall, RecallAtPrecision, F1Score, FBetaScore,
    MeanIoU, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, RootMeanSquaredError,
    R2Score, KLDivergence, Poisson, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
    Hinge, SquaredHinge, CategoricalHinge, LogCoshError, CosineSimilarity, BinaryAccuracy,
    CategoricalAccuracy, SparseCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError,
)}

def snake_case(name: str) -> str:
    """Keras's ``to_snake_case`` of a class name (``LogCoshError`` -> ``log_cosh_error``)."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


#: Keras 3's metric strings (``keras.metrics.get``: each class's name and its snake_case, and
#: the aliases) -> class, for the classes whose arguments all have defaults; the accuracies
#: and mse/mae stay with the function metrics. ``kld``/``kullback_leibler_divergence`` are
#: Keras 2's spellings.
STRINGS: dict[str, str] = {
    **{key: name for name, cls in METRIC_CLASSES.items()
       if all(not f.is_required() for f in cls.Args.model_fields.values())
       for key in (name, snake_case(name)) if key not in function_metrics.METRIC_NAMES},
    "kld": "KLDivergence", "kullback_leibler_divergence": "KLDivergence",
    "bce": "BinaryCrossentropy", "mape": "MeanAbsolutePercentageError",
    "msle": "MeanSquaredLogarithmicError",
}

#: Every plain-string metric name: the function metrics' and these.
NAMES: tuple[str, ...] = (*function_metrics.METRIC_NAMES, *STRINGS)


def split(spec: Any) -> tuple[str, dict[str, Any]]:
    """``(class name, arguments)`` of a ``{Class: args}`` mapping or a validated spec (with
    ``tag`` and ``args``)."""
    if isinstance(spec, Mapping):
        ((name, args),) = spec.items()
        return str(name), dict(args or {})
    args = spec.args
    return spec.tag, (args.model_dump(exclude_none=False) if hasattr(args, "model_dump")
                      else dict(args))


def get(spec: Any) -> KerasMetric | str:
    """The metric a config entry names.

    Args:
        spec: a metric string (``"auc"``), a mapping ``{AUC: {curve: PR}}``, or a validated
            ``{Class: args}`` config spec.

    Returns:
        A ``KerasMetric``; or the string itself for the function metrics of
        ``kconf.engine.metrics`` (``accuracy``, ``mse`` ...), which the model resolves from
        shapes as before.

    Raises:
        KeyError: an unknown name or class.
    """
    if isinstance(spec, str):
        if spec in function_metrics.METRIC_NAMES:
            return spec
        if spec not in STRINGS:
            raise KeyError(f"unknown metric {spec!r}")
        return METRIC_CLASSES[STRINGS[spec]]()
    name, args = split(spec)
    if name not in METRIC_CLASSES:
        raise KeyError(f"unknown metric class {name!r}")
    return METRIC_CLASSES[name](**args)


__all__ = ["KerasMetric", "METRIC_CLASSES", "MeanMetric", "MetricArgs", "NAMES", "STRINGS",
           "get", "split", *METRIC_CLASSES]
