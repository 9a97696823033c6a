"""Model: a graph of engine layers plus loss, metrics and optimizer, with Keras's methods.

The graph (``kconf.graph``) fixes who feeds whom; this module runs it: a forward pass in
topological order that keeps each node's ``backward`` closure, and a backward pass in reverse
order where gradients of a tensor used twice simply add.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Sequence

import numpy as np

from kconf.engine import lanes
from kconf.engine import losses as losses_mod
from kconf.engine import metrics as metrics_mod
from kconf.engine.backend import floatx, xp
from kconf.engine.layers.base import Layer
from kconf.engine.layers.input import InputLayer
from kconf.engine.optimizers import RowGrad
from kconf.errors import TrainingError
from kconf.graph.execute import run_graph
from kconf.graph.ir import Graph, build_shape
from kconf.train.callbacks import CallbackList, History


class Metric:
    """A named metric of one output: per-sample values averaged over an epoch.

    ``fn`` is a registered metric name (resolved from shapes on first use, as Keras does for
    'accuracy') or a callable ``fn(y_true, y_pred)`` (custom metrics).
    """

    def __init__(self, name: str, fn: str | Callable):
        self.name = name
        self.spec = fn
        self.fn: Callable | None = fn if callable(fn) else None

    def values(self, y_true, y_pred) -> tuple[float, float]:
        """(sum of values, count): per-sample values count each sample; a scalar counts once."""
        if self.fn is None:
            self.fn = metrics_mod.resolve(self.spec, y_true.shape, y_pred.shape)
        v = np.asarray(self.fn(y_true, y_pred))
        if v.ndim == 0:
            return float(v), 1.0
        if v.ndim > 1:
            v = v.reshape(v.shape[0], -1).mean(axis=1, dtype=np.float64)
        return float(np.add.reduce(v, dtype=np.float64)), float(v.shape[0])


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


class Model:
    """A compiled-or-not network over a ``Graph``.

    Args:
        graph: inputs, outputs and the nodes between them.
        name: the model's name (the config's ``name``).
        sequential: True for Sequential specs (``layers`` then omits the InputLayer, as Keras).
    """

    def __init__(self, graph: Graph, name: str = "model", sequential: bool = False):
        self.graph = graph
        self.name = name
        self.sequential = sequential
        self.optimizer = None
        self.loss_fns: list[Callable] = []
        self.loss_names: list[str] = []
        self.loss_weights: list[float] = []
        self.metrics: list[list[Metric]] = []
        self.stop_training = False
        self.terminate_on_nan = True  # Keras's TerminateOnNaN, on by default
        self.resumed = False  # set when a checkpoint was restored: callbacks keep their state
        self.train_rng = np.random.default_rng(0)
        self.built = False
        self._params: list = []  # trainable weights, each once (shared layers dedupe)
        self._grads: list = []  # their gradients, same order: arrays or RowGrad
        self._dense_grads: list = []  # the array gradients, zeroed by a fill
        self._row_grads: list[RowGrad] = []  # the row-sparse ones, zeroed by dropping parts
        self._uses_lanes: bool | None = None  # found on first use

    # --- structure ----------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers in Keras's order: a Sequential model's in order, without its InputLayer;
        a functional model's by depth from the outputs, deepest first (``Graph.layers``)."""
        if self.sequential:
            return [l for l in self.graph.layers if not isinstance(l, InputLayer)]
        return list(self.graph.layers)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.graph.inputs]

    @property
    def output_names(self) -> list[str]:
        """As Keras: the names of the layers computing the outputs (``aux_output_loss``); the
        output tensors' names where one layer computes several of them."""
        names = [t.node.layer.name for t in self.graph.outputs]
        return names if len(set(names)) == len(names) else [t.name for t in self.graph.outputs]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer with this name (or at this index of ``layers``)."""
        if index is not None:
            return self.layers[index]
        for layer in self.graph.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {[l.name for l in self.graph.layers]}")

    def count_params(self) -> int:
        return sum(l.count_params(build_shape(l)) for l in self.graph.layers)

    def build(self, rng: np.random.Generator, dtype=floatx) -> None:
        """Create every layer's weights, in call order, from ``rng``; collect once the
        trainable weights (each once) and their gradients, which every step hands the
        optimizer."""
        for layer in self.graph.call_order:
            layer.build(build_shape(layer), rng, dtype=dtype)
        self._params, self._grads, seen = [], [], set()
        row_grads: dict[int, RowGrad] = {}
        for layer in self.graph.call_order:
            grads = layer.grads
            for g in grads.values():  # frozen layers' too: their parts must not pile up
                if isinstance(g, RowGrad):
                    row_grads[id(g)] = g
            if not layer.trainable:
                continue
            for key, w in layer.weights.items():
                if id(w) not in seen:  # a nested model's layer may also appear directly
                    seen.add(id(w))
                    self._params.append(w)
                    self._grads.append(grads[key])
        self._dense_grads = self._pack()
        self._row_grads = list(row_grads.values())
        self.built = True

    def _pack(self) -> list:
        """Move the trainable weights with dense gradients into one flat buffer, back to back
        in optimizer order, and their gradients into another; the layers then hold views.

        A step then zeroes the gradients with one fill, and the optimizer, which joins
        parameters lying back to back (``Optimizer.apply``), updates them all with one
        short sequence of NumPy operations instead of one per weight: per-step overhead
        that dominates small models. Returns the gradient arrays ``_zero_grads`` fills.
        """
        dense = [i for i, g in enumerate(self._grads) if not isinstance(g, RowGrad)]
        dtypes = {self._params[i].dtype for i in dense} | {self._grads[i].dtype for i in dense}
        if len(dense) < 2 or len(dtypes) != 1:
            return [self._grads[i] for i in dense]
        dtype = dtypes.pop()
        total = sum(self._params[i].size for i in dense)
        flat_params, flat_grads = xp.empty(total, dtype), xp.zeros(total, dtype)
        moved: dict[int, tuple[Any, Any]] = {}  # id(old weight) -> (weight view, grad view)
        start = 0
        for i in dense:
            w = self._params[i]
            view = flat_params[start:start + w.size].reshape(w.shape)
            view[...] = w
            moved[id(w)] = (view, flat_grads[start:start + w.size].reshape(w.shape))
            self._params[i], self._grads[i] = moved[id(w)]
            start += w.size
        for layer in _weight_owners(self.graph.layers):
            for key, w in list(layer.weights.items()):
                if id(w) in moved:
                    layer.weights[key], layer.grads[key] = moved[id(w)]
        return [flat_grads]

    def _zero_grads(self) -> None:
        """Zero the gradients: a fill of each trainable array, and the parts of every
        ``RowGrad`` dropped (no pass over an embedding table)."""
        for g in self._dense_grads:
            if g.size >= _LANE_FILL and g.flags.c_contiguous:  # large: a part per lane
                flat = g.reshape(-1)

                def zero(lane, parts, flat=flat):
                    for part in parts:
                        flat[part].fill(0)

                lanes.run(zero, lanes.chunks(flat.size))
            else:
                g.fill(0)
        for g in self._row_grads:
            g.clear()

    def get_weights(self) -> list:
        """Copies of all weights in Keras order (``layers`` order, then each layer's own), so
        that a list from Keras's ``model.get_weights()`` loads with ``set_weights``. As in
        Keras, an array two layers reach (a nested model called and also wrapped) is listed
        once."""
        return [w.copy() for w in self._weight_arrays().values()]

    def set_weights(self, weights: Sequence) -> None:
        """Load weights given in ``get_weights()`` order (Keras's order), in place.

        Args:
            weights: one array per weight, each of the weight's shape.

        Raises:
            ValueError: a wrong number of arrays, or an array of the wrong shape (naming
                the weight).
        """
        weights = list(weights)
        arrays = self._weight_arrays()
        if len(weights) != len(arrays):
            raise ValueError(f"model {self.name!r} expects {len(arrays)} weight arrays, "
                             f"got {len(weights)}")
        pairs = []
        for (name, old), new in zip(arrays.items(), weights):
            new = xp.asarray(new)
            if new.shape != old.shape:
                raise ValueError(f"model {self.name!r}: weight {name!r} has shape {old.shape}, "
                                 f"got {new.shape}")
            pairs.append((old, new))
        for old, new in pairs:
            old[...] = new  # in place: optimizers and caches keep referring to the same array

    def named_weights(self) -> dict[str, Any]:
        """``{'dense/kernel': array, ...}`` — names by layer and weight, in Keras order (that
        of ``get_weights()``); what weight files and checkpoints store."""
        return {f"{l.name}/{k}": w for l in self.graph.layers for k, w in l.weights.items()}

    def _weight_arrays(self) -> dict[str, Any]:
        """``named_weights()`` with each array once, under its first name."""
        arrays: dict[str, Any] = {}
        seen: set[int] = set()
        for name, w in self.named_weights().items():
            if id(w) not in seen:
                seen.add(id(w))
                arrays[name] = w
        return arrays

    def save_keras(self, path) -> Any:
        """Save as Keras 3 does: a ``.keras`` archive with these weights (or, for a ``.json``
        path, only the model's JSON); ``keras.saving.load_model`` opens it. Needs h5py.

        Returns:
            The path written (see ``kconf.keras_io.save_keras``).
        """
        from kconf.keras_io import save_keras

        return save_keras(self, path)

    # --- compile ------------------------------------------------------------------------
    def compile(self, optimizer, loss, metrics=None, loss_weights=None) -> None:
        """Attach optimizer, loss(es) and metrics, Keras-style.

        Args:
            optimizer: an engine optimizer instance.
            loss: one loss name for every output, a list (one per output), or a dict by
                output name.
            metrics: a list for every output, or a dict output name -> list; entries are
                names or callables ``fn(y_true, y_pred)``.
            loss_weights: a list (one per output) or a dict by output name (default 1.0);
                the total loss is the weighted sum, each ``<output>_loss`` is unweighted.
        """
        names = self.output_names
        self.optimizer = optimizer
        self.loss_names = _per_output(loss, names, "loss", None)
        self.loss_fns = [losses_mod.get(name) for name in self.loss_names]
        self.loss_weights = [float(w) for w in _per_output(loss_weights, names, "loss_weights", 1.0)]
        per_output = _per_output(metrics, names, "metrics", [],
                                 broadcast=_is_flat_list)
        prefixes = [f"{name}_" if len(names) > 1 else "" for name in names]
        self.metrics = [[Metric(prefix + _metric_name(m), m) for m in (ms or [])]
                        for prefix, ms in zip(prefixes, per_output)]

    # --- running the graph --------------------------------------------------------------
    def _forward(self, xs: list, training: bool, rng=None):
        """Run the graph; returns (outputs, backward) where backward(douts) fills grads."""
        return run_graph(self.graph, xs, training, rng)

    @property
    def uses_lanes(self) -> bool:
        """Whether the graph has layers that run lanes (kconf.engine.lanes): its steps then
        run in a lanes session."""
        if self._uses_lanes is None:
            self._uses_lanes = any(getattr(layer, "uses_lanes", False)
                                   for layer in _weight_owners(self.graph.layers))
        return self._uses_lanes

    def _lanes(self):
        """A lanes session for graphs with layers that use lanes; for the others a context
        that does nothing (at no per-step cost)."""
        return lanes.session() if self.uses_lanes else _NO_SESSION

    def _losses(self, ys: list, outputs: list):
        """Total weighted loss, per-output unweighted losses, and d total / d outputs."""
        total = 0.0
        per_output, douts = [], []
        for fn, w, y, out in zip(self.loss_fns, self.loss_weights, ys, outputs):
            value, backward = fn(y, out)
            value = float(value)
            per_output.append(value)
            total += w * value
            douts.append(backward(w))
        return total, per_output, douts

    def _train_step(self, xs: list, ys: list) -> tuple[dict[str, tuple[float, float]], int]:
        """One optimizer step; returns ({log name: (sum, count)}, batch size).

        Gradients are zeroed first, so a step that fails leaves nothing behind for the next,
        and after a step ``layer.grads`` hold that step's gradients.
        """
        n = len(xs[0])
        # Overflow is reported once, as a non-finite loss, rather than as NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore"), self._lanes():
            self._zero_grads()
            outputs, backward = self._forward(xs, training=True, rng=self.train_rng)
            total, per_output, douts = self._losses(ys, outputs)
            if self.terminate_on_nan and not math.isfinite(total):
                raise TrainingError(f"the loss became {total} (not finite)")
            backward(douts)
            self.optimizer.apply(self._params, self._grads)
        return self._batch_logs(total, per_output, ys, outputs, n), n

    def _batch_logs(self, total, per_output, ys, outputs, n):
        logs = {"loss": (total * n, n)}
        if len(outputs) > 1:
            for name, value in zip(self.output_names, per_output):
                logs[f"{name}_loss"] = (value * n, n)
        for metrics, y, out in zip(self.metrics, ys, outputs):
            for m in metrics:
                logs[m.name] = m.values(y, out)
        return logs

    # --- Keras methods ------------------------------------------------------------------
    def train_on_batch(self, x, y, return_dict: bool = False):
        """One gradient step on one batch; returns the loss (and metrics) of that batch."""
        logs, _ = self._train_step(self._inputs(x), self._targets(y))
        return self._keras_return({k: s / c for k, (s, c) in logs.items()}, return_dict)

    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1,
            verbose: int = 0, callbacks=None, validation_split: float = 0.0,
            validation_data=None, shuffle: bool = True, initial_epoch: int = 0) -> History:
        """Train for ``epochs`` epochs, as ``keras.Model.fit``.

        Args:
            x, y: arrays, lists of arrays (one per input/output) or dicts by name.
            batch_size: samples per step (default 32).
            verbose: 0 = silent (the library never prints unless asked); 1 = rich progress.
            callbacks: ``kconf.train.callbacks.Callback`` instances.
            validation_split: fraction of the data, taken from the end before shuffling.
            validation_data: ``(x_val, y_val)``; takes precedence over validation_split.
            shuffle: reshuffle the training samples every epoch (with ``self.train_rng``).

        Returns:
            History with one value per epoch for each log name.

        Raises:
            TrainingError: the loss became NaN or infinite.
        """
        batch_size = batch_size or 32
        xs, ys = self._inputs(x), self._targets(y)
        if validation_data is None and validation_split:
            split = int(math.floor(len(xs[0]) * (1.0 - validation_split)))
            validation_data = ([a[split:] for a in xs], [a[split:] for a in ys])
            xs, ys = [a[:split] for a in xs], [a[:split] for a in ys]
        n = len(xs[0])
        steps = max(1, math.ceil(n / batch_size))
        history = History()
        callbacks = list(callbacks or [])
        if verbose:
            from kconf.report.progress import ProgressBar
            callbacks.append(ProgressBar())
        cbs = CallbackList([history, *callbacks], self,
                           {"epochs": epochs, "steps": steps, "samples": n,
                            "batch_size": batch_size, "initial_epoch": initial_epoch})
        self.stop_training = False
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            order = self.train_rng.permutation(n) if shuffle else None
            batches = _batches([*xs, *ys], order, batch_size)
            trackers: dict[str, Mean] = {}
            for step in range(steps):
                cbs.on_train_batch_begin(step)
                batch = next(batches)
                try:
                    batch_logs, _ = self._train_step(batch[:len(xs)], batch[len(xs):])
                except TrainingError as exc:
                    raise TrainingError(f"epoch {epoch + 1}, batch {step + 1}: {exc}") from None
                for key, (s, c) in batch_logs.items():
                    tracker = trackers.get(key)
                    if tracker is None:
                        tracker = trackers[key] = Mean()
                    tracker.add(s, c)
                cbs.on_train_batch_end(step, {k: t.result() for k, t in trackers.items()})
            logs = {k: t.result() for k, t in trackers.items()}
            if validation_data is not None:
                val = self.evaluate(*validation_data, batch_size=batch_size, return_dict=True)
                logs.update({f"val_{k}": v for k, v in val.items()})
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs=history.history)
        return history

    def evaluate(self, x=None, y=None, batch_size: int | None = None,
                 return_dict: bool = False):
        """Loss and metrics in inference mode, as ``keras.Model.evaluate``."""
        batch_size = batch_size or 32
        xs, ys = self._inputs(x), self._targets(y)
        trackers: dict[str, Mean] = {}
        for start in range(0, len(xs[0]), batch_size):
            bx = [a[start:start + batch_size] for a in xs]
            by = [a[start:start + batch_size] for a in ys]
            with self._lanes():
                outputs, _ = self._forward(bx, training=False)
            total, per_output, _ = self._losses(by, outputs)
            for key, (s, c) in self._batch_logs(total, per_output, by, outputs, len(bx[0])).items():
                trackers.setdefault(key, Mean()).add(s, c)
        return self._keras_return({k: t.result() for k, t in trackers.items()}, return_dict)

    def predict(self, x, batch_size: int | None = None):
        """Outputs in inference mode, batch by batch (one array, or a list for several outputs)."""
        batch_size = batch_size or 32
        xs = self._inputs(x)
        chunks: list[list] = [[] for _ in self.graph.outputs]
        for start in range(0, len(xs[0]), batch_size):
            with self._lanes():
                outputs, _ = self._forward([a[start:start + batch_size] for a in xs],
                                           training=False)
            for chunk, out in zip(chunks, outputs):
                chunk.append(out)
        results = [xp.concatenate(c) for c in chunks]
        return results[0] if len(results) == 1 else results

    def summary(self, print_fn=None) -> None:
        """Print the layer table (rich) — or pass each line to ``print_fn``."""
        from kconf.report.summary import render_text, summary_renderables
        text = render_text(summary_renderables(self))
        if print_fn is None:
            print(text)
        else:
            for line in text.splitlines():
                print_fn(line)

    # --- data plumbing -------------------------------------------------------------------
    def _inputs(self, x) -> list:
        return [xp.asarray(a, dtype=t.dtype) for a, t in
                zip(_by_name(x, self.input_names, "inputs"), self.graph.inputs)]

    def _targets(self, y) -> list:
        arrays = []
        if isinstance(y, dict):  # keys may also be the output tensors' names
            tensor_names = {t.name: n for t, n in zip(self.graph.outputs, self.output_names)}
            y = {tensor_names.get(k, k) if k not in self.output_names else k: v
                 for k, v in y.items()}
        for a in _by_name(y, self.output_names, "targets"):
            a = xp.asarray(a)
            arrays.append(a if a.dtype.kind in "iub" else a.astype(floatx, copy=False))
        return arrays

    def _keras_return(self, logs: dict[str, float], return_dict: bool):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values


# Batches are gathered this many bytes at a time (see ``_batches``).
_GATHER_BYTES = 4 << 20
_NO_SESSION = contextlib.nullcontext()
# Gradients of at least this many numbers are zeroed a part per lane (kconf.engine.lanes).
_LANE_FILL = 1 << 20


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
            yield [a[start:start + batch_size] for a in arrays]
        return
    row_bytes = sum(a[:1].nbytes for a in arrays) or 1
    per_chunk = max(1, _GATHER_BYTES // (row_bytes * batch_size)) * batch_size
    for chunk_start in range(0, n, per_chunk):
        idx = order[chunk_start:chunk_start + per_chunk]
        chunk = [xp.take(a, idx, axis=0) for a in arrays]
        for start in range(0, len(idx), batch_size):
            yield [a[start:start + batch_size] for a in chunk]


def _weight_owners(layers):
    """The layers whose ``weights`` dicts hold arrays, looking through nested models and
    TimeDistributed wrappers (their ``weights`` read through to the layers inside)."""
    from kconf.engine.layers.time_distributed import TimeDistributed
    from kconf.graph.model_layer import ModelLayer

    for layer in layers:
        if isinstance(layer, ModelLayer):
            yield from _weight_owners(layer.graph.layers)
        elif isinstance(layer, TimeDistributed):
            yield from _weight_owners([layer.layer])
        else:
            yield layer


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


def _metric_name(metric) -> str:
    return metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")


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
