"""Metrics with Keras semantics: ``fn(y_true, y_pred) -> per-sample values`` of shape ``(N,)``.

A metric is computed per position (the last axis of ``y_pred`` reduced, as Keras does), then
averaged over any remaining inner axes (time steps) so that each sample has one value. The
caller averages those over all samples of an epoch, weighted by count.

``accuracy`` (and its old spelling ``acc``) is resolved from shapes, not from the loss:
output last dimension 1 → binary; integer labels → sparse categorical; else categorical.
The display name stays what the user wrote; that is the caller's business.

Keras's stateful metrics (AUC, Precision, F1Score, R2Score ...) stream batch statistics
instead: ``kconf.engine.metric_classes``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from kconf.engine.backend import floatx, xp
from kconf.engine import losses
from kconf.engine.losses import align_targets
from kconf.errors import ShapeError

MetricFn = Callable[[Any, Any], Any]
Shape = Sequence[int | None]


# --- helpers ---------------------------------------------------------------------------------

def _float_dtype(y_pred):
    """``y_pred``'s dtype if it is floating point, else floatx."""
    return y_pred.dtype if xp.issubdtype(y_pred.dtype, xp.floating) else floatx


def _per_sample(values, dtype):
    """Average values of shape ``(N, ...)`` to one value per sample, shape ``(N,)``."""
    values = values.astype(dtype, copy=False)
    if values.ndim == 1:
        return values
    return values.reshape(values.shape[0], -1).mean(axis=1)



# --- metrics ---------------------------------------------------------------------------------

def binary_accuracy(y_true, y_pred):
    """Fraction of outputs whose thresholded prediction (``y_pred > 0.5``) equals the target.

    Args:
        y_true: 0/1 targets with ``y_pred``'s shape (or one rank less).
        y_pred: probabilities ``(N, ..., K)``.

    Returns:
        Per-sample accuracy, shape ``(N,)``.
    """
    y_pred = xp.asarray(y_pred)
    y_true = align_targets(y_true, y_pred)
    hits = (y_pred > 0.5).astype(y_true.dtype) == y_true
    dtype = _float_dtype(y_pred)
    return _per_sample(hits.astype(dtype).mean(axis=-1), dtype)


def categorical_accuracy(y_true, y_pred):
    """Whether the argmax of the prediction equals the argmax of the one-hot target.

    Ties go to the first index (``argmax``).

    Args:
        y_true: one-hot targets with ``y_pred``'s shape.
        y_pred: scores ``(N, ..., C)``.

    Returns:
        Per-sample accuracy, shape ``(N,)``.
    """
    y_pred = xp.asarray(y_pred)
    y_true = align_targets(y_true, y_pred)
    hits = xp.argmax(y_true, axis=-1) == xp.argmax(y_pred, axis=-1)
    return _per_sample(hits, _float_dtype(y_pred))


def sparse_categorical_accuracy(y_true, y_pred):
    """Whether the argmax of the prediction equals the integer label.

    Args:
        y_true: integer labels of shape ``y_pred.shape[:-1]``, or with a trailing axis of 1.
        y_pred: scores ``(N, ..., C)``.

    Returns:
        Per-sample accuracy, shape ``(N,)``.
    """
    y_pred = xp.asarray(y_pred)
    labels = xp.asarray(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ShapeError(
            f"integer labels of shape {tuple(xp.asarray(y_true).shape)} do not fit "
            f"predictions of shape {tuple(y_pred.shape)}"
        )
    hits = labels == xp.argmax(y_pred, axis=-1)
    return _per_sample(hits, _float_dtype(y_pred))


def mean_squared_error(y_true, y_pred):
    """Per-sample mean of ``(y_pred − y_true)²`` over the last axis: the loss's own values."""
    return losses.per_sample("mean_squared_error", y_true, _as_float(y_pred))


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean of ``|y_pred − y_true|`` over the last axis: the loss's own values."""
    return losses.per_sample("mean_absolute_error", y_true, _as_float(y_pred))


def _as_float(y_pred):
    y_pred = xp.asarray(y_pred)
    return y_pred.astype(_float_dtype(y_pred), copy=False)


# --- registry and resolution -----------------------------------------------------------------

METRICS: dict[str, MetricFn] = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mean_squared_error": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
}

ALIASES: dict[str, str] = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}

# Names whose meaning depends on the shapes of targets and outputs.
SHAPE_RESOLVED: tuple[str, ...] = ("accuracy", "acc")

METRIC_NAMES: tuple[str, ...] = (*SHAPE_RESOLVED, *METRICS, *ALIASES)


def resolve_accuracy(y_true_shape: Shape, y_pred_shape: Shape) -> str:
    """Which accuracy ``accuracy`` means for these shapes (Keras's rule).

    Args:
        y_true_shape: shape of the targets (the batch dimension may be None).
        y_pred_shape: shape of the model output.

    Returns:
        ``"binary_accuracy"``, ``"sparse_categorical_accuracy"`` or ``"categorical_accuracy"``.
    """
    if y_pred_shape[-1] == 1:
        return "binary_accuracy"
    if len(y_true_shape) < len(y_pred_shape) or y_true_shape[-1] == 1:
        return "sparse_categorical_accuracy"
    return "categorical_accuracy"


def resolve(name: str, y_true_shape: Shape, y_pred_shape: Shape) -> MetricFn:
    """The metric function a user's metric name stands for, given the shapes it will see.

    Args:
        name: as the user wrote it (``accuracy``, ``acc``, ``mae``, ``binary_accuracy`` ...).
        y_true_shape: shape of the targets (the batch dimension may be None).
        y_pred_shape: shape of the model output.

    Returns:
        ``fn(y_true, y_pred) -> per-sample values`` of shape ``(N,)``.

    Raises:
        KeyError: for an unknown name.
    """
    if name in SHAPE_RESOLVED:
        return METRICS[resolve_accuracy(y_true_shape, y_pred_shape)]
    canonical = ALIASES.get(name, name)
    if canonical not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRIC_NAMES)}")
    return METRICS[canonical]
