"""The training loop behind ``Model.fit``, ``evaluate``, ``predict`` and ``train_on_batch``.

``kconf.model.Model`` holds the structure, the weights and what ``compile`` attached; these
functions run it as Keras's methods do: the arrays by input and output name, the batches of an
epoch, one optimizer step per batch, the logs averaged over the epoch, the callbacks and the
``History``. A model here is a built, compiled ``Model``; the loop uses its graph pass
(``_forward``), its compiled losses (``_losses``), its gradient buffers (``_zero_grads``,
``_params``, ``_grads``) and its step context (``_ops_step``: its ``Ops`` object's step,
parallel where the graph uses workers). The loss of a batch also holds what layers added
(``kconf.engine.added_losses``: ActivityRegularization's and activity regularizers'
penalties) and the weights' regularizers' penalties (``Model.weight_terms``; constraints
are applied after each optimizer step).

The per-step path (``train_step``) is what small models spend their time in: it does the
forward and backward passes, the optimizer step and the logs of the batch, nothing more.
"""
from __future__ import annotations

import math

import numpy as np

from kconf.data.stream import (
    check_unchanged,
    epoch_order,
    is_stream,
    row_nbytes,
    rows_of,
    streams_of,
)
from kconf.engine.backend import floatx, xp
from kconf.errors import StoppedElsewhere, TrainingError
from kconf.train.callbacks import CallbackList, History
from kconf.train.weighting import output_weights

# Batches are gathered this many bytes at a time (see ``_batches``).
_GATHER_BYTES = 4 << 20


class Mean:
    """Running weighted mean (Keras's loss tracker and Mean metric)."""

    def __init__(self):
        self.total = 0.0
        self.count = 0.0

    def add(self, total: float, count: float) -> None:
        self.total += total
        self.count += count

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


class BatchStats:
    """A streamed metric's log of one batch: its statistics (``KerasMetric.stats``), which
    add up over batches, and the metric that turns their sum into a value."""

    __slots__ = ("stats", "metric")

    def __init__(self, stats, metric):
        self.stats = stats
        self.metric = metric


class Accumulated:
    """Running sum of a streamed metric's statistics (Keras's metric state over an epoch)."""

    def __init__(self, metric):
        self.metric = metric
        self.total = None

    def add(self, stats) -> None:
        self.total = stats if self.total is None else self.total + stats

    def result(self) -> float:
        return self.metric.result_of(self.total) if self.total is not None else 0.0


def track(trackers: dict, logs: dict) -> None:
    """Add one batch's logs to the epoch's trackers (created on first sight): a ``Mean`` for
    ``(sum, count)`` pairs, an ``Accumulated`` for a streamed metric's ``BatchStats``."""
    for key, value in logs.items():
        tracker = trackers.get(key)
        if isinstance(value, BatchStats):
            if tracker is None:
                tracker = trackers[key] = Accumulated(value.metric)
            tracker.add(value.stats)
        else:
            if tracker is None:
                tracker = trackers[key] = Mean()
            tracker.add(*value)


def batch_value(value) -> float:
    """The value of one batch's log alone (``train_on_batch``)."""
    if isinstance(value, BatchStats):
        return value.metric.result_of(value.stats)
    return value[0] / value[1]


def train_step(model, xs: list, ys: list,
               sws: list | None = None) -> tuple[dict[str, tuple[float, float]], int]:
    """One optimizer step; returns ({log name: (sum, count) or BatchStats}, batch size).

    Gradients are zeroed first, so a step that fails leaves nothing behind for the next,
    and after a step ``layer.grads`` hold that step's gradients. ``sws``: one sample-weight
    array per output, or None (``kconf.train.weighting``).
    """
    n = len(xs[0])
    # Overflow is reported once, as a non-finite loss, rather than as NumPy warnings.
    with np.errstate(over="ignore", invalid="ignore"), model._ops_step():
        model._zero_grads()
        dist = model.distributed  # a data-parallel run's rank (kconf.distributed), or None
        rng = model.train_rng if dist is None else dist.step_rng()
        with model._added_losses() as added:
            outputs, backward = model._forward(xs, training=True, rng=rng)
        total, per_output, douts = model._losses(ys, outputs, sws)
        total += sum(added)
        terms = model.weight_terms  # regularizers and constraints (None: none is set)
        if terms is not None:
            total += terms.penalty()
        if model.terminate_on_nan and not math.isfinite(total):
            raise TrainingError(f"the loss became {total} (not finite)")
        backward(douts)
        if dist is not None:
            dist.reduce_gradients(model)
        if terms is not None:  # after the sum: the same on every rank, added once
            terms.add_gradients()
        optimizer = model.optimizer
        if getattr(optimizer, "loss_scale_factor", None):  # Keras scales the loss, so the
            optimizer.scale_gradients(model._grads)      # gradients; apply divides them back
        optimizer.apply(model._params, model._grads)
        if terms is not None:
            terms.constrain()  # after the update, as Keras's optimizer applies them
    return batch_logs(model, total, per_output, ys, outputs, n, sws), n


