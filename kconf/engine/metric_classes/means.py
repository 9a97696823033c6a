"""Keras's mean metrics (``MeanMetricWrapper``s: a weighted mean of per-sample values) and the
regression metrics that stream sums: ``RootMeanSquaredError`` and ``R2Score``.

The probabilistic metrics (``KLDivergence``, ``Poisson``, the crossentropies) and the error
metrics are the losses' own sample-wise values (``kconf.engine.loss_classes``), so a metric
and the loss of the same name agree to the last bit.
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from kconf.args.fields import Bool, PositiveInt, bounded
from kconf.engine import loss_classes
from kconf.engine.backend import xp
from kconf.engine.losses import align_targets
from kconf.engine.metric_classes.base import (
    KerasMetric,
    MeanMetric,
    MetricArgs,
    per_sample,
    weights_for,
)
from kconf.errors import ShapeError

Smoothing = bounded(float, ge=0, le=1)
Axis = Annotated[int, Field(strict=True)]


class _LossMean(MeanMetric):
    """The mean of a loss's sample-wise values; ``loss`` names the loss class."""

    loss: str = ""
    loss_args: tuple[str, ...] = ()

    def values(self, y_true, y_pred):
        y_pred = xp.asarray(y_pred)
        if not xp.issubdtype(y_pred.dtype, xp.floating):
            y_pred = y_pred.astype(np.float32)
        args = {k: getattr(self, k) for k in self.loss_args}
        values, _ = loss_classes.LOSS_CLASSES[self.loss](**args).samplewise(y_true, y_pred)
        return values


def _loss_mean(name: str, loss: str, args: type[MetricArgs] = MetricArgs,
               direction: str = "down", doc: str = "") -> type[_LossMean]:
    """A mean metric class over the loss class ``loss``, its arguments ``args``."""
    fields = tuple(k for k in args.model_fields if k != "name")
    return type(name, (_LossMean,), {
        "Args": args, "loss": loss, "loss_args": fields, "direction": direction,
        "default_name": loss_classes.LOSS_CLASSES[loss].function, "__doc__": doc,
        "__module__": __name__,
    })


class BinaryCrossentropyArgs(MetricArgs):
    from_logits: Bool = False
    label_smoothing: Smoothing = 0.0


class CategoricalCrossentropyArgs(BinaryCrossentropyArgs):
    axis: Axis = -1


class SparseCategoricalCrossentropyArgs(MetricArgs):
    from_logits: Bool = False
    axis: Axis = -1


KLDivergence = _loss_mean("KLDivergence", "KLDivergence",
                          doc="``KLDivergence()``: mean Σ y·log(y / p) (clipped to [ε, 1]).")
Poisson = _loss_mean("Poisson", "Poisson", doc="``Poisson()``: mean p − y·log(p + ε).")
BinaryCrossentropy = _loss_mean(
    "BinaryCrossentropy", "BinaryCrossentropy", BinaryCrossentropyArgs,
    doc="``BinaryCrossentropy(from_logits=False, label_smoothing=0.0)``.")
CategoricalCrossentropy = _loss_mean(
    "CategoricalCrossentropy", "CategoricalCrossentropy", CategoricalCrossentropyArgs,
    doc="``CategoricalCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)``.")
SparseCategoricalCrossentropy = _loss_mean(
    "SparseCategoricalCrossentropy", "SparseCategoricalCrossentropy",
    SparseCategoricalCrossentropyArgs,
    doc="``SparseCategoricalCrossentropy(from_logits=False, axis=-1)``.")
MeanAbsolutePercentageError = _loss_mean(
    "MeanAbsolutePercentageError", "MeanAbsolutePercentageError",
    doc="``MeanAbsolutePercentageError()``: mean 100·|(y − p) / max(|y|, ε)|.")
MeanSquaredLogarithmicError = _loss_mean(
    "MeanSquaredLogarithmicError", "MeanSquaredLogarithmicError",
    doc="``MeanSquaredLogarithmicError()``.")
Hinge = _loss_mean("Hinge", "Hinge", doc="``Hinge()``: mean max(1 − y·p, 0).")
SquaredHinge = _loss_mean("SquaredHinge", "SquaredHinge", doc="``SquaredHinge()``.")
CategoricalHinge = _loss_mean("CategoricalHinge", "CategoricalHinge",
                              doc="``CategoricalHinge()``.")


class LogCoshError(_LossMean):
    """``LogCoshError()``: mean log(cosh(p − y)), logged as ``logcosh``."""

    loss = "LogCosh"
    default_name = "logcosh"


class CosineSimilarityArgs(MetricArgs):
    axis: Axis = -1


class CosineSimilarity(_LossMean):
    """``CosineSimilarity(axis=-1)``: mean Σ ŷ·p̂ (the loss without its minus sign)."""

    Args = CosineSimilarityArgs
    loss = "CosineSimilarity"
    loss_args = ("axis",)
    default_name = "cosine_similarity"
    direction = "up"

    def values(self, y_true, y_pred):
        return -super().values(y_true, y_pred)


