"""Keras's other loss classes: regression errors, hinges, divergences and the overlap losses
(Dice, Tversky). Each is the sample-wise form Keras's function computes (reduced over the last
axis unless it says otherwise) and its gradient beside it.

Where Keras's ``maximum`` meets a tie (a hinge exactly at its margin) the gradient is split in
half, as JAX differentiates ``maximum``; so are the ties of categorical hinge's ``max``.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kconf.args.fields import Number, PositiveFloat
from kconf.engine import losses
from kconf.engine.backend import xp
from kconf.engine.loss_classes.base import KerasLoss, LossArgs, moved, moved_back, softplus
from kconf.engine.losses import EPSILON


class NoArgs(LossArgs):
    pass


class MeanSquaredError(KerasLoss):
    """``MeanSquaredError()``: mean of (y_pred − y_true)² over the last axis."""

    function = "mean_squared_error"

    def compute(self, y_true, y_pred):
        return losses.mean_squared_error.samplewise(y_true, y_pred)


class MeanAbsoluteError(KerasLoss):
    """``MeanAbsoluteError()``: mean of |y_pred − y_true| over the last axis."""

    function = "mean_absolute_error"

    def compute(self, y_true, y_pred):
        return losses.mean_absolute_error.samplewise(y_true, y_pred)


def _mean_last(elementwise, d_elementwise, width):
    """Values averaged over the last axis and their backward from elementwise derivatives."""
    def backward(d_values):
        return d_elementwise * (d_values[..., None] / width)

    return elementwise.mean(axis=-1), backward


class MeanAbsolutePercentageError(KerasLoss):
    """``MeanAbsolutePercentageError()``: 100 · mean |(y − p) / max(|y|, ε)|."""

    function = "mean_absolute_percentage_error"

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        scale = xp.maximum(xp.abs(y), xp.asarray(EPSILON, y_pred.dtype))
        diff = y - y_pred
        return _mean_last(100 * xp.abs(diff / scale), -100 * xp.sign(diff) / scale,
                          y_pred.shape[-1])


class MeanSquaredLogarithmicError(KerasLoss):
    """``MeanSquaredLogarithmicError()``: mean (log(max(p, ε) + 1) − log(max(y, ε) + 1))²."""

    function = "mean_squared_logarithmic_error"

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        eps = xp.asarray(EPSILON, y_pred.dtype)
        p_floor = xp.maximum(y_pred, eps)
        diff = xp.log(p_floor + 1) - xp.log(xp.maximum(y, eps) + 1)
        d_floor = xp.where(y_pred > eps, 1.0, xp.where(y_pred == eps, 0.5, 0.0))
        return _mean_last(diff * diff, 2 * diff / (p_floor + 1) * d_floor, y_pred.shape[-1])


class CosineArgs(LossArgs):
    axis: Annotated[int, Field(strict=True)] = -1


def _l2_normalize(x):
    """Keras's ``normalize``: x · min(rsqrt(Σx²), 1/ε) on the last axis, and the inverse norm
    with whether it was capped."""
    inv = 1 / xp.sqrt((x * x).sum(axis=-1, keepdims=True))
    cap = xp.asarray(1 / EPSILON, x.dtype)
    capped = ~(inv < cap)
    inv = xp.where(capped, cap, inv)
    return x * inv, inv, capped


class CosineSimilarity(KerasLoss):
    """``CosineSimilarity(axis=-1)``: −Σ ŷ·p̂ of the L2-normalised targets and predictions
    (a zero vector gives 0)."""

    Args = CosineArgs
    function = "cosine_similarity"

    def compute(self, y_true, y_pred):
        y, p = moved(self.axis, losses._align(y_true, y_pred), y_pred)
        y_hat, _, _ = _l2_normalize(y)
        p_hat, inv, capped = _l2_normalize(p)
        dot = (y_hat * p_hat).sum(axis=-1, keepdims=True)

        def backward(d_values):
            d = xp.where(capped, -y_hat * inv, -inv * (y_hat - p_hat * dot))
            return moved_back(self.axis, d * d_values[..., None])

        return -dot[..., 0], backward


class HuberArgs(LossArgs):
    delta: PositiveFloat = 1.0


class Huber(KerasLoss):
    """``Huber(delta=1.0)``: ½e² where |e| ≤ δ, δ|e| − ½δ² beyond; mean over the last axis."""

    Args = HuberArgs
    function = "huber"

    def compute(self, y_true, y_pred):
        error = y_pred - losses._align(y_true, y_pred)
        delta = xp.asarray(self.delta, y_pred.dtype)
        small = xp.abs(error) <= delta
        values = xp.where(small, 0.5 * error * error, delta * xp.abs(error) - 0.5 * delta * delta)
        return _mean_last(values, xp.where(small, error, delta * xp.sign(error)),
                          y_pred.shape[-1])


class LogCosh(KerasLoss):
    """``LogCosh()``: mean log(cosh(e)) = e + softplus(−2e) − log 2 (no overflow)."""

    function = "log_cosh"

    def compute(self, y_true, y_pred):
        error = y_pred - losses._align(y_true, y_pred)
        values = error + softplus(-2 * error) - xp.log(xp.asarray(2, y_pred.dtype))
        return _mean_last(values, xp.tanh(error), y_pred.shape[-1])


def _hinge_labels(y):
    """Keras: labels that are all 0 or 1 (over the whole batch) become −1 / 1."""
    return 2 * y - 1 if bool(((y == 0) | (y == 1)).all()) else y


def _relu_tie_half(margin):
    """d max(margin, 0) / d margin with JAX's half at the tie."""
    return xp.where(margin > 0, 1.0, xp.where(margin == 0, 0.5, 0.0))


