"""What ``Model.compile`` attaches to each output of a model: its loss, the loss's weight and
its metrics, from Keras's forms (one for every output, a list by position, a dict by output
name), and ``Metric``, one metric of one output as the training loop accumulates it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from kconf.engine import loss_classes
from kconf.engine import metric_classes
from kconf.engine import metrics as metrics_mod
from kconf.engine.metric_classes import KerasMetric
from kconf.train import loop


class Metric:
    """A named metric of one output: per-sample values averaged over an epoch, or a streamed
    Keras metric's statistics summed over it.

    ``fn`` is a registered metric name (resolved from shapes on first use, as Keras does for
    'accuracy'), a callable ``fn(y_true, y_pred)`` (custom metrics), or a ``KerasMetric``
    (``kconf.engine.metric_classes``: AUC, Precision ...).
    """

    def __init__(self, name: str, fn: str | Callable | KerasMetric, spec: Any = None):
        self.name = name
        self.spec = fn if spec is None else spec  # as given: what export writes
        self.streamed: KerasMetric | None = fn if isinstance(fn, KerasMetric) else None
        self.fn: Callable | None = fn if callable(fn) else None

    def values(self, y_true, y_pred, sample_weight=None):
        """(sum of values, count): per-sample values count each sample; a scalar counts once.
        A streamed metric gives its batch statistics instead (``loop.BatchStats``).
        ``sample_weight`` (one weight per sample) weighs each sample as Keras's weighted
        metrics do: (Σ w·v, Σ w)."""
        if self.streamed is not None:
            return loop.BatchStats(self.streamed.stats(y_true, y_pred, sample_weight),
                                   self.streamed)
        if self.fn is None:
            self.fn = metrics_mod.resolve(self.spec, y_true.shape, y_pred.shape)
        v = np.asarray(self.fn(y_true, y_pred))
        if v.ndim == 0:
            return float(v), 1.0
        if v.ndim > 1:
            v = v.reshape(v.shape[0], -1).mean(axis=1, dtype=np.float64)
        if sample_weight is not None:
            w = np.broadcast_to(np.asarray(sample_weight, np.float64).reshape(-1), v.shape)
            return float(v @ w), float(w.sum())
        return float(np.add.reduce(v, dtype=np.float64)), float(v.shape[0])


def output_losses(loss, loss_weights, names: list[str]) -> tuple[list, list[Callable],
                                                                   list[float]]:
    """Each output's loss (as given), its function and its weight in the total loss.

    Args:
        loss: as ``Model.compile`` takes it.
        loss_weights: likewise (default 1.0).
        names: the model's output names, in order.

    Raises:
        ValueError: an unknown output name, or a list of the wrong length.
    """
    if _is_loss_class(loss, names):  # {Huber: {delta: 0.5}}: one loss, not a mapping
        loss = [loss] * len(names)
    given = _per_output(loss, names, "loss", None)
    weights = [float(w) for w in _per_output(loss_weights, names, "loss_weights", 1.0)]
    return given, [loss_classes.get(spec) for spec in given], weights


def output_metrics(metrics, weighted_metrics,
                   names: list[str]) -> tuple[list[list[Metric]], list[list[Metric]]]:
    """Each output's metrics and weighted metrics, named as Keras names them (``<output>_``
    before each with several outputs; ``weighted_`` before a weighted metric that is also
    given unweighted).

    Args:
        metrics: as ``Model.compile`` takes them.
        weighted_metrics: likewise.
        names: the model's output names, in order.

    Raises:
        ValueError: an unknown output name, or a list of the wrong length.
    """
    per_output = _per_output(metrics, names, "metrics", [], broadcast=_is_flat_list)
    prefixes = [f"{name}_" if len(names) > 1 else "" for name in names]
    per_output = [[(_metric_object(m), m) for m in (ms or [])] for ms in per_output]
    plain = [[Metric(prefix + _metric_name(m), m, given) for m, given in ms]
             for prefix, ms in zip(prefixes, per_output)]
    weighted = _per_output(weighted_metrics, names, "weighted_metrics", [],
                           broadcast=_is_flat_list)
    out = []
    for prefix, ms, own in zip(prefixes, weighted, plain):
        taken = {m.name for m in own}
        made = []
        for given in ms or []:
            m = _metric_object(given)
            name = prefix + _metric_name(m)
            if name in taken:  # Keras's name for a metric given both ways
                name = f"{prefix}weighted_{_metric_name(m)}"
            made.append(Metric(name, m, given))
        out.append(made)
    return plain, out


def _per_output(value, names: list[str], what: str, default, broadcast=None) -> list:
    """One entry per output from a single value, a list by position or a dict by name."""
    if value is None:
        return [default] * len(names)
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"{what}: unknown outputs {unknown}; outputs are {names}")
        return [value.get(n, default) for n in names]
    if broadcast is not None:
        return [value] * len(names) if broadcast(value) else list(value)
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"{what}: {len(value)} entries for {len(names)} outputs {names}")
        return list(value)
    return [value] * len(names)


def _is_flat_list(value) -> bool:
    """A metrics list meant for every output (not a list of per-output lists)."""
    return isinstance(value, (list, tuple)) and not (
        value and all(isinstance(v, (list, tuple)) for v in value))


def _is_loss_class(loss, names: list[str]) -> bool:
    """Whether ``loss`` is one ``{Class: args}`` loss rather than a mapping by output."""
    return (isinstance(loss, dict) and len(loss) == 1 and next(iter(loss)) not in names
            and next(iter(loss)) in loss_classes.LOSS_CLASSES)


def _metric_name(metric) -> str:
    if isinstance(metric, KerasMetric):
        return metric.name
    return metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")


def _metric_object(metric):
    """A metric string or ``{Class: args}`` entry as what ``Metric`` takes: the function
    metrics' names stay strings, Keras's metric classes become ``KerasMetric``s; callables
    and ``KerasMetric``s pass through."""
    if callable(metric) or isinstance(metric, KerasMetric):
        return metric
    return metric_classes.get(metric)
