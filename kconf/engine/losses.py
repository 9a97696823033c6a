"""Losses with Keras semantics (from probabilities; ``from_logits=False``).

Every loss is ``loss(y_true, y_pred) -> (value, backward)``: ``value`` is the mean loss over
all samples (and time steps), a 0-d value in ``y_pred``'s dtype, and ``backward(scale=1.0)``
returns ``scale * d value / d y_pred`` with ``y_pred``'s shape and dtype.

Per-sample values (for reporting and epoch averages) come from ``per_sample(name, y_true,
y_pred)``, shape ``(N,)``; the mean of those is ``value``. Each loss is written once, in its
sample-wise form (one value per position of ``y_pred`` without its last axis, and a backward
taking the gradient of those values); ``_mean_loss`` turns it into the public pair.

Keras details kept: ε = 1e-7 in ``y_pred``'s dtype (float32: 1 − ε = 0.99999988); clipped
entries get zero gradient (``tf.clip_by_value``); categorical crossentropy divides by the row
sum first and the gradient flows through that; ``y_true`` one rank short of ``y_pred`` is
expanded on the last axis (never broadcast (N,) against (N, 1) to (N, N)) and cast to
``y_pred``'s dtype.

Keras's loss classes with arguments (``from_logits``, ``label_smoothing``, Huber's ``delta``
...) and the other Keras losses live in ``kconf.engine.loss_classes``, which calls these five
at their defaults; ``loss_classes.get`` is what a model compiles.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from kconf.engine.backend import xp
from kconf.errors import ShapeError

EPSILON = 1e-7

LossFn = Callable[[Any, Any], tuple[Any, Callable[..., Any]]]


# --- helpers ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _clip_bounds(dtype):
    """ε and 1 − ε computed in ``dtype`` (float32: 1e-7 and 0.99999988)."""
    one = xp.asarray(1, dtype=dtype)
    eps = xp.asarray(EPSILON, dtype=dtype)
    return eps, one - eps


def align_targets(y_true, y_pred):
    """``y_true`` with ``y_pred``'s rank (expanded or squeezed on the last axis) and shape —
    never broadcast (N,) against (N, 1) into (N, N).

    Raises:
        ShapeError: the targets do not fit the predictions.
    """
    y_true = xp.asarray(y_true)
    if y_true.ndim == y_pred.ndim - 1:
        y_true = y_true[..., None]
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape:
        raise ShapeError(
            f"targets of shape {tuple(y_true.shape)} do not fit predictions of shape "
            f"{tuple(y_pred.shape)}"
        )
    return y_true


def _align(y_true, y_pred):
    """``y_true`` in ``y_pred``'s dtype and shape."""
    return align_targets(y_true, y_pred).astype(y_pred.dtype, copy=False)


