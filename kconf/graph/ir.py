"""The graph IR shared by Sequential and functional models: symbolic tensors and nodes.

A ``Node`` is one call of a layer on symbolic tensors (Keras's node concept): a layer called
twice has two nodes and one set of weights. A Sequential spec is a chain of nodes. A
``Graph`` owns the nodes between its inputs and outputs: it numbers each layer's calls in it
from 0 (``node_index``) and lists its layers in Keras's order (``layers``).
"""
from __future__ import annotations

import graphlib
import itertools
from dataclasses import dataclass, field

from kconf.engine.layers.base import Layer
from kconf.errors import ConfigPath, ShapeError
from kconf.graph.nodes import calls_of, record_call
from kconf.shapes import Shape, format_shape


@dataclass(eq=False)
class SymbolicTensor:
    """A tensor known by shape only (batch dim None unless fixed), output ``index`` of
    ``node``."""

    shape: Shape
    name: str
    node: "Node"
    index: int = 0
    dtype: str = "float32"
    #: None, or the description of the layer whose mask this tensor carries
    #: (``kconf.engine.masks``): at run time it has an (N, T) bool mask beside it
    mask: str | None = None


@dataclass(eq=False)
class Node:
    """One call of ``layer`` on ``inputs``. Its index among the layer's calls is the graph's
    business (``Graph.node_index``): the same layer may be called in several graphs."""

    layer: Layer
    inputs: list[SymbolicTensor]
    outputs: list[SymbolicTensor] = field(default_factory=list)
    path: ConfigPath = ()
    serial: int = field(default_factory=itertools.count().__next__)  # creation order
    #: the call's keyword options (``use_causal_mask=True``), handed to the layer's
    #: ``compute_output_shape`` and ``forward``; the tensors are ``inputs``, in the order of
    #: the layer's ``call_signature``
    options: dict = field(default_factory=dict)

    @property
    def input_shapes(self) -> list[Shape]:
        return [t.shape for t in self.inputs]

    @property
    def output_shapes(self) -> list[Shape]:
        return [t.shape for t in self.outputs]


def build_shape(layer: Layer):
    """The input shape a layer is built for: that of its first call, in whichever graph
    (one set of weights serves every call), or None for an InputLayer."""
    if layer.n_inputs == 0:
        return None
    calls = calls_of(layer)
    if not calls:
        raise ValueError(f"layer {layer.name!r} is not connected to any graph")
    node = calls[0]
    return node.inputs[0].shape if layer.n_inputs == 1 else node.input_shapes


def call_layer(layer: Layer, inputs: list[SymbolicTensor], names: list[str],
               path: ConfigPath = (), options: dict | None = None) -> list[SymbolicTensor]:
    """Apply ``layer`` symbolically: infer output shapes, make a node, return its outputs.

    ``options`` are the call's keyword options (``{"use_causal_mask": True}``) for a layer
    with a ``call_signature``; the node records them and every run of it passes them on.

    The node is recorded as the layer's latest call (``kconf.graph.nodes``); a ``Graph``
    made from tensors it leads to owns it.

    Raises:
        ShapeError: the layer cannot take these input shapes (a ``MaskError`` where it
            cannot take the mask an input carries).
    """
    kind = type(layer).__name__
    if layer.n_inputs == 1:
        if len(inputs) != 1:
            raise ShapeError(f"{kind} takes one tensor, got {len(inputs)}")
        shape_in = inputs[0].shape
    elif layer.n_inputs == 0:
        shape_in = None
    else:
        shape_in = [t.shape for t in inputs]
    options = dict(options or {})
    shape_out = layer.compute_output_shape(shape_in, **options)
    if layer.n_inputs != 0 and calls_of(layer):
        _check_shared(layer, shape_in)
    shapes = shape_out if isinstance(shape_out, list) else [shape_out]
    if len(names) != len(shapes):
        raise ShapeError(f"{kind} returns {len(shapes)} tensor(s) but {len(names)} name(s) "
                         f"are given for them")
    masks = layer.mask_origins([t.mask for t in inputs], **options)  # MaskError: refused
    if not isinstance(masks, list):
        masks = [masks] * len(shapes)
    node = Node(layer, list(inputs), [], path, options=options)
    dtype = getattr(layer, "dtype", "float32") if layer.n_inputs == 0 else "float32"
    node.outputs = [SymbolicTensor(tuple(s), name, node, i, dtype, m) for i, (s, name, m) in
                    enumerate(zip(shapes, names, masks))]
    record_call(node)
    return node.outputs


def _check_shared(layer: Layer, shape_in) -> None:
    """A layer called again must fit the weights its first call gave it."""
    first = build_shape(layer)
    for old, new in zip(layer.weight_specs(first), layer.weight_specs(shape_in)):
        if old.shape != new.shape:
            raise ShapeError(
                f"{type(layer).__name__} {layer.name!r} was first called on {_fmt(first)}, "
                f"which gave it a {old.name} of shape {old.shape}; it cannot also take "
                f"{_fmt(shape_in)}, which would need {new.shape}")


def _fmt(shape) -> str:
    if isinstance(shape, list):
        return ", ".join(format_shape(s) for s in shape)
    return format_shape(shape)