def batch_logs(model, total, per_output, ys, outputs, n, sws=None):
    """The logs of one batch, each as (sum, count) (``BatchStats`` for a streamed metric):
    the loss, the per-output losses of a model with several outputs, the metrics, and the
    weighted metrics (with ``sws``, the outputs' sample weights, when there are any)."""
    logs = {"loss": (total * n, n)}
    if len(outputs) > 1:
        for name, value in zip(model.output_names, per_output):
            logs[f"{name}_loss"] = (value * n, n)
    for metrics, y, out in zip(model.metrics, ys, outputs):
        for m in metrics:
            logs[m.name] = m.values(y, out)
    for i, (metrics, y, out) in enumerate(zip(model.weighted_metrics, ys, outputs)):
        for m in metrics:
            logs[m.name] = m.values(y, out, None if sws is None else sws[i])
    return logs


def train_on_batch(model, x, y, return_dict: bool = False, sample_weight=None,
                   class_weight=None):
    """One gradient step on one batch, as ``keras.Model.train_on_batch``.

    Args:
        model: a built, compiled ``Model``.
        x, y: the batch, as for ``fit``.
        return_dict: return the logs by name instead of a value or list.
        sample_weight, class_weight: as for ``fit``.

    Returns:
        The loss (and metrics) of that batch.
    """
    xs = [rows_of(a, slice(None)) for a in input_arrays(model, x)]  # a stream: read it
    ys = [rows_of(a, slice(None)) for a in target_arrays(model, y)]
    sws = output_weights(model.output_names, ys, sample_weight, class_weight)
    logs, _ = train_step(model, xs, ys, sws)
    return keras_return({k: batch_value(v) for k, v in logs.items()}, return_dict)


