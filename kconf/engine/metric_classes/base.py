"""The base of Keras's stateful metrics: statistics that add up over batches.

Every Keras metric kconf streams is a function of sums: a mean is (Σ w·v, Σ w), AUC the true
and false positives at each threshold, R² per-column sums. A metric here computes one batch's
statistics as a float64 vector (``stats``) and its value from any sum of them (``result_of``);
whoever runs the batches adds the vectors (``kconf.train.loop``), so an epoch's value is
exactly Keras's value accumulated over the same batches. ``update``/``result``/``reset`` are
Keras's own methods on top, for use outside a fit.

``sample_weight`` (one weight per sample, shape ``(N,)``) weighs each sample as Keras does.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from kconf.args.fields import DeferredModel, Str
from kconf.engine.backend import xp

Shape = Sequence[int | None]


class MetricArgs(DeferredModel):
    """A metric class's Keras arguments; ``name`` sets the column it is logged under."""

    name: Str | None = None


class KerasMetric:
    """A Keras metric class: arguments on ``self``, batch statistics that add up.

    Subclasses set ``Args``, ``default_name`` (Keras's name of the metric, its log column)
    and ``direction`` (``"up"`` when larger is better, as Keras's ``_direction``).
    """

    Args: ClassVar[type[MetricArgs]] = MetricArgs
    default_name: ClassVar[str] = ""
    direction: ClassVar[str] = "up"

    def __init__(self, **kwargs: Any):
        args = self.Args(**kwargs)
        for key in type(args).model_fields:
            setattr(self, key, getattr(args, key))
        self._args = args
        self.name = args.name or self.default_name
        self._total = None

    def get_config(self) -> dict[str, Any]:
        """The arguments that differ from their defaults, as Keras names them."""
        defaults = type(self._args).model_construct()
        out = {}
        for key, field in type(self._args).model_fields.items():
            value = getattr(self._args, key)
            if field.is_required() or value != field.get_default(call_default_factory=True):
                out[key] = value
        return out

    # --- what a metric defines -------------------------------------------------------------
    def check(self, y_true_shape: Shape, y_pred_shape: Shape) -> str | None:
        """Why the metric cannot take an output of this shape (None when it can).

        Args:
            y_true_shape: the targets' shape, batch axis first (may be None).
            y_pred_shape: the output's shape, batch axis first (may be None).
        """
        return None

    def stats(self, y_true, y_pred, sample_weight=None) -> np.ndarray:
        """One batch's statistics, a float64 vector that adds up over batches."""
        raise NotImplementedError

    def result_of(self, stats: np.ndarray) -> float:
        """The metric's value from summed statistics."""
        raise NotImplementedError

    # --- Keras's methods -----------------------------------------------------------------
    def reset(self) -> None:
        """Forget the accumulated batches (Keras's ``reset_state``)."""
        self._total = None

    def update(self, y_true, y_pred, sample_weight=None) -> None:
        """Add one batch (Keras's ``update_state``).

        Args:
            y_true: the batch's targets.
            y_pred: the batch's outputs.
            sample_weight: one weight per sample, or None for 1.
        """
        s = self.stats(y_true, y_pred, sample_weight)
        self._total = s if self._total is None else self._total + s

    def result(self) -> float:
        """The value over the batches added since the last reset (0 before any)."""
        return 0.0 if self._total is None else self.result_of(self._total)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def weights_for(sample_weight, n: int) -> np.ndarray:
    """Per-sample weights as float64 ``(n,)`` (ones when None)."""
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    return np.broadcast_to(w, (n,)) if w.size == 1 else w


def per_sample(values) -> np.ndarray:
    """Values of shape ``(N, ...)`` averaged to one per sample, float64 ``(N,)``."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0:
        return values.reshape(1)
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


class MeanMetric(KerasMetric):
    """Keras's ``MeanMetricWrapper``: the weighted mean of per-sample values. Subclasses
    define ``values(y_true, y_pred)`` (one value per position, averaged per sample)."""

    direction = "down"

    def values(self, y_true, y_pred):
        """The metric at each position (``(N,)`` or ``(N, ...)``)."""
        raise NotImplementedError

    def stats(self, y_true, y_pred, sample_weight=None) -> np.ndarray:
        y_pred = xp.asarray(y_pred)
        v = per_sample(self.values(y_true, y_pred))
        w = weights_for(sample_weight, v.shape[0])
        return np.array([float(v @ w), float(w.sum())])

    def result_of(self, stats: np.ndarray) -> float:
        return float(stats[0] / stats[1]) if stats[1] else 0.0