class Hinge(KerasLoss):
    """``Hinge()``: mean max(1 − y·p, 0); 0/1 labels are read as −1/1."""

    function = "hinge"

    def compute(self, y_true, y_pred):
        y = _hinge_labels(losses._align(y_true, y_pred))
        margin = 1 - y * y_pred
        values = xp.maximum(margin, 0)
        return _mean_last(values, -y * _relu_tie_half(margin), y_pred.shape[-1])


class SquaredHinge(KerasLoss):
    """``SquaredHinge()``: mean max(1 − y·p, 0)²; 0/1 labels are read as −1/1."""

    function = "squared_hinge"

    def compute(self, y_true, y_pred):
        y = _hinge_labels(losses._align(y_true, y_pred))
        hinge = xp.maximum(1 - y * y_pred, 0)
        return _mean_last(hinge * hinge, -2 * y * hinge, y_pred.shape[-1])


class CategoricalHinge(KerasLoss):
    """``CategoricalHinge()``: max(max((1 − y)·p) − Σ y·p + 1, 0) over the last axis."""

    function = "categorical_hinge"

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        others = (1 - y) * y_pred
        neg = others.max(axis=-1, keepdims=True)
        pos = (y * y_pred).sum(axis=-1, keepdims=True)
        margin = (neg - pos + 1)[..., 0]
        at_max = (others == neg)
        at_max = at_max / at_max.sum(axis=-1, keepdims=True)  # ties share the gradient

        def backward(d_values):
            d_margin = (_relu_tie_half(margin) * d_values)[..., None]
            return (at_max * (1 - y) - y) * d_margin

        return xp.maximum(margin, 0), backward


class KLDivergence(KerasLoss):
    """``KLDivergence()``: Σ y·log(y / p), both clipped to [ε, 1]."""

    function = "kl_divergence"

    def compute(self, y_true, y_pred):
        eps = xp.asarray(EPSILON, y_pred.dtype)
        y = xp.clip(losses._align(y_true, y_pred), eps, 1)
        p = xp.clip(y_pred, eps, 1)
        inside = p == y_pred

        def backward(d_values):
            return xp.where(inside, -y / p, 0) * d_values[..., None]

        return (y * xp.log(y / p)).sum(axis=-1), backward


class Poisson(KerasLoss):
    """``Poisson()``: mean p − y·log(p + ε)."""

    function = "poisson"

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        eps = xp.asarray(EPSILON, y_pred.dtype)
        return _mean_last(y_pred - y * xp.log(y_pred + eps), 1 - y / (y_pred + eps),
                          y_pred.shape[-1])


#: Keras's ``axis`` of Dice and Tversky: the axes summed over (none: every axis, one value
#: for the whole batch).
OverlapAxis = Annotated[int, Field(strict=True)] | list[Annotated[int, Field(strict=True)]] | None


class DiceArgs(LossArgs):
    axis: OverlapAxis = None


class TverskyArgs(DiceArgs):
    alpha: Number = 0.5
    beta: Number = 0.5


def _overlap_axes(axis, ndim):
    """The summed axes as a tuple (all of them for None)."""
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in ([axis] if isinstance(axis, int) else axis))


class Tversky(KerasLoss):
    """``Tversky(alpha=0.5, beta=0.5, axis=None)``: 1 − I / (I + α·Σ(1 − p)·y + β·Σp·(1 − y)
    + ε), I = Σ y·p over ``axis`` (every axis by default: one value for the batch)."""

    Args = TverskyArgs
    function = "tversky"

    def _weights(self):
        return self.alpha, self.beta

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        axes = _overlap_axes(self.axis, y_pred.ndim)
        alpha, beta = self._weights()
        inter = (y * y_pred).sum(axis=axes, keepdims=True)
        fp = ((1 - y_pred) * y).sum(axis=axes, keepdims=True)
        fn = (y_pred * (1 - y)).sum(axis=axes, keepdims=True)
        denom = inter + alpha * fp + beta * fn + xp.asarray(EPSILON, y_pred.dtype)
        ratio = inter / denom

        def backward(d_values):
            d_denom = y - alpha * y + beta * (1 - y)
            d_ratio = (y * denom - inter * d_denom) / (denom * denom)
            return -d_ratio * xp.reshape(d_values, ratio.shape)

        return xp.squeeze(1 - ratio, axis=axes), backward


class Dice(Tversky):
    """``Dice(axis=None)``: 1 − 2·Σ y·p / (Σ y + Σ p + ε) over ``axis`` (every axis by
    default: one value for the batch)."""

    Args = DiceArgs
    function = "dice"

    def compute(self, y_true, y_pred):
        y = losses._align(y_true, y_pred)
        axes = _overlap_axes(self.axis, y_pred.ndim)
        inter = (y * y_pred).sum(axis=axes, keepdims=True)
        denom = (y.sum(axis=axes, keepdims=True) + y_pred.sum(axis=axes, keepdims=True)
                 + xp.asarray(EPSILON, y_pred.dtype))

        def backward(d_values):
            d_ratio = (2 * y * denom - 2 * inter) / (denom * denom)
            return -d_ratio * xp.reshape(d_values, denom.shape)

        return xp.squeeze(1 - 2 * inter / denom, axis=axes), backward