class Graph:
    """Inputs, outputs and the nodes between them, which this graph owns.

    Attributes:
        nodes: every node the outputs depend on (and every input's node), producers first,
            ties in creation order: the order a forward pass runs them.
        layers: each layer once, in Keras's order for a functional model (``keras_order``):
            what ``Model.layers``, ``get_weights()`` and the summary's rows follow.
        call_order: each layer once, in the order of its first node in ``nodes``. Weights
            are created and handed to the optimizer in this order (as they were before
            ``layers`` followed Keras), so a seed gives the weights it always gave, and the
            optimizer's slots, which checkpoints store by position, keep their positions.
    """

    def __init__(self, inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]):
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.nodes = _topological_nodes(self.outputs)
        reached = {id(n) for n in self.nodes}
        unused = [t.node for t in self.inputs if id(t.node) not in reached]
        self.nodes = unused + self.nodes
        self.call_order: list[Layer] = list({id(n.layer): n.layer for n in self.nodes}.values())
        self._calls: dict[int, list[Node]] = {}  # id(layer) -> its nodes here, oldest first
        for node in sorted(self.nodes, key=lambda n: n.serial):
            self._calls.setdefault(id(node.layer), []).append(node)
        self._index = {id(n): i for calls in self._calls.values() for i, n in enumerate(calls)}
        self.layers: list[Layer] = keras_order(self.inputs, self.outputs)

    def nodes_of(self, layer: Layer) -> list[Node]:
        """The calls of ``layer`` in this graph, in the order they were made (node 0 first)."""
        return list(self._calls.get(id(layer), ()))

    def node_index(self, node: Node) -> int:
        """Which call of its layer ``node`` is in this graph (0 for the first), as Keras's
        ``Connected to`` column and saved configs number them."""
        return self._index[id(node)]

    def ref(self, tensor: SymbolicTensor) -> str:
        """``layer[node][tensor]``, as Keras's ``Connected to`` column shows a tensor."""
        return f"{tensor.node.layer.name}[{self.node_index(tensor.node)}][{tensor.index}]"


def keras_order(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> list[Layer]:
    """The layers between ``inputs`` and ``outputs`` in the order of Keras 3's functional
    ``model.layers`` (``keras/src/ops/function.py`` ``map_graph``/``_build_map``).

    A depth-first walk from the outputs, in the order they are listed and through each node's
    inputs in order, numbers the layers by first visit and lists the nodes producers first.
    Going back through that list from the outputs, a node's depth is the largest of (its
    consumers' depths + 1) and the depth its layer already has (so a layer called several
    times takes the largest depth of its nodes, and passes it on to what feeds it); an output
    node nothing consumes has depth 0. Layers come deepest first, ties by first visit; an
    input no output depends on comes at depth 0, before the others there. A chain (a
    Sequential model) comes out in its own order.

    Args:
        inputs: the graph's input tensors.
        outputs: the graph's output tensors, in the order the model lists them.

    Returns:
        Each layer once.
    """
    first_visit: dict[int, int] = {}  # id(layer) -> traversal index
    finished: set[int] = set()
    post_order: list[Node] = []  # producers first

    for tensor in outputs:  # the walk, with a stack of (node, its inputs not yet visited)
        if id(tensor.node) in finished:
            continue
        first_visit.setdefault(id(tensor.node.layer), len(first_visit))
        stack = [(tensor.node, iter(tensor.node.inputs))]
        while stack:
            node, pending = stack[-1]
            for t in pending:
                if id(t.node) not in finished:
                    first_visit.setdefault(id(t.node.layer), len(first_visit))
                    stack.append((t.node, iter(t.node.inputs)))
                    break
            else:
                stack.pop()
                finished.add(id(node))
                post_order.append(node)
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    layers: dict[int, Layer] = {}
    for node in reversed(post_order):
        depth = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
        node_depth[id(node)] = depth
        layer_depth[id(node.layer)] = depth
        layers[id(node.layer)] = node.layer
        for tensor in node.inputs:
            parent = id(tensor.node)
            node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    for tensor in inputs:
        layer = tensor.node.layer
        if id(layer) not in layer_depth:
            layer_depth[id(layer)] = 0
            first_visit[id(layer)] = -1
            layers[id(layer)] = layer
    order = sorted(layer_depth, key=lambda key: (-layer_depth[key], first_visit[key]))
    return [layers[key] for key in order]


def _topological_nodes(outputs: list[SymbolicTensor]) -> list[Node]:
    """Every node the outputs depend on, producers first, ties kept in creation order."""
    seen: dict[int, Node] = {}
    stack = [t.node for t in outputs]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(t.node for t in node.inputs)
    sorter = graphlib.TopologicalSorter(
        {id(n): [id(t.node) for t in n.inputs] for n in seen.values()}
    )
    sorter.prepare()
    result = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda key: seen[key].serial)
        for key in ready:
            result.append(seen[key])
            sorter.done(key)
    return result


def node_flops(node) -> int:
    """Forward FLOPs of one sample through one node (one call of a layer), at its shapes."""
    layer = node.layer
    if layer.n_inputs == 0:
        return layer.flops(None)
    shapes = node.input_shapes
    return layer.flops(shapes[0] if layer.n_inputs == 1 else shapes)


def graph_flops(graph: Graph) -> int:
    """Forward FLOPs of one sample through a whole graph: the sum over its nodes, so a shared
    layer counts once per call (see ``Layer.flops`` for the convention)."""
    return sum(node_flops(node) for node in graph.nodes)
