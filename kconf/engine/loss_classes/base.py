"""The base of Keras's loss classes: arguments kept on the instance, one sample-wise form.

A loss class is constructed with its Keras arguments (``Huber(delta=0.5)``) and written once,
in ``samplewise(y_true, y_pred) -> (values, backward)``: ``values`` has one entry per position
of ``y_pred`` without its reduced axis (``(N,)`` for ``(N, C)``; ``(N, T)`` for sequences; a
0-d value for the batch-level losses Dice and Tversky without ``axis``) and ``backward(d_values)``
returns the gradient of ``Σ d_values · values`` with respect to ``y_pred``. Calling the loss
gives Keras's ``sum_over_batch_size`` reduction: ``(mean of values, backward(scale))``, the
contract of ``kconf.engine.losses``. Per-sample weights (Keras's ``sample_weight``) plug in
between: ``values * w`` summed over ``values.size``, with ``backward(w * scale / size)``.
"""
from __future__ import annotations

from typing import Any, ClassVar

from kconf.args.fields import DeferredModel
from kconf.engine.backend import xp


class LossArgs(DeferredModel):
    """A loss class's Keras arguments (``name``, ``reduction`` and ``dtype`` aside)."""


class KerasLoss:
    """A Keras loss class: its arguments on ``self``, ``samplewise`` in the subclass.

    Subclasses set ``Args`` (their argument model) and ``function`` (Keras's snake_case name
    of the loss function, the string a config may give instead of the class).
    """

    Args: ClassVar[type[LossArgs]] = LossArgs
    function: ClassVar[str] = ""

    def __init__(self, **kwargs: Any):
        args = self.Args(**kwargs)
        for key in type(args).model_fields:
            setattr(self, key, getattr(args, key))
        self._args = args

    def get_config(self) -> dict[str, Any]:
        """The arguments that differ from their defaults, as Keras names them."""
        defaults = type(self._args)()
        return {k: getattr(self._args, k) for k in type(self._args).model_fields
                if getattr(self._args, k) != getattr(defaults, k)}

    def compute(self, y_true, y_pred):
        """The subclass's math: ``(values, backward(d_values))`` before the reduction."""
        raise NotImplementedError

    def samplewise(self, y_true, y_pred):
        """The loss before Keras's reduction (see the module docstring).

        Args:
            y_true: targets, as the loss takes them.
            y_pred: predictions.

        Returns:
            ``(values, backward)``: values in ``y_pred``'s dtype, and ``backward(d_values)``
            giving the gradient of ``Σ d_values · values`` with ``y_pred``'s shape and dtype.
        """
        y_pred = xp.asarray(y_pred)
        values, values_backward = self.compute(y_true, y_pred)
        dtype = y_pred.dtype

        def backward(d_values):
            return xp.asarray(values_backward(d_values)).astype(dtype, copy=False)

        return xp.asarray(values).astype(dtype, copy=False), backward

    def __call__(self, y_true, y_pred):
        """The mean loss (Keras's ``sum_over_batch_size``) and ``backward(scale=1.0)``.

        Args:
            y_true: targets, as the loss takes them.
            y_pred: predictions.

        Returns:
            ``(value, backward)``: a 0-d value in ``y_pred``'s dtype and ``backward(scale)``
            returning ``scale · d value / d y_pred``.
        """
        y_pred = xp.asarray(y_pred)
        values, values_backward = self.samplewise(y_true, y_pred)
        value = values.mean()

        def backward(scale=1.0):
            d_values = xp.full(values.shape, scale / max(values.size, 1), dtype=y_pred.dtype)
            return values_backward(d_values)

        return value, backward

    def per_sample(self, y_true, y_pred):
        """The loss of each sample, averaged over its inner positions: shape ``(N,)`` (a
        batch-level loss gives its one value to every sample)."""
        y_pred = xp.asarray(y_pred)
        values, _ = self.samplewise(y_true, y_pred)
        if values.ndim == 0:
            return xp.full(y_pred.shape[0], values, dtype=y_pred.dtype)
        return values.reshape(y_pred.shape[0], -1).mean(axis=1)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def moved(axis: int, *arrays):
    """``arrays`` with ``axis`` moved last (Keras's ``axis`` argument), or as they are."""
    if axis == -1:
        return arrays
    return tuple(xp.moveaxis(a, axis, -1) for a in arrays)


def moved_back(axis: int, grad):
    """A gradient computed with ``axis`` last, in the original layout."""
    return grad if axis == -1 else xp.moveaxis(grad, -1, axis)


def softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    return xp.logaddexp(0, x)


def sigmoid(x):
    """The logistic function without overflow."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def log_softmax(x):
    """``x − logsumexp(x)`` on the last axis, shifted by the row maximum (stable)."""
    z = x - x.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
