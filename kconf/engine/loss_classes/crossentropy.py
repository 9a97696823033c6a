"""Keras's crossentropy loss classes with their arguments: ``from_logits`` (a log-sum-exp /
log-sigmoid form, stable for any logit), ``label_smoothing``, ``axis``, ``ignore_class``, and
the focal variants.

At their default arguments they compute exactly ``kconf.engine.losses``'s functions (which they
call): probabilities clipped to [ε, 1 − ε], categorical rows divided by their sum first.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kconf.args.fields import Bool, NonNegativeFloat, Number, bounded
from kconf.engine import losses
from kconf.engine.backend import xp
from kconf.engine.loss_classes.base import (
    KerasLoss,
    LossArgs,
    log_softmax,
    moved,
    moved_back,
    sigmoid,
    softplus,
)
from kconf.errors import ShapeError

#: label_smoothing: a fraction of the target mass spread over the classes, in [0, 1].
Smoothing = bounded(float, ge=0, le=1)
#: An axis of ``y_pred`` (negative counts from the end), as Keras's ``axis``.
Axis = Annotated[int, Field(strict=True)]


class CrossentropyArgs(LossArgs):
    from_logits: Bool = False
    label_smoothing: Smoothing = 0.0
    axis: Axis = -1


class SparseCrossentropyArgs(LossArgs):
    from_logits: Bool = False
    ignore_class: Annotated[int, Field(strict=True)] | None = None
    axis: Axis = -1


class BinaryFocalArgs(CrossentropyArgs):
    apply_class_balancing: Bool = False
    alpha: bounded(float, ge=0, le=1) = 0.25
    gamma: NonNegativeFloat = 2.0


class CategoricalFocalArgs(CrossentropyArgs):
    alpha: Number | list[Number] = 0.25
    gamma: NonNegativeFloat = 2.0


def _binary_elementwise(y, p, from_logits: bool):
    """Binary crossentropy per element and its derivative with respect to ``p`` (clipped
    probabilities: zero where clipped) or to the logits."""
    if from_logits:
        # −y·log σ(x) − (1 − y)·log σ(−x) = y·softplus(−x) + (1 − y)·softplus(x)
        values = y * softplus(-p) + (1 - y) * softplus(p)
        return values, sigmoid(p) - y
    eps, one_minus_eps = losses._clip_bounds(p.dtype)
    pc = xp.minimum(xp.maximum(p, eps), one_minus_eps)
    values = -(y * xp.log(pc) + (1 - y) * xp.log(1 - pc))
    grad = xp.where(pc == p, (1 - y) / (1 - pc) - y / pc, 0)
    return values, grad


class BinaryCrossentropy(KerasLoss):
    """``BinaryCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)``: labels
    smoothed towards 0.5, then the crossentropy averaged over ``axis``."""

    Args = CrossentropyArgs
    function = "binary_crossentropy"

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        if not self.from_logits and not self.label_smoothing and self.axis == -1:
            return losses.binary_crossentropy.samplewise(y, y_pred)
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        y, x = moved(self.axis, y, y_pred)
        values, d_x = _binary_elementwise(y, x, self.from_logits)
        width = x.shape[-1]

        def backward(d_values):
            return moved_back(self.axis, d_x * (d_values[..., None] / width))

        return values.mean(axis=-1), backward


def _smooth_categorical(y, smoothing: float):
    """Keras's categorical smoothing: y·(1 − s) + s / classes."""
    return y * (1 - smoothing) + smoothing / y.shape[-1]


def _logits_crossentropy(y, x):
    """−Σ y·log_softmax(x) on the last axis and its backward (stable log-sum-exp)."""
    log_p = log_softmax(x)
    values = -(y * log_p).sum(axis=-1)

    def backward(d_values):
        soft = xp.exp(log_p)
        return (soft * y.sum(axis=-1, keepdims=True) - y) * d_values[..., None]

    return values, backward


class CategoricalCrossentropy(KerasLoss):
    """``CategoricalCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)``."""

    Args = CrossentropyArgs
    function = "categorical_crossentropy"

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        if self.label_smoothing:
            y = _smooth_categorical(*moved(self.axis, y), self.label_smoothing)
            y = moved_back(self.axis, y)
        y, x = moved(self.axis, y, y_pred)
        if self.from_logits:
            values, back = _logits_crossentropy(y, x)
        else:
            values, back = losses._normalised_crossentropy(y, x)
        return values, lambda d_values: moved_back(self.axis, back(d_values))


def _labels(y_true, y_pred, axis: int, ignore_class):
    """Integer labels of ``y_pred``'s shape without its class axis, and the mask of the ones
    that count (None without ``ignore_class``).

    Raises:
        ShapeError: labels that do not fit, or outside [0, classes) (ignored ones aside).
    """
    labels = xp.asarray(y_true)
    class_axis = axis % y_pred.ndim
    if labels.ndim == y_pred.ndim and labels.shape[class_axis] == 1:
        labels = xp.squeeze(labels, axis=class_axis)
    expected = tuple(d for i, d in enumerate(y_pred.shape) if i != class_axis)
    if labels.shape != expected:
        raise ShapeError(f"integer labels of shape {tuple(xp.asarray(y_true).shape)} do not "
                         f"fit predictions of shape {tuple(y_pred.shape)} (expected {expected})")
    labels = labels.astype(xp.int64)
    mask = None
    if ignore_class is not None:
        mask = labels != ignore_class
        labels = xp.where(mask, labels, 0)
    n_classes = y_pred.shape[class_axis]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ShapeError(f"labels must lie in [0, {n_classes - 1}] for {n_classes} classes, "
                         f"got values from {int(labels.min())} to {int(labels.max())}")
    return labels, mask


