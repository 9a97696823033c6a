"""Keras's confusion-matrix metrics: ``AUC``, ``Precision``, ``Recall``,
``PrecisionAtRecall``, ``RecallAtPrecision``, ``F1Score``/``FBetaScore`` and ``MeanIoU``.

Counts at thresholds follow ``keras.src.metrics.metrics_utils``: a prediction is positive at
threshold t when ``y_pred > t``; for evenly spaced thresholds (AUC's, and the *At* metrics')
Keras buckets each prediction by ``ceil(p·(T − 1)) − 1`` in float32 (p clipped to [0, 1]) and
counts with cumulative sums, which this module reproduces to the same float32 rounding. All
in one vectorized pass per batch (a ``bincount``, no loop over samples or thresholds).
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from kconf.args.fields import Bool, PositiveFloat, PositiveInt, bounded
from kconf.engine.backend import xp
from kconf.engine.losses import EPSILON, align_targets
from kconf.engine.metric_classes.base import KerasMetric, MetricArgs, Shape, weights_for

Unit = bounded(float, ge=0, le=1)
NonNegativeIndex = Annotated[int, Field(strict=True, ge=0)]
NEG_INF = -1e10  # Keras's metrics_utils.NEG_INF: the threshold of top_k without thresholds


def _evenly_spaced(thresholds: np.ndarray) -> bool:
    """Keras's ``is_evenly_distributed_thresholds``."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def confusion_counts(y_true, y_pred, thresholds: np.ndarray, evenly: bool, weights,
                     multi_label: bool = False) -> np.ndarray:
    """``[tp, fp, tn, fn]`` at each threshold, weighted, as float64 ``(4, T)`` (``(4, T, L)``
    with ``multi_label``: one set per label column).

    Args:
        y_true: targets with ``y_pred``'s shape; nonzero is positive.
        y_pred: scores, float32.
        thresholds: float32 ``(T,)``.
        evenly: Keras's bucketing of evenly spaced thresholds (``thresholds[0] < 0`` means
            its ε-widened ends: a prediction of 0 still counts above the first).
        weights: one weight per sample ``(N,)``.
        multi_label: keep the last axis apart.
    """
    y_pred = np.asarray(y_pred, dtype=np.float32)
    positive = np.asarray(y_true) != 0
    w = np.broadcast_to(np.asarray(weights, np.float64).reshape((-1,) + (1,) * (y_pred.ndim - 1)),
                        y_pred.shape)
    n_labels = y_pred.shape[-1] if multi_label else 1
    y_pred, positive, w = (a.reshape(-1, n_labels) for a in (y_pred, positive, w))
    t = len(thresholds)
    if evenly:
        p = np.clip(y_pred, np.float32(0), np.float32(1))
        bucket = (np.ceil(p * np.float32(t - 1)) - 1).astype(np.int64)
        if thresholds[0] < 0 or thresholds[-1] > 1:
            bucket = np.maximum(bucket, 0)
        keep = bucket >= 0
        index = (bucket + t * np.arange(n_labels))[keep]
        sums = []
        for mask in (positive, ~positive):
            counts = np.bincount(index, weights=(w * mask)[keep], minlength=t * n_labels)
            sums.append(counts.reshape(n_labels, t).T[::-1].cumsum(axis=0)[::-1])
        tp, fp = sums
    else:
        above = y_pred[None] > thresholds.astype(np.float32)[:, None, None]  # (T, M, L)
        tp = (above * (w * positive)[None]).sum(axis=1)
        fp = (above * (w * ~positive)[None]).sum(axis=1)
    fn = (w * positive).sum(axis=0) - tp
    tn = (w * ~positive).sum(axis=0) - fp
    counts = np.stack([tp, fp, tn, fn])
    return counts if multi_label else counts[..., 0]


def _divide_no_nan(a, b):
    return np.where(b != 0, a / np.where(b != 0, b, 1), 0.0)