def _sparse_labels(y_true, y_pred):
    """Integer labels of shape ``y_pred.shape[:-1]`` (a trailing axis of 1 is dropped)."""
    labels = xp.asarray(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ShapeError(
            f"integer labels of shape {tuple(xp.asarray(y_true).shape)} do not fit predictions "
            f"of shape {tuple(y_pred.shape)} (expected {tuple(y_pred.shape[:-1])} or "
            f"{(*y_pred.shape[:-1], 1)})"
        )
    labels = labels.astype(xp.int64)
    n_classes = y_pred.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ShapeError(
            f"labels must lie in [0, {n_classes - 1}] for {n_classes} classes, "
            f"got values from {int(labels.min())} to {int(labels.max())}"
        )
    return labels


def _mean_loss(samplewise):
    """Turn a sample-wise loss ``(values, backward(dvalues))`` into ``(mean, backward(scale))``."""

    @functools.wraps(samplewise)
    def loss(y_true, y_pred):
        y_pred = xp.asarray(y_pred)
        values, values_backward = samplewise(y_true, y_pred)
        value = values.mean()

        def backward(scale=1.0):
            d_values = xp.full(values.shape, scale / values.size, dtype=y_pred.dtype)
            return values_backward(d_values)

        return value, backward

    loss.samplewise = samplewise
    return loss


# --- the losses (sample-wise form; the decorator adds the mean) ----------------------------

def _normalised_crossentropy(one_hot, y_pred):
    """−Σ y·log(clip(p / Σp)) on the last axis, and its backward through clip and the sum."""
    eps, one_minus_eps = _clip_bounds(y_pred.dtype)
    total = y_pred.sum(axis=-1, keepdims=True)
    p = y_pred / total
    p_clipped = xp.minimum(xp.maximum(p, eps), one_minus_eps)
    inside = p_clipped == p  # False where clipped (and for NaN)
    values = -(one_hot * xp.log(p_clipped)).sum(axis=-1)

    def backward(d_values):
        d_p = xp.where(inside, -one_hot / p_clipped, 0) * d_values[..., None]
        return (d_p - (d_p * p).sum(axis=-1, keepdims=True)) / total

    return values, backward


@_mean_loss
def categorical_crossentropy(y_true, y_pred):
    """Crossentropy of one-hot (or soft) targets against probabilities.

    Args:
        y_true: targets with ``y_pred``'s shape, e.g. one-hot rows ``(N, C)``.
        y_pred: probabilities ``(N, ..., C)``; each row is divided by its sum, then clipped.

    Returns:
        ``(value, backward)``: the mean loss and ``backward(scale=1.0) -> d value / d y_pred``.
    """
    return _normalised_crossentropy(_align(y_true, y_pred), y_pred)


@_mean_loss
def sparse_categorical_crossentropy(y_true, y_pred):
    """Categorical crossentropy with integer class labels instead of one-hot rows.

    Same normalisation and clipping as ``categorical_crossentropy`` (so it equals that loss on
    the one-hot encoding of the labels).

    Args:
        y_true: integer labels of shape ``y_pred.shape[:-1]``, or with a trailing axis of 1:
            ``(N,)`` or ``(N, 1)`` for ``(N, C)``; ``(N, T)`` or ``(N, T, 1)`` for ``(N, T, C)``.
        y_pred: probabilities ``(N, ..., C)``.

    Returns:
        ``(value, backward)``: the mean loss and ``backward(scale=1.0) -> d value / d y_pred``.
    """
    labels = _sparse_labels(y_true, y_pred)
    one_hot = (labels[..., None] == xp.arange(y_pred.shape[-1])).astype(y_pred.dtype)
    return _normalised_crossentropy(one_hot, y_pred)


@_mean_loss
def binary_crossentropy(y_true, y_pred):
    """Binary crossentropy of clipped probabilities, averaged over the last axis.

    Args:
        y_true: targets in [0, 1] with ``y_pred``'s shape (or one rank less).
        y_pred: probabilities, clipped to [ε, 1 − ε]; no ε is added inside the logs.

    Returns:
        ``(value, backward)``: the mean loss and ``backward(scale=1.0) -> d value / d y_pred``.
    """
    y_true = _align(y_true, y_pred)
    eps, one_minus_eps = _clip_bounds(y_pred.dtype)
    p = xp.minimum(xp.maximum(y_pred, eps), one_minus_eps)
    inside = p == y_pred  # False where clipped (and for NaN)
    values = -(y_true * xp.log(p) + (1 - y_true) * xp.log(1 - p)).mean(axis=-1)
    width = y_pred.shape[-1]

    def backward(d_values):
        d_p = (1 - y_true) / (1 - p) - y_true / p
        return xp.where(inside, d_p, 0) * (d_values[..., None] / width)

    return values, backward


@_mean_loss
def mean_squared_error(y_true, y_pred):
    """Mean of ``(y_pred − y_true)²`` over the last axis.

    Args:
        y_true: targets with ``y_pred``'s shape (or one rank less).
        y_pred: predictions.

    Returns:
        ``(value, backward)``: the mean loss and ``backward(scale=1.0) -> d value / d y_pred``.
    """
    diff = y_pred - _align(y_true, y_pred)
    width = y_pred.shape[-1]

    def backward(d_values):
        return diff * (d_values[..., None] * (2 / width))

    return (diff * diff).mean(axis=-1), backward


@_mean_loss
def mean_absolute_error(y_true, y_pred):
    """Mean of ``|y_pred − y_true|`` over the last axis (gradient 0 where they are equal).

    Args:
        y_true: targets with ``y_pred``'s shape (or one rank less).
        y_pred: predictions.

    Returns:
        ``(value, backward)``: the mean loss and ``backward(scale=1.0) -> d value / d y_pred``.
    """
    diff = y_pred - _align(y_true, y_pred)
    width = y_pred.shape[-1]

    def backward(d_values):
        return xp.sign(diff) * (d_values[..., None] / width)

    return xp.abs(diff).mean(axis=-1), backward


# --- registry --------------------------------------------------------------------------------

LOSSES: dict[str, LossFn] = {
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "binary_crossentropy": binary_crossentropy,
    "mean_squared_error": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
}

ALIASES: dict[str, str] = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}

LOSS_NAMES: tuple[str, ...] = (*LOSSES, *ALIASES)


def canonical_name(name: str) -> str:
    """The canonical loss name for a name or Keras alias.

    Args:
        name: e.g. ``"mse"`` or ``"categorical_crossentropy"``.

    Returns:
        The key of ``LOSSES`` it stands for.

    Raises:
        KeyError: for an unknown name.
    """
    name = ALIASES.get(name, name)
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(LOSS_NAMES)}")
    return name


def get(name: str) -> LossFn:
    """The loss function for a name or Keras alias (``mse``, ``mae``).

    Args:
        name: a key of ``LOSSES`` or ``ALIASES``.

    Returns:
        ``fn(y_true, y_pred) -> (value, backward)``.

    Raises:
        KeyError: for an unknown name.
    """
    return LOSSES[canonical_name(name)]


def per_sample(name: str, y_true, y_pred):
    """The loss of each sample (averaged over its time steps or other inner axes).

    Args:
        name: a loss name or alias, as for ``get``.
        y_true: targets, as the loss takes them.
        y_pred: predictions of shape ``(N, ..., C)``.

    Returns:
        Array of shape ``(N,)`` in ``y_pred``'s dtype; its mean is the loss value.
    """
    y_pred = xp.asarray(y_pred)
    values, _ = get(name).samplewise(y_true, y_pred)
    return values.reshape(y_pred.shape[0], -1).mean(axis=1)