class SparseCategoricalCrossentropy(KerasLoss):
    """``SparseCategoricalCrossentropy(from_logits=False, ignore_class=None, axis=-1)``.

    Positions labelled ``ignore_class`` count for nothing: as Keras's mask, the others are
    weighted by total / valid so that the mean is the mean over the valid positions (0 when
    none is valid).
    """

    Args = SparseCrossentropyArgs
    function = "sparse_categorical_crossentropy"

    def compute(self, y_true, y_pred):
        labels, mask = _labels(y_true, y_pred, self.axis, self.ignore_class)
        (x,) = moved(self.axis, y_pred)
        one_hot = (labels[..., None] == xp.arange(x.shape[-1])).astype(x.dtype)
        if self.from_logits:
            values, back = _logits_crossentropy(one_hot, x)
        else:
            if mask is not None:  # Keras zeroes ignored rows before normalising them
                x = xp.where(mask[..., None], x, 1)
            values, back = losses._normalised_crossentropy(one_hot, x)
        if mask is not None:
            valid = int(mask.sum())
            factor = xp.where(mask, mask.size / valid if valid else 0, 0).astype(x.dtype)
            values = values * factor
            inner = back
            back = lambda d_values: inner(d_values * factor)  # noqa: E731
        return values, lambda d_values: moved_back(self.axis, back(d_values))


class BinaryFocalCrossentropy(KerasLoss):
    """``BinaryFocalCrossentropy(apply_class_balancing=False, alpha=0.25, gamma=2.0,
    from_logits=False, label_smoothing=0.0, axis=-1)``: the binary crossentropy (of clipped
    probabilities) times (1 − p_t)^γ, times α / (1 − α) for positives / negatives when
    balancing."""

    Args = BinaryFocalArgs
    function = "binary_focal_crossentropy"

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        y, x = moved(self.axis, y, y_pred)
        p = sigmoid(x) if self.from_logits else x
        bce, d_bce = _binary_elementwise(y, p, False)
        base = p + y - 2 * y * p  # 1 − p_t
        gamma = self.gamma
        focal = base ** gamma
        d_focal = gamma * base ** (gamma - 1) * (1 - 2 * y) if gamma else xp.zeros_like(base)
        weight = y * self.alpha + (1 - y) * (1 - self.alpha) if self.apply_class_balancing else 1
        values = weight * focal * bce
        width = x.shape[-1]

        def backward(d_values):
            d_p = weight * (d_focal * bce + focal * d_bce) * (d_values[..., None] / width)
            if self.from_logits:
                d_p = d_p * p * (1 - p)
            return moved_back(self.axis, d_p)

        return values.mean(axis=-1), backward


class CategoricalFocalCrossentropy(KerasLoss):
    """``CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0, from_logits=False,
    label_smoothing=0.0, axis=-1)``: Σ α·(1 − p)^γ·(−y·log p) over the classes, p the
    row-normalised, clipped probabilities (softmax first from logits); ``alpha`` may be one
    weight per class."""

    Args = CategoricalFocalArgs
    function = "categorical_focal_crossentropy"

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        y, x = moved(self.axis, y, y_pred)
        if self.label_smoothing:
            y = _smooth_categorical(y, self.label_smoothing)
        alpha = xp.asarray(self.alpha, dtype=x.dtype)
        if alpha.ndim and alpha.shape[-1] != x.shape[-1]:
            raise ShapeError(f"alpha has {alpha.shape[-1]} weights for {x.shape[-1]} classes")
        soft = xp.exp(log_softmax(x)) if self.from_logits else x
        total = soft.sum(axis=-1, keepdims=True)
        out = soft / total
        eps, one_minus_eps = losses._clip_bounds(x.dtype)
        oc = xp.minimum(xp.maximum(out, eps), one_minus_eps)
        log_oc = xp.log(oc)
        gamma = self.gamma
        modulating = (1 - oc) ** gamma
        values = (alpha * modulating * (-y * log_oc)).sum(axis=-1)

        def backward(d_values):
            d_mod = gamma * (1 - oc) ** (gamma - 1) if gamma else xp.zeros_like(oc)
            d_oc = alpha * (d_mod * y * log_oc - modulating * y / oc) * d_values[..., None]
            d_out = xp.where(oc == out, d_oc, 0)
            d_soft = (d_out - (d_out * out).sum(axis=-1, keepdims=True)) / total
            if self.from_logits:
                d_soft = soft * (d_soft - (d_soft * soft).sum(axis=-1, keepdims=True))
            return moved_back(self.axis, d_soft)

        return values, backward
