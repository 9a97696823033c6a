"""The graph IR shared by Sequential and functional models: symbolic tensors and nodes.

A ``Node`` is one call of a layer on symbolic tensors (Keras's node concept): a layer called
twice has two nodes and one set of weights. A Sequential spec is a chain of nodes.
"""
from __future__ import annotations

import graphlib
import itertools
from dataclasses import dataclass, field

from kconf.engine.layers.base import Layer
from kconf.errors import ConfigPath, ShapeError
from kconf.shapes import Shape, format_shape


@dataclass(eq=False)
class SymbolicTensor:
    """A tensor known by shape only (batch dim None unless fixed), produced by ``node``."""

    shape: Shape
    name: str
    node: "Node"
    index: int = 0
    dtype: str = "float32"

    @property
    def keras_history(self) -> tuple[Layer, int, int]:
        """(layer, node index, tensor index), as Keras's ``Connected to`` column shows it."""
        return self.node.layer, self.node.index, self.index

    def ref(self) -> str:
        layer, node_index, tensor_index = self.keras_history
        return f"{layer.name}[{node_index}][{tensor_index}]"


@dataclass(eq=False)
class Node:
    """One call of ``layer`` on ``inputs``; ``index`` counts the layer's calls from 0."""

    layer: Layer
    index: int
    inputs: list[SymbolicTensor]
    outputs: list[SymbolicTensor] = field(default_factory=list)
    path: ConfigPath = ()
    serial: int = field(default_factory=itertools.count().__next__)  # creation order

    @property
    def input_shapes(self) -> list[Shape]:
        return [t.shape for t in self.inputs]

    @property
    def output_shapes(self) -> list[Shape]:
        return [t.shape for t in self.outputs]


def build_shape(layer: Layer):
    """The input shape a layer is built for: that of its first call (None for an InputLayer)."""
    if layer.n_inputs == 0:
        return None
    if not layer.inbound_nodes:
        raise ValueError(f"layer {layer.name!r} is not connected to any graph")
    node = layer.inbound_nodes[0]
    return node.inputs[0].shape if layer.n_inputs == 1 else node.input_shapes


def call_layer(layer: Layer, inputs: list[SymbolicTensor], names: list[str],
               path: ConfigPath = ()) -> list[SymbolicTensor]:
    """Apply ``layer`` symbolically: infer output shapes, add a node, return its outputs.

    Raises:
        ShapeError: the layer cannot take these input shapes.
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
    shape_out = layer.compute_output_shape(shape_in)
    if layer.inbound_nodes and layer.n_inputs != 0:
        _check_shared(layer, shape_in)
    shapes = shape_out if isinstance(shape_out, list) else [shape_out]
    if len(names) != len(shapes):
        raise ShapeError(f"{kind} returns {len(shapes)} tensor(s) but {len(names)} name(s) "
                         f"are given for them")
    node = Node(layer, len(layer.inbound_nodes), list(inputs), [], path)
    dtype = getattr(layer, "dtype", "float32") if layer.n_inputs == 0 else "float32"
    node.outputs = [SymbolicTensor(tuple(s), name, node, i, dtype) for i, (s, name) in
                    enumerate(zip(shapes, names))]
    layer.inbound_nodes.append(node)
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
    """Inputs, outputs and the nodes between them in an order where producers come first."""

    def __init__(self, inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]):
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.nodes = _topological_nodes(self.outputs)
        self.layers: list[Layer] = []
        for node in self.nodes:
            if node.layer not in self.layers:
                self.layers.append(node.layer)

    def nodes_of(self, layer: Layer) -> list[Node]:
        return [n for n in self.nodes if n.layer is layer]


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
