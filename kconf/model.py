"""Model: a graph of engine layers plus loss, metrics and optimizer, with Keras's methods.

The graph (``kconf.graph``) fixes who feeds whom; this module runs it: a forward pass in
topological order that keeps each node's ``backward`` closure, and a backward pass in reverse
order where gradients of a tensor used twice simply add. ``fit``, ``evaluate``, ``predict`` and
``train_on_batch`` are Keras's methods; the loop behind them is ``kconf.train.loop``, and
what ``compile`` attaches to each output (its loss, weight and ``Metric``s) comes from
``kconf.per_output``.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Sequence

import numpy as np

from kconf.engine.added_losses import collecting
from kconf.engine.backend import floatx, xp
from kconf.engine.layers.base import Layer
from kconf.engine.layers.input import InputLayer
from kconf.engine.ops import current_ops
from kconf.engine.optimizers import RowGrad
from kconf.engine.weight_options import WeightTerms
from kconf.graph.execute import adds_loss, forget_backward_flags, run_graph
from kconf.graph.ir import Graph, build_shape
from kconf.per_output import Metric, output_losses, output_metrics
from kconf.train import loop
from kconf.train.weighting import weighted_loss
from kconf.train.callbacks import History


#: What a pass without added losses collects them with: nothing (``Model._added_losses``).
_NO_ADDED_LOSSES = contextlib.nullcontext(())


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
        self.weighted_metrics: list[list[Metric]] = []  # take the sample weights
        self.stop_training = False
        self.terminate_on_nan = True  # Keras's TerminateOnNaN, on by default
        self.resumed = False  # set when a checkpoint was restored: callbacks keep their state
        self.train_rng = np.random.default_rng(0)
        #: A data-parallel run's rank (``kconf.distributed.DataParallel``); None otherwise.
        self.distributed = None
        self.built = False
        self._params: list = []  # trainable weights, each once (shared layers dedupe)
        self._grads: list = []  # their gradients, same order: arrays or RowGrad
        self._dense_grads: list = []  # the array gradients, zeroed by a fill
        self._row_grads: list[RowGrad] = []  # the row-sparse ones, zeroed by dropping parts
        self._uses_workers: bool | None = None  # found on first use
        self._adds_losses: bool | None = None  # likewise
        #: the trainable weights' regularizers and constraints; None where there are none
        self.weight_terms: WeightTerms | None = None
        self.ops = current_ops()  # the workers and BLAS control of its steps (kconf.engine.ops)

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

    def weight_entries(self) -> list[tuple[Layer, Any, bool]]:
        """Every weight of the model once, by shape alone (no arrays needed).

        Returns:
            ``(owner, spec, trainable)`` per weight in Keras's ``model.weights`` order: layer
            order, each layer's weights in its order (``Layer.weight_entries``). A weight held
            by several layers (a shared layer, a model called and also wrapped) appears once,
            trainable if any of its holders leaves it trainable.
        """
        return _entries(self.layers)

    def _optimizer_entries(self) -> list[tuple[Layer, Any, bool]]:
        """``weight_entries`` in call order (``Graph.call_order``): the order of the packed
        buffer and of the optimizer's slots, which checkpoints store by position, so that
        checkpoints written before functional models took Keras's order still resume."""
        return _entries(self.graph.call_order)

    @property
    def weights(self) -> list:
        """Every weight array once, in Keras's order (see ``weight_entries``)."""
        return [owner.weights[spec.name] for owner, spec, _ in self.weight_entries()]

    @property
    def trainable_weights(self) -> list:
        """The arrays the optimizer updates, in ``weights`` order."""
        return [owner.weights[spec.name] for owner, spec, t in self.weight_entries() if t]

    @property
    def non_trainable_weights(self) -> list:
        """State and frozen weights, in ``weights`` order (Keras's 'Non-trainable params')."""
        return [owner.weights[spec.name] for owner, spec, t in self.weight_entries() if not t]

    def param_counts(self) -> tuple[int, int]:
        """``(trainable, non-trainable)`` numbers of parameters, each weight counted once; by
        shape alone, so an unbuilt model (``kconf summary``) has them too."""
        counts = [0, 0]
        for _, spec, trainable in self.weight_entries():
            counts[0 if trainable else 1] += math.prod(spec.shape)
        return counts[0], counts[1]

    def count_params(self) -> int:
        """Every parameter once, trainable or not (Keras's ``Total params``)."""
        return sum(self.param_counts())

    def build(self, rng: np.random.Generator, dtype=floatx) -> None:
        """Create every layer's weights from ``rng``, in call order (the order of the layers'
        first calls, so a seed gives the weights it always gave); pack them (``_pack``) and
        collect the trainable ones (``_collect_trainable``)."""
        for layer in self.graph.call_order:
            layer.build(build_shape(layer), rng, dtype=dtype)
        self._pack()
        self.built = True
        self._collect_trainable()

    def _collect_trainable(self) -> None:
        """Collect the trainable weights (each once) and their gradients, which every step
        hands the optimizer; state and frozen weights stay out. Runs at ``build`` and again
        at ``compile``, which is where freezing (``layer.trainable = False``) takes effect."""
        trained = [(owner, spec.name) for owner, spec, trainable in self._optimizer_entries()
                   if trainable]
        self._params = [owner.weights[key] for owner, key in trained]
        self._grads = [owner.grads[key] for owner, key in trained]
        terms = WeightTerms([(owner, key, w, g) for (owner, key), w, g
                             in zip(trained, self._params, self._grads)])
        self.weight_terms = terms if terms else None
        forget_backward_flags(self.graph)  # which nodes backward must run may have changed

    def _pack(self) -> None:
        """Move the weights with dense gradients into one flat buffer, back to back in the
        optimizer's order (``_optimizer_entries``), and their gradients into another; the
        layers then hold views.

        A step then zeroes the gradients with one fill, and the optimizer, which joins
        parameters lying back to back (``Optimizer.apply``), updates them all with one
        short sequence of NumPy operations instead of one per weight: per-step overhead
        that dominates small models. Every weight with a gradient is packed, frozen ones
        too: freezing changes which of them the optimizer gets (a frozen run between two
        trained ones just splits the optimizer's run), never where the arrays are, and a
        frozen layer that backward still runs (for the layers before it) has its gradients
        zeroed with the others. State has no gradient and stays where ``build`` put it.
        Sets ``_dense_grads`` (the arrays ``_zero_grads`` fills) and ``_row_grads``.
        """
        held = [(owner, spec.name) for owner, spec, _ in self._optimizer_entries()
                if spec.name in owner.grads]
        self._row_grads = [owner.grads[key] for owner, key in held
                           if isinstance(owner.grads[key], RowGrad)]
        dense = [(owner, key) for owner, key in held
                 if not isinstance(owner.grads[key], RowGrad)]
        dtypes = {o.weights[k].dtype for o, k in dense} | {o.grads[k].dtype for o, k in dense}
        if len(dense) < 2 or len(dtypes) != 1:
            self._dense_grads = [owner.grads[key] for owner, key in dense]
            return
        dtype = dtypes.pop()
        total = sum(owner.weights[key].size for owner, key in dense)
        flat_params, flat_grads = xp.empty(total, dtype), xp.zeros(total, dtype)
        start = 0
        for owner, key in dense:
            w = owner.weights[key]
            view = flat_params[start:start + w.size].reshape(w.shape)
            view[...] = w
            owner.weights[key] = view
            owner.grads[key] = flat_grads[start:start + w.size].reshape(w.shape)
            start += w.size
        self._dense_grads = [flat_grads]

    def _zero_grads(self) -> None:
        """Zero the gradients: a fill of each trainable array, and the parts of every
        ``RowGrad`` dropped (no pass over an embedding table); a large array is zeroed a
        part per worker (``Ops.zero``)."""
        for g in self._dense_grads:
            self.ops.zero(g)
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

    def trainable_names(self) -> list[str]:
        """The ``named_weights`` names of the weights the optimizer updates, in its order
        (what a checkpoint records beside the optimizer's slots, so that it is resumed with
        the same layers frozen)."""
        names: dict[int, str] = {}
        for name, w in self.named_weights().items():
            names.setdefault(id(w), name)
        return [names[id(w)] for w in self._params]

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
        from kconf.keras_io.export import save_keras

        return save_keras(self, path)

    # --- compile ------------------------------------------------------------------------
    def compile(self, optimizer, loss, metrics=None, loss_weights=None,
                weighted_metrics=None) -> None:
        """Attach optimizer, loss(es) and metrics, Keras-style.

        Args:
            optimizer: an engine optimizer instance.
            loss: one loss for every output, a list (one per output), or a dict by output
                name; a loss is a name (``"huber"``), a ``{Class: args}`` mapping
                (``{"Huber": {"delta": 0.5}}``) or a validated config spec of one.
            metrics: a list for every output, or a dict output name -> list; entries are
                names, ``{Class: args}`` mappings (``{"AUC": {"curve": "PR"}}``),
                ``KerasMetric`` objects or callables ``fn(y_true, y_pred)``.
            loss_weights: a list (one per output) or a dict by output name (default 1.0);
                the total loss is the weighted sum, each ``<output>_loss`` is unweighted.
            weighted_metrics: as ``metrics``; these take the sample weights of ``fit`` and
                ``evaluate`` (``kconf.train.weighting``), and are named ``weighted_<name>``
                where ``metrics`` has the same name for the output.
        """
        names = self.output_names
        if self.built:  # layers frozen (or unfrozen) since build take effect here
            self._collect_trainable()
        self.optimizer = optimizer
        self.loss_names, self.loss_fns, self.loss_weights = output_losses(loss, loss_weights,
                                                                          names)
        self.metrics, self.weighted_metrics = output_metrics(metrics, weighted_metrics, names)

    # --- running the graph --------------------------------------------------------------
    def _forward(self, xs: list, training: bool, rng=None):
        """Run the graph; returns (outputs, backward) where backward(douts) fills grads."""
        return run_graph(self.graph, xs, training, rng)

    @property
    def uses_workers(self) -> bool:
        """Whether the graph has layers that run on the ops' workers (kconf.engine.ops): its
        steps then hold BLAS single-threaded and share large products out to the workers."""
        if self._uses_workers is None:
            self._uses_workers = any(getattr(layer, "uses_workers", False)
                                     for layer in _weight_owners(self.graph.layers))
        return self._uses_workers

    @property
    def adds_losses(self) -> bool:
        """Whether a layer of the graph (or inside a nested model) adds a loss
        (``kconf.engine.added_losses``): only then do its passes collect them."""
        if self._adds_losses is None:
            self._adds_losses = any(adds_loss(layer) for layer in self.graph.layers)
        return self._adds_losses

    def _added_losses(self):
        """The context of a pass whose added losses count: ``collecting()`` where a layer adds
        one; elsewhere an empty tuple, at no per-step cost."""
        return collecting() if self.adds_losses else _NO_ADDED_LOSSES

    def _ops_step(self):
        """The context of one step (or batch of inference): ``self.ops`` is the current ops
        of the layers and optimizer, a parallel step where the graph ``uses_workers``."""
        return self.ops.step(parallel=self.uses_workers)

    def _losses(self, ys: list, outputs: list, sws: list | None = None):
        """Total weighted loss, per-output unweighted losses, and d total / d outputs;
        ``sws``: one sample-weight array per output, or None (``kconf.train.weighting``)."""
        total = 0.0
        per_output, douts = [], []
        for i, (fn, w, y, out) in enumerate(zip(self.loss_fns, self.loss_weights, ys, outputs)):
            if sws is None:
                value, backward = fn(y, out)
            else:
                value, backward = weighted_loss(fn, y, out, sws[i])
            value = float(value)
            per_output.append(value)
            total += w * value
            douts.append(backward(w))
        return total, per_output, douts

    # --- Keras methods: the loop itself is kconf.train.loop ------------------------------
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None,
                       return_dict: bool = False):
        """One gradient step on one batch; returns the loss (and metrics) of that batch."""
        return loop.train_on_batch(self, x, y, return_dict, sample_weight=sample_weight,
                                   class_weight=class_weight)

    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1,
            verbose: int = 0, callbacks=None, validation_split: float = 0.0,
            validation_data=None, shuffle: bool = True, initial_epoch: int = 0,
            sample_weight=None, class_weight=None) -> History:
        """Train for ``epochs`` epochs, as ``keras.Model.fit``.

        Args:
            x, y: arrays, lists of arrays (one per input/output) or dicts by name.
            batch_size: samples per step (default 32).
            verbose: 0 = silent (the library never prints unless asked); 1 = rich progress.
            callbacks: ``kconf.train.callbacks.Callback`` instances.
            validation_split: fraction of the data, taken from the end before shuffling.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``;
                takes precedence over validation_split.
            shuffle: reshuffle the training samples every epoch (with ``self.train_rng``).
            sample_weight: one weight per training sample (every output's loss and the
                weighted metrics), or None.
            class_weight: class -> weight, or output name -> {class: weight}; not with
                ``sample_weight`` (``kconf.train.weighting``).

        Returns:
            History with one value per epoch for each log name.

        Raises:
            TrainingError: the loss became NaN or infinite.
        """
        return loop.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                        callbacks=callbacks, validation_split=validation_split,
                        validation_data=validation_data, shuffle=shuffle,
                        initial_epoch=initial_epoch, sample_weight=sample_weight,
                        class_weight=class_weight)

    def evaluate(self, x=None, y=None, batch_size: int | None = None,
                 return_dict: bool = False, sample_weight=None):
        """Loss and metrics in inference mode, as ``keras.Model.evaluate``."""
        return loop.evaluate(self, x, y, batch_size=batch_size, return_dict=return_dict,
                             sample_weight=sample_weight)

    def predict(self, x, batch_size: int | None = None):
        """Outputs in inference mode, batch by batch (one array, or a list for several outputs)."""
        return loop.predict(self, x, batch_size=batch_size)

    def summary(self, print_fn=None) -> None:
        """Print the layer table (rich) — or pass each line to ``print_fn``."""
        from kconf.report.summary import render_text, summary_renderables
        text = render_text(summary_renderables(self))
        if print_fn is None:
            print(text)
        else:
            for line in text.splitlines():
                print_fn(line)





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


def _entries(layers) -> list[tuple[Layer, Any, bool]]:
    """``(owner, spec, trainable)`` of every weight of ``layers``, in their order, each weight
    once (trainable if any of its holders leaves it trainable)."""
    found: dict[tuple[int, str], list] = {}
    for layer in layers:
        for owner, spec, trainable in layer.weight_entries(build_shape(layer)):
            entry = found.setdefault((id(owner), spec.name), [owner, spec, False])
            entry[2] = entry[2] or trainable
    return [(owner, spec, trainable) for owner, spec, trainable in found.values()]
