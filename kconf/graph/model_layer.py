"""A model called like a layer: its graph runs inside one node of the outer graph.

The nested model's layers keep their weights; this layer only reads through to them, so the
model called here, called elsewhere, or wrapped in TimeDistributed shares one set of weights.
"""
from __future__ import annotations

from kconf.engine import masks
from kconf.engine.backend import floatx
from kconf.engine.layers.base import Layer
from kconf.errors import ShapeError
from kconf.graph.execute import run_graph
from kconf.graph.ir import Graph, build_shape, graph_flops
from kconf.shapes import format_shape


class ModelLayer(Layer):
    """Wraps a ``Graph``; ``kind`` ('Sequential' or 'Functional') is what summaries show."""

    input_grads_optional = True

    def __init__(self, graph: Graph, kind: str = "Functional", **kwargs):
        self.graph = graph
        self.kind = kind
        super().__init__(**kwargs)
        self.n_inputs = 1 if len(graph.inputs) == 1 else None
        if not self.trainable:  # a frozen model freezes its layers (Keras's setter)
            self.trainable = False

    # Weights and gradients live in the nested layers; these views keep Keras order.
    @property
    def weights(self):
        return {f"{l.name}/{k}": w for l in self.graph.layers for k, w in l.weights.items()}

    @weights.setter
    def weights(self, value):
        if value:
            raise AttributeError("a nested model's weights belong to its layers")

    @property
    def grads(self):
        return {f"{l.name}/{k}": g for l in self.graph.layers for k, g in l.grads.items()}

    @grads.setter
    def grads(self, value):
        if value:
            raise AttributeError("a nested model's gradients belong to its layers")

    def mask_origins(self, origins, **options):
        """A masked input is refused: masks do not cross into a nested model in kconf (Keras
        hands them to its input layers' consumers); its outputs carry none (``construct``
        refuses a nested model whose output would)."""
        origin = next((o for o in origins if o is not None), None)
        if origin is not None:
            raise masks.MaskError(
                f"model {self.name!r} cannot take the mask made by {origin}: kconf does not "
                "carry masks into a nested model; consume the mask before it, or make the mask "
                "inside the model")
        return None

    def compute_output_shape(self, input_shape):
        shapes = [input_shape] if self.n_inputs == 1 else list(input_shape)
        if len(shapes) != len(self.graph.inputs):
            raise ShapeError(f"model {self.name!r} takes {len(self.graph.inputs)} inputs, "
                             f"got {len(shapes)}")
        batch = shapes[0][0] if shapes and shapes[0] else None
        for got, t in zip(shapes, self.graph.inputs):
            want = t.shape
            if len(got) != len(want) or any(
                    w is not None and g is not None and w != g for g, w in zip(got[1:], want[1:])):
                raise ShapeError(f"model {self.name!r} takes input of shape "
                                 f"{format_shape(want)}, got {format_shape(got)}")
        outs = [(batch, *t.shape[1:]) for t in self.graph.outputs]
        return outs[0] if len(outs) == 1 else outs

    @property
    def sublayers(self):
        return list(self.graph.layers)

    def weight_entries(self, input_shape=None):
        """The nested layers' weights, each at its own build shape; none trainable while
        this model is frozen."""
        return [(owner, spec, trainable and self.trainable) for layer in self.graph.layers
                for owner, spec, trainable in layer.weight_entries(build_shape(layer))]

    def weight_specs(self, input_shape):
        return [spec for l in self.graph.layers
                for spec in l.weight_specs(build_shape(l))]

    def count_params(self, input_shape=None) -> int:
        return sum(l.count_params(build_shape(l)) for l in self.graph.layers)

    def flops(self, input_shape=None) -> int:
        """Forward FLOPs of one sample through the nested graph: the sum over its nodes (a
        layer called twice in it counts twice), at the shapes the nested graph was built on."""
        return graph_flops(self.graph)

    def build(self, input_shape, rng, dtype=floatx) -> None:
        """Build the nested layers that are not built yet (a shared model keeps its weights)."""
        for layer in self.graph.call_order:
            if not layer.built:
                layer.build(build_shape(layer), rng, dtype=dtype)
        self.built = True

    def zero_grads(self) -> None:
        for layer in self.graph.layers:
            layer.zero_grads()

    def forward(self, x, training=False, rng=None):
        xs = [x] if self.n_inputs == 1 else list(x)
        outputs, backward = run_graph(self.graph, xs, training, rng, need_input_grads=True)

        def model_backward(dy, need_dx=True):
            dxs = backward([dy] if len(outputs) == 1 else dy, need_input_grads=need_dx)
            if not need_dx:
                return None
            return dxs[0] if self.n_inputs == 1 else dxs

        return (outputs[0] if len(outputs) == 1 else outputs), model_backward