def _shape_text(shape: Shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


class _ThresholdMetric(KerasMetric):
    """Counts at thresholds, flattened (or per label) and weighted; subclasses pick which
    counts and how they combine."""

    thresholds_array: np.ndarray
    evenly: bool
    multi_label = False
    class_id = None
    top_k = None
    from_logits = False

    def stats(self, y_true, y_pred, sample_weight=None) -> np.ndarray:
        y_pred = xp.asarray(y_pred, dtype=np.float32)
        y_true = align_targets(y_true, y_pred)
        if self.from_logits:
            y_pred = 1 / (1 + np.exp(-y_pred))
        if self.top_k is not None:
            top = np.argsort(-y_pred, axis=-1, kind="stable")[..., :self.top_k]
            kept = np.zeros(y_pred.shape, bool)
            np.put_along_axis(kept, top, True, axis=-1)
            y_pred = np.where(kept, y_pred, np.float32(NEG_INF))
        if self.class_id is not None:
            y_true, y_pred = y_true[..., self.class_id, None], y_pred[..., self.class_id, None]
        weights = weights_for(sample_weight, y_pred.shape[0])
        return confusion_counts(y_true, y_pred, self.thresholds_array, self.evenly, weights,
                                self.multi_label).reshape(-1)

    def _counts(self, stats):
        shape = (4, len(self.thresholds_array), -1) if self.multi_label else (4, -1)
        return stats.reshape(shape)

    def check(self, y_true_shape, y_pred_shape):
        if self.class_id is not None and (len(y_pred_shape) < 2 or (
                y_pred_shape[-1] is not None and self.class_id >= y_pred_shape[-1])):
            return (f"class_id {self.class_id} is not a class of an output of shape "
                    f"{_shape_text(y_pred_shape)}")
        return None


class PrecisionArgs(MetricArgs):
    thresholds: Unit | None = None
    top_k: PositiveInt | None = None
    class_id: NonNegativeIndex | None = None


class Precision(_ThresholdMetric):
    """``Precision(thresholds=None, top_k=None, class_id=None)``: tp / (tp + fp) at one
    threshold (0.5; with ``top_k``, the k largest scores of each row count as predicted)."""

    Args = PrecisionArgs
    default_name = "precision"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        default = 0.5 if self.top_k is None else NEG_INF
        self.thresholds_array = np.array([default if self.thresholds is None
                                          else self.thresholds], np.float32)
        self.evenly = False

    def result_of(self, stats):
        tp, fp, tn, fn = self._counts(stats)
        return float(_divide_no_nan(tp, tp + fp)[0])


class Recall(Precision):
    """``Recall(thresholds=None, top_k=None, class_id=None)``: tp / (tp + fn)."""

    default_name = "recall"

    def result_of(self, stats):
        tp, fp, tn, fn = self._counts(stats)
        return float(_divide_no_nan(tp, tp + fn)[0])


AUCCurve = Literal["ROC", "PR"]
Summation = Literal["interpolation", "minoring", "majoring"]


class AUCArgs(MetricArgs):
    num_thresholds: Annotated[int, Field(strict=True, gt=1)] = 200
    curve: AUCCurve = "ROC"
    summation_method: Summation = "interpolation"
    thresholds: list[Unit] | None = None
    multi_label: Bool = False
    from_logits: Bool = False


class AUC(_ThresholdMetric):
    """``AUC(num_thresholds=200, curve="ROC", summation_method="interpolation",
    thresholds=None, multi_label=False, from_logits=False)``: the area under the ROC or
    precision-recall curve by a Riemann sum over the thresholds (PR interpolated as Davis &
    Goadrich); ``multi_label`` averages one AUC per label column."""

    Args = AUCArgs
    default_name = "auc"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.thresholds is not None:
            inner = sorted(self.thresholds)
            self.num_thresholds = len(inner) + 2
            self.evenly = _evenly_spaced(np.array([0.0] + inner + [1.0]))
        else:
            n = self.num_thresholds
            inner = [(i + 1) * 1.0 / (n - 1) for i in range(n - 2)]
            self.evenly = True
        self.thresholds_array = np.array([0.0 - EPSILON] + inner + [1.0 + EPSILON],
                                         np.float32)

    def check(self, y_true_shape, y_pred_shape):
        width = y_pred_shape[-1] if len(y_pred_shape) > 1 else 1
        if self.multi_label:
            if len(y_pred_shape) != 2:
                return (f"AUC with multi_label needs outputs of rank 2 (samples, labels), got "
                        f"{_shape_text(y_pred_shape)}")
            return None
        if width not in (None, 1):
            return (f"AUC on an output of {width} classes {_shape_text(y_pred_shape)} would "
                    "flatten them into one binary problem; set multi_label: true (one AUC per "
                    "class, averaged) or use it on a one-unit output")
        return None

    def result_of(self, stats):
        tp, fp, tn, fn = self._counts(stats)
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            dp = p[:-1] - p[1:]
            slope = _divide_no_nan(dtp, np.maximum(dp, 0))
            intercept = tp[1:] - slope * p[1:]
            ratio = np.where((p[:-1] > 0) & (p[1:] > 0),
                             _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
            terms = _divide_no_nan(slope * (dtp + intercept * np.log(ratio)),
                                   np.maximum(tp[1:] + fn[1:], 0))
        else:
            recall = _divide_no_nan(tp, tp + fn)
            if self.curve == "ROC":
                x, y = _divide_no_nan(fp, fp + tn), recall
            else:
                x, y = recall, _divide_no_nan(tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            terms = (x[:-1] - x[1:]) * heights
        by_label = terms.sum(axis=0)
        return float(by_label.mean() if self.multi_label else by_label)


class _AtArgs(MetricArgs):
    num_thresholds: PositiveInt = 200
    class_id: NonNegativeIndex | None = None


class PrecisionAtRecallArgs(_AtArgs):
    recall: Unit


class RecallAtPrecisionArgs(_AtArgs):
    precision: Unit


class _AtMetric(_ThresholdMetric):
    """Keras's ``SensitivitySpecificityBase``: thresholds 0, 1/(T−1), ..., 1."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        n = self.num_thresholds
        if n == 1:
            self.thresholds_array, self.evenly = np.array([0.5], np.float32), False
        else:
            inner = [(i + 1) * 1.0 / (n - 1) for i in range(n - 2)]
            self.thresholds_array = np.array([0.0] + inner + [1.0], np.float32)
            self.evenly = True

    @staticmethod
    def _best(constrained, dependent, value):
        return float(np.max(np.where(constrained >= value, dependent, 0), initial=0))


class PrecisionAtRecall(_AtMetric):
    """``PrecisionAtRecall(recall, num_thresholds=200, class_id=None)``: the best precision
    among the thresholds whose recall is at least ``recall``."""

    Args = PrecisionAtRecallArgs
    default_name = "precision_at_recall"

    def result_of(self, stats):
        tp, fp, tn, fn = self._counts(stats)
        return self._best(_divide_no_nan(tp, tp + fn), _divide_no_nan(tp, tp + fp), self.recall)


class RecallAtPrecision(_AtMetric):
    """``RecallAtPrecision(precision, num_thresholds=200, class_id=None)``: the best recall
    among the thresholds whose precision is at least ``precision``."""

    Args = RecallAtPrecisionArgs
    default_name = "recall_at_precision"

    def result_of(self, stats):
        tp, fp, tn, fn = self._counts(stats)
        return self._best(_divide_no_nan(tp, tp + fp), _divide_no_nan(tp, tp + fn),
                          self.precision)


class FBetaArgs(MetricArgs):
    average: Literal["micro", "macro", "weighted"] | None = None
    beta: PositiveFloat = 1.0
    threshold: Unit | None = None


class F1Args(MetricArgs):
    average: Literal["micro", "macro", "weighted"] | None = None
    threshold: Unit | None = None


class FBetaScore(KerasMetric):
    """``FBetaScore(average=None, beta=1.0, threshold=None)`` on (samples, classes) outputs:
    per class tp, fp, fn (a row's largest score is its prediction without ``threshold``),
    then (1 + β²)·P·R / (β²·P + R), averaged ``micro``, ``macro`` or ``weighted``.

    ``average: null`` is Keras's one score per class, which a log line cannot hold: the
    config asks for an average (``check``).
    """

    Args = FBetaArgs
    default_name = "fbeta_score"

    def check(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2:
            return (f"{type(self).__name__} needs outputs of shape (samples, classes), got "
                    f"{_shape_text(y_pred_shape)}")
        if self.average is None:
            return (f"{type(self).__name__} without average gives one score per class; set "
                    "average to micro, macro or weighted")
        return None

    def stats(self, y_true, y_pred, sample_weight=None):
        y_pred = xp.asarray(y_pred, dtype=np.float32)
        y_true = np.asarray(align_targets(y_true, y_pred), dtype=np.float64)
        if self.threshold is None:
            top = y_pred.max(axis=-1, keepdims=True)
            predicted = (y_pred >= top) & (np.abs(y_pred) > 1e-9)
        else:
            predicted = y_pred > self.threshold
        predicted = predicted.astype(np.float64)
        w = weights_for(sample_weight, y_pred.shape[0])[:, None]
        parts = [predicted * y_true, predicted * (1 - y_true), (1 - predicted) * y_true, y_true]
        return np.concatenate([(p * w).sum(axis=0) for p in parts])

    def result_of(self, stats):
        tp, fp, fn, support = stats.reshape(4, -1)
        if self.average == "micro":
            tp, fp, fn, support = (a.sum(keepdims=True) for a in (tp, fp, fn, support))
        precision = tp / (tp + fp + EPSILON)
        recall = tp / (tp + fn + EPSILON)
        beta2 = self.beta ** 2
        score = precision * recall / (beta2 * precision + recall + EPSILON) * (1 + beta2)
        if self.average == "weighted":
            return float((score * support / (support.sum() + EPSILON)).sum())
        return float(score.mean())


class F1Score(FBetaScore):
    """``F1Score(average=None, threshold=None)``: ``FBetaScore`` with β = 1."""

    Args = F1Args
    default_name = "f1_score"
    beta = 1.0


class MeanIoUArgs(MetricArgs):
    num_classes: Annotated[int, Field(strict=True, gt=1)]
    ignore_class: Annotated[int, Field(strict=True)] | None = None
    sparse_y_true: Bool = True
    sparse_y_pred: Bool = True
    axis: Annotated[int, Field(strict=True)] = -1


class MeanIoU(KerasMetric):
    """``MeanIoU(num_classes, ignore_class=None, sparse_y_true=True, sparse_y_pred=True,
    axis=-1)``: a weighted confusion matrix of class ids summed over batches; the mean over
    the classes present of tp / (tp + fp + fn). As in Keras the counts are integers: sample
    weights are truncated (1.7 counts once). Scores need ``sparse_y_pred: false``
    (argmax); one-hot targets ``sparse_y_true: false``."""

    Args = MeanIoUArgs
    default_name = "mean_io_u"  # Keras 3 snake-cases the class name

    def check(self, y_true_shape, y_pred_shape):
        if self.sparse_y_pred and len(y_pred_shape) > 1 and y_pred_shape[-1] not in (None, 1):
            return (f"MeanIoU reads the output {_shape_text(y_pred_shape)} as class ids "
                    "(sparse_y_pred: true); for scores per class set sparse_y_pred: false")
        return None

    def stats(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if not self.sparse_y_true:
            y_true = np.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = np.argmax(y_pred, axis=self.axis)
        n = y_true.shape[0]
        labels = y_true.astype(np.float32).reshape(-1).astype(np.int64)
        preds = y_pred.astype(np.float32).reshape(-1).astype(np.int64)
        per_sample = labels.size // max(n, 1)
        # Keras keeps the matrix in int32 (a float weight is truncated, with a warning).
        w = np.trunc(np.repeat(weights_for(sample_weight, n), per_sample))
        c = self.num_classes
        keep = (labels >= 0) & (labels < c) & (preds >= 0) & (preds < c)
        if self.ignore_class is not None:
            keep &= labels != self.ignore_class
        cm = np.bincount(labels[keep] * c + preds[keep], weights=w[keep], minlength=c * c)
        return cm.astype(np.float64)

    def result_of(self, stats):
        cm = stats.reshape(self.num_classes, self.num_classes)
        tp = np.diag(cm)
        denominator = cm.sum(axis=0) + cm.sum(axis=1) - tp
        valid = denominator > 1e-9
        iou = np.where(valid, tp / (denominator + EPSILON), 0.0)
        return float(iou.sum() / (valid.sum() + EPSILON))