class TopKArgs(MetricArgs):
    k: PositiveInt = 5


class SparseTopKArgs(TopKArgs):
    from_sorted_ids: Bool = False


def _in_top_k(labels, y_pred, k: int):
    """Keras's ``in_top_k``: 1 + the number of scores above the label's is at most k (a NaN
    score at the label never counts as large)."""
    at_label = np.take_along_axis(y_pred, labels[..., None], axis=-1)
    at_label = np.where(np.isnan(at_label), -np.inf, at_label)
    return 1 + (y_pred > at_label).sum(axis=-1) <= k


class TopKCategoricalAccuracy(MeanMetric):
    """``TopKCategoricalAccuracy(k=5)``: whether the one-hot target's class is among the k
    largest scores."""

    Args = TopKArgs
    default_name = "top_k_categorical_accuracy"
    direction = "up"

    def values(self, y_true, y_pred):
        y_true = align_targets(y_true, y_pred)
        return _in_top_k(np.argmax(y_true, axis=-1), y_pred, self.k)


class SparseTopKCategoricalAccuracy(MeanMetric):
    """``SparseTopKCategoricalAccuracy(k=5, from_sorted_ids=False)``: the integer label among
    the k largest scores (or, ``from_sorted_ids``, among the first k ids of each row)."""

    Args = SparseTopKArgs
    default_name = "sparse_top_k_categorical_accuracy"
    direction = "up"

    def values(self, y_true, y_pred):
        labels = np.asarray(y_true)
        rank = y_pred.ndim
        if labels.ndim == rank and labels.shape[-1] == 1 and not self.from_sorted_ids:
            labels = labels[..., 0]
        if self.from_sorted_ids:
            ids = y_pred[..., :self.k]
            return (ids == labels.reshape(ids.shape[:-1] + (1,))).any(axis=-1)
        if labels.shape != y_pred.shape[:-1]:
            raise ShapeError(f"integer labels of shape {labels.shape} do not fit predictions "
                             f"of shape {tuple(y_pred.shape)}")
        return _in_top_k(labels.astype(np.int64), y_pred, self.k)


class BinaryAccuracyArgs(MetricArgs):
    threshold: Smoothing = 0.5


class BinaryAccuracy(MeanMetric):
    """``BinaryAccuracy(threshold=0.5)``: the share of outputs with ``(p > threshold) == y``."""

    Args = BinaryAccuracyArgs
    default_name = "binary_accuracy"
    direction = "up"

    def values(self, y_true, y_pred):
        y_true = align_targets(y_true, y_pred)
        return ((y_pred > self.threshold).astype(y_true.dtype) == y_true).mean(axis=-1)


class RootMeanSquaredError(KerasMetric):
    """``RootMeanSquaredError()``: √(weighted mean of the per-sample mean squared error)."""

    default_name = "root_mean_squared_error"
    direction = "down"

    def stats(self, y_true, y_pred, sample_weight=None):
        y_pred = xp.asarray(y_pred, dtype=np.float32)
        diff = y_pred - align_targets(y_true, y_pred).astype(np.float32)
        v = per_sample(diff * diff)
        w = weights_for(sample_weight, v.shape[0])
        return np.array([float(v @ w), float(w.sum())])

    def result_of(self, stats):
        return float(np.sqrt(stats[0] / stats[1])) if stats[1] else 0.0


class R2ScoreArgs(MetricArgs):
    class_aggregation: Literal["uniform_average", "variance_weighted_average"] = \
        "uniform_average"
    num_regressors: Annotated[int, Field(strict=True, ge=0)] = 0


class R2Score(KerasMetric):
    """``R2Score(class_aggregation="uniform_average", num_regressors=0)`` on (samples,
    outputs): 1 − SSE / SST per output column from streamed sums, averaged (or weighted by
    variance); adjusted for ``num_regressors`` where there are enough samples."""

    Args = R2ScoreArgs
    default_name = "r2_score"

    def check(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2:
            return ("R2Score needs outputs of shape (samples, outputs), got rank "
                    f"{len(y_pred_shape)}")
        return None

    def stats(self, y_true, y_pred, sample_weight=None):
        y_pred = np.asarray(y_pred, dtype=np.float64)
        y_true = np.asarray(align_targets(y_true, y_pred), dtype=np.float64)
        w = np.broadcast_to(weights_for(sample_weight, y_pred.shape[0])[:, None], y_true.shape)
        return np.concatenate([(y_true * w).sum(0), (y_true * y_true * w).sum(0),
                               ((y_true - y_pred) ** 2 * w).sum(0), w.sum(0), [y_true.size]])

    def result_of(self, stats):
        sums, squares, sse, count = stats[:-1].reshape(4, -1)
        mean = sums / count
        total = squares - sums * mean
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = 1 - sse / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = raw.mean()
        else:
            score = (total * raw).sum() / total.sum()
        n, p = stats[-1], self.num_regressors
        if p and p < n - 1:
            score = 1 - (1 - score) * (n - 1) / (n - p - 1)
        return float(score)
