"""Preprocessing state adapted to the training data before a run trains: what a Keras script
does with ``layer.adapt(x_train)`` before ``fit``.

Each ``Normalization`` layer without a given mean and variance is adapted on the inputs it
receives from the training split (its first call's), computed by the graph in inference
where it is not a model input. Layers are adapted upstream first (Keras's layer order), so a
Normalization after another sees the first one's adapted output. A run resumed from a
checkpoint is not adapted again: its state comes back with the other weights.
"""
from __future__ import annotations

from kconf.data.stream import is_stream, rows_of
from kconf.engine.backend import xp
from kconf.engine.layers.normalization import Normalization
from kconf.graph.execute import run_graph
from kconf.graph.ir import Graph, SymbolicTensor
from kconf.model import Model

#: Samples per inference batch when computing a layer's inputs.
BATCH = 1024


def adapt_preprocessing(model: Model, xs: list) -> list[str]:
    """Adapt the model's preprocessing layers that learn their state from data.

    Args:
        model: a built model.
        xs: the training inputs, one array per model input, in model order.

    Returns:
        The names of the layers adapted, in the order they were.
    """
    adapted = []
    for layer in model.graph.layers:
        if isinstance(layer, Normalization) and layer.mean is None:
            tensor = model.graph.nodes_of(layer)[0].inputs[0]
            if any(is_stream(x) for x in xs):  # data on disk: its moments batch by batch
                layer.adapt_batches(_batches_of(model.graph, tensor, xs))
            else:
                layer.adapt(_values_of(model.graph, tensor, xs))
            adapted.append(layer.name)
    return adapted


def _batches_of(graph: Graph, tensor: SymbolicTensor, xs: list):
    """The values ``tensor`` takes on the inputs ``xs``, a batch at a time (inference)."""
    index = next((i for i, t in enumerate(graph.inputs) if t is tensor), None)
    upstream = None if index is not None else Graph(graph.inputs, [tensor])
    for i in range(0, len(xs[0]), BATCH):
        if index is not None:
            yield rows_of(xs[index], slice(i, i + BATCH))
        else:
            batch = [rows_of(x, slice(i, i + BATCH)) for x in xs]
            yield run_graph(upstream, batch, training=False)[0][0]


def _values_of(graph: Graph, tensor: SymbolicTensor, xs: list):
    """The values ``tensor`` takes on the inputs ``xs`` (inference)."""
    for t, x in zip(graph.inputs, xs):
        if t is tensor:
            return x
    upstream = Graph(graph.inputs, [tensor])
    n = len(xs[0])
    parts = [run_graph(upstream, [x[i:i + BATCH] for x in xs], training=False)[0][0]
             for i in range(0, n, BATCH)]
    return xp.concatenate(parts)