def fit(model, x=None, y=None, batch_size: int | None = None, epochs: int = 1,
        verbose: int = 0, callbacks=None, validation_split: float = 0.0,
        validation_data=None, shuffle: bool = True, initial_epoch: int = 0,
        sample_weight=None, class_weight=None) -> History:
    """Train ``model`` for ``epochs`` epochs, as ``keras.Model.fit``.

    Args:
        model: a built, compiled ``Model``.
        x, y: arrays, lists of arrays (one per input/output) or dicts by name.
        batch_size: samples per step (default 32).
        epochs: the epoch to stop before (counting from 0, with ``initial_epoch``).
        verbose: 0 = silent (the library never prints unless asked); 1 = rich progress.
        callbacks: ``kconf.train.callbacks.Callback`` instances.
        validation_split: fraction of the data, taken from the end before shuffling.
        validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``;
            takes precedence over validation_split.
        shuffle: reshuffle the training samples every epoch (with ``model.train_rng``).
        initial_epoch: the epoch to start at (a resumed run).
        sample_weight: one weight per sample, or None; ``validation_split`` splits it too.
        class_weight: class -> weight, or output name -> {class: weight}, for the training
            samples (``kconf.train.weighting``).

    Returns:
        History with one value per epoch for each log name.

    Raises:
        TrainingError: the loss became NaN or infinite.
    """
    batch_size = batch_size or 32
    xs, ys = input_arrays(model, x), target_arrays(model, y)
    if validation_data is None and validation_split:
        split = int(math.floor(len(xs[0]) * (1.0 - validation_split)))
        validation_data = ([a[split:] for a in xs], [a[split:] for a in ys])
        xs, ys = [a[:split] for a in xs], [a[:split] for a in ys]
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            validation_data += (sample_weight[split:],)
            sample_weight = sample_weight[:split]
    sws = output_weights(model.output_names, ys, sample_weight, class_weight)
    n = len(xs[0])
    steps = max(1, math.ceil(n / batch_size))
    history = History()
    callbacks = list(callbacks or [])
    if verbose:
        from kconf.report.progress import ProgressBar
        callbacks.append(ProgressBar())
    cbs = CallbackList([history, *callbacks], model,
                       {"epochs": epochs, "steps": steps, "samples": n,
                        "batch_size": batch_size, "initial_epoch": initial_epoch})
    model.stop_training = False
    dist = model.distributed
    cbs.on_train_begin()
    streams = streams_of(xs, ys, *(validation_data or ())[:2])
    for epoch in range(initial_epoch, epochs):
        if streams:  # a file rewritten under the run: stop before mixing two data sets
            check_unchanged(streams, f"before epoch {epoch + 1}")
        cbs.on_epoch_begin(epoch)
        order = epoch_order(model.train_rng, n, xs) if shuffle else None
        batches = _batches([*xs, *ys, *(sws or ())], order, batch_size)
        trackers: dict = {}
        for step in range(steps):
            cbs.on_train_batch_begin(step)
            batch = next(batches)
            if dist is not None:  # this rank's shard of the global batch
                batch = dist.shard(batch, epoch, step)
            try:
                logs_of_batch, _ = train_step(
                    model, batch[:len(xs)], batch[len(xs):len(xs) + len(ys)],
                    None if sws is None else batch[len(xs) + len(ys):])
            except StoppedElsewhere:
                raise
            except TrainingError as exc:
                raise TrainingError(f"epoch {epoch + 1}, batch {step + 1}: {exc}") from None
            track(trackers, logs_of_batch)
            cbs.on_train_batch_end(step, {k: t.result() for k, t in trackers.items()})
        logs = ({k: t.result() for k, t in trackers.items()} if dist is None
                else dist.epoch_logs(model, trackers))
        if validation_data is not None:
            logs.update({f"val_{k}": v for k, v in
                         _validation_logs(model, validation_data, batch_size).items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    if epochs > initial_epoch and hasattr(model.optimizer, "finalize"):
        model.optimizer.finalize(model._params)  # with EMA: the weights become the averages
    cbs.on_train_end(logs=history.history)
    return history


def evaluate(model, x=None, y=None, batch_size: int | None = None,
             return_dict: bool = False, sample_weight=None):
    """Loss and metrics in inference mode, as ``keras.Model.evaluate``.

    Args:
        model: a built, compiled ``Model``.
        x, y: as for ``fit``.
        batch_size: samples per batch (default 32).
        return_dict: return the logs by name instead of a value or list.
        sample_weight: one weight per sample, or None.

    Returns:
        The loss (and metrics) averaged over every sample.
    """
    batch_size = batch_size or 32
    xs, ys = input_arrays(model, x), target_arrays(model, y)
    sws = output_weights(model.output_names, ys, sample_weight)
    trackers = evaluate_trackers(model, xs, ys, batch_size, sws)
    return keras_return({k: t.result() for k, t in trackers.items()}, return_dict)


def _validation_logs(model, validation_data, batch_size: int) -> dict[str, float]:
    """The validation logs of an epoch (``validation_data``: ``(x, y)`` or ``(x, y,
    sample_weight)``); on a rank of a data-parallel run, of its shard of the validation
    data, summed over the ranks."""
    val_x, val_y, *val_w = validation_data
    weights = val_w[0] if val_w else None
    dist = model.distributed
    if dist is None:
        return evaluate(model, val_x, val_y, batch_size=batch_size, return_dict=True,
                        sample_weight=weights)
    xs, ys = input_arrays(model, val_x), target_arrays(model, val_y)
    sws = output_weights(model.output_names, ys, weights)
    arrays = dist.shard_rows([*xs, *ys, *(sws or ())])
    k, m = len(xs), len(xs) + len(ys)
    return dist.reduce_logs(evaluate_trackers(model, arrays[:k], arrays[k:m], batch_size,
                                              None if sws is None else arrays[m:]))


def evaluate_trackers(model, xs: list, ys: list, batch_size: int, sws=None) -> dict:
    """The trackers of an evaluation (``track``): its logs' sums, before any mean; ``sws``:
    one sample-weight array per output, or None."""
    trackers: dict = {}
    for start in range(0, len(xs[0]), batch_size):
        rows = slice(start, start + batch_size)
        bx = [rows_of(a, rows) for a in xs]
        by = [rows_of(a, rows) for a in ys]
        bw = None if sws is None else [w[rows] for w in sws]
        with model._ops_step(), model._added_losses() as added:
            outputs, _ = model._forward(bx, training=False)
        total, per_output, _ = model._losses(by, outputs, bw)
        total += sum(added)
        if model.weight_terms is not None:
            total += model.weight_terms.penalty()
        track(trackers, batch_logs(model, total, per_output, by, outputs, len(bx[0]), bw))
    return trackers


def predict(model, x, batch_size: int | None = None):
    """Outputs in inference mode, batch by batch, as ``keras.Model.predict``.

    Args:
        model: a built ``Model``.
        x: as for ``fit``.
        batch_size: samples per batch (default 32).

    Returns:
        One array, or a list with one per output for several outputs.
    """
    batch_size = batch_size or 32
    xs = input_arrays(model, x)
    chunks: list[list] = [[] for _ in model.graph.outputs]
    for start in range(0, len(xs[0]), batch_size):
        with model._ops_step():
            outputs, _ = model._forward([rows_of(a, slice(start, start + batch_size))
                                         for a in xs], training=False)
        for chunk, out in zip(chunks, outputs):
            chunk.append(out)
    results = [xp.concatenate(c) for c in chunks]
    return results[0] if len(results) == 1 else results


# --- data plumbing -----------------------------------------------------------------------
def input_arrays(model, x) -> list:
    """The inputs as arrays of the input tensors' dtypes, in graph order.

    Args:
        model: the ``Model`` they feed.
        x: one array, a list by position, or a dict by input name.

    Returns:
        One array per input.

    Raises:
        ValueError: a wrong number of arrays, or names that are not the inputs'.
    """
    return [a if is_stream(a) else xp.asarray(a, dtype=t.dtype) for a, t in
            zip(_by_name(x, model.input_names, "inputs"), model.graph.inputs)]


def target_arrays(model, y) -> list:
    """The targets as arrays in output order: integer labels kept, the rest as floatx.

    Args:
        model: the ``Model`` whose outputs they are targets of.
        y: one array, a list by position, or a dict by output name (the layer's, as Keras,
            or the output tensor's).

    Returns:
        One array per output.

    Raises:
        ValueError: a wrong number of arrays, or names that are not the outputs'.
    """
    arrays = []
    if isinstance(y, dict):  # keys may also be the output tensors' names
        tensor_names = {t.name: n for t, n in zip(model.graph.outputs, model.output_names)}
        y = {tensor_names.get(k, k) if k not in model.output_names else k: v
             for k, v in y.items()}
    for a in _by_name(y, model.output_names, "targets"):
        if is_stream(a):
            arrays.append(a)
            continue
        a = xp.asarray(a)
        arrays.append(a if a.dtype.kind in "iub" else a.astype(floatx, copy=False))
    return arrays


def keras_return(logs: dict[str, float], return_dict: bool):
    """What Keras's methods return: the logs, or their one value, or their values."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _batches(arrays: list, order, batch_size: int):
    """Yield the batches of an epoch, each a list with one array per entry of ``arrays``:
    consecutive slices of each array, or, with ``order`` (a permutation), of the rows in that
    order.

    Shuffled rows are gathered for several batches at once (about ``_GATHER_BYTES``): one
    ``take`` per array per chunk instead of per step, and each batch is then a contiguous
    slice of the chunk. The chunk bounds the extra memory, whatever the data set's size.
    """
    n = len(arrays[0])
    if order is None:
        for start in range(0, n, batch_size):
            yield [rows_of(a, slice(start, start + batch_size)) for a in arrays]
        return
    row_bytes = sum(row_nbytes(a) for a in arrays) or 1
    per_chunk = max(1, _GATHER_BYTES // (row_bytes * batch_size)) * batch_size
    for chunk_start in range(0, n, per_chunk):
        idx = order[chunk_start:chunk_start + per_chunk]
        chunk = [rows_of(a, idx) for a in arrays]
        for start in range(0, len(idx), batch_size):
            yield [a[start:start + batch_size] for a in chunk]


def _by_name(data, names: list[str], what: str) -> list:
    """Normalise one array, a list by position, or a dict by name to a list in graph order."""
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        unknown = [k for k in data if k not in names]
        if missing or unknown:
            raise ValueError(f"{what}: expected keys {names}, missing {missing}, unknown {unknown}")
        return [data[n] for n in names]
    if isinstance(data, (list, tuple)):
        if len(data) != len(names):
            raise ValueError(f"{what}: expected {len(names)} arrays ({names}), got {len(data)}")
        return list(data)
    if len(names) != 1:
        raise ValueError(f"{what}: the model has {len(names)} ({names}); pass a list or a dict")
    return [data]
