"""Config -> Graph. A Sequential spec becomes an InputLayer node followed by a chain of nodes;
a functional spec becomes one node per graph line. Named models become ``ModelLayer``s,
built once and shared wherever they are called or wrapped."""
from __future__ import annotations

import re

from kconf.config import locate_graph_part
from kconf.engine import masks
from kconf.engine.layers import LAYERS
from kconf.engine.layers.base import Layer
from kconf.engine.layers.bidirectional import Bidirectional
from kconf.engine.layers.input import InputLayer
from kconf.engine.layers.time_distributed import TimeDistributed
from kconf.engine.weight_options import attach as attach_weight_options
from kconf.errors import ConfigError, Problem, ShapeError
from kconf.graph.ir import Graph, call_layer
from kconf.graph.model_layer import ModelLayer
from kconf.shapes import format_shape


class LayerNamer:
    """Keras-style unique names: dense, dense_1, dense_2 ... for layers without a name."""

    def __init__(self):
        self.taken: set[str] = set()
        self.counts: dict[str, int] = {}

    def auto(self, class_name: str) -> str:
        base = snake_case(class_name)
        while True:
            n = self.counts.get(base, 0)
            self.counts[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def claim(self, name: str) -> bool:
        """Reserve a user-given name; False if it is already used."""
        if name in self.taken:
            return False
        self.taken.add(name)
        return True


def snake_case(class_name: str) -> str:
    """Keras's layer naming: 'MaxPooling2D' -> 'max_pooling2d', 'Conv2D' -> 'conv2d'."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def build_graph(cfg) -> Graph:
    """Build the layer graph of a validated config, inferring every shape.

    Raises:
        ConfigError: a missing input shape, a duplicate name, a layer given the wrong number
            of tensors, or a layer that cannot take the shape it is given — each located at
            its line (and, in graph lines, at the layer's name) in the YAML.
    """
    return _Builder(cfg).build(cfg.model, cfg.source, ("model",), cfg.named_models(), None)


class _Builder:
    def __init__(self, cfg):
        self.cfg = cfg
        self.model_layers: dict[tuple[str, str], ModelLayer] = {}

    def fail(self, message: str, path: tuple, pos) -> ConfigError:
        return ConfigError([Problem(message, path, pos)], self.cfg.source.file)

    def build(self, config, source, path, models, named) -> Graph:
        if config.sequential is not None:
            return self.sequential(config.sequential, source, (*path, "sequential"), models)
        return self.functional(config.functional, (*path, "functional"), models, named)

    def model_layer(self, named) -> ModelLayer:
        """The layer of a named model: built at its first use, then the same object."""
        key = (named.source.file, named.name)
        if key not in self.model_layers:
            graph = self.build(named.config, named.source, named.path, named.models, named)
            kind = "Sequential" if named.config.sequential is not None else "Functional"
            self.model_layers[key] = ModelLayer(graph, kind=kind, name=named.name)
        return self.model_layers[key]

    def make_layer(self, spec, name: str, namer: LayerNamer, models) -> Layer:
        """An engine layer from its spec; TimeDistributed builds (or looks up) its inner one."""
        if spec.class_name == "TimeDistributed":
            inner = spec.args.layer
            if isinstance(inner, str):
                wrapped = self.model_layer(models[inner])
            else:
                wrapped = self.make_layer(inner, namer.auto(inner.class_name), namer, models)
            return TimeDistributed(wrapped, name=name, trainable=spec.args.trainable)
        if spec.class_name == "Bidirectional":  # Keras names its layers forward_/backward_<name>
            inner, back = spec.args.layer, spec.args.backward_layer
            return Bidirectional(
                self.make_layer(inner, inner.args.name or namer.auto(inner.class_name), namer,
                                models),
                backward_layer=None if back is None else self.make_layer(
                    back, back.args.name or namer.auto(back.class_name), namer, models),
                name=name, trainable=spec.args.trainable, **spec.args.layer_kwargs())
        layer = LAYERS[spec.class_name](name=name, trainable=spec.args.trainable,
                                        **spec.args.layer_kwargs())
        attach_weight_options(layer, spec.args.weight_options())
        return layer

    # --- Sequential ---------------------------------------------------------------------
    def sequential(self, specs, source, path, models) -> Graph:
        locate = source.locate
        if not specs:
            raise self.fail("a sequential model needs at least one layer", path, locate(path))
        hint = specs[0].args.input_hint()
        if hint is None:
            p = (*path, 0, specs[0].class_name)
            raise self.fail("the first layer needs the input shape: give input_shape (e.g. "
                            "[20]), input_dim (Dense) or batch_input_shape", p, locate(p))
        namer = LayerNamer()
        problems: list[Problem] = []
        for i, spec in enumerate(specs):
            name = spec.args.name
            if name is not None and not namer.claim(name):
                p = (*path, i, spec.class_name, "name")
                problems.append(Problem(f"layer name {name!r} is used twice; names must be "
                                        "unique", p, locate(p)))
        if problems:
            raise ConfigError(problems, self.cfg.source.file)
        layers = [self.make_layer(spec, spec.args.name or namer.auto(spec.class_name), namer,
                                  models) for spec in specs]

        batch_size, shape = hint
        input_layer = InputLayer(shape=tuple(shape), batch_size=batch_size,
                                 dtype="int32" if specs[0].class_name == "Embedding" else "float32",
                                 name=namer.auto("InputLayer"))
        (tensor,) = call_layer(input_layer, [], [input_layer.name], path)
        first = tensor
        for i, (layer, spec) in enumerate(zip(layers, specs)):
            p = (*path, i, spec.class_name)
            later_hint = spec.args.input_hint() if i else None
            if later_hint is not None and tuple(later_hint[1]) != tuple(tensor.shape[1:]):
                raise self.fail(
                    f"input shape {list(later_hint[1])} given here does not match the output of "
                    f"the layer before, {format_shape(tensor.shape)}; only the first layer "
                    "needs one", p, locate(p))
            try:
                (tensor,) = call_layer(layer, [tensor], [layer.name], p)
            except ShapeError as exc:
                raise self.fail(str(exc), p, locate(p)) from None
        if tensor.mask is not None:  # Keras would mask the loss with it
            raise self.fail(str(masks.output_refusal(tensor.mask)), p, locate(p))
        return Graph([first], [tensor])

    # --- Functional ---------------------------------------------------------------------
    def functional(self, fn, path, models, named) -> Graph:
        namer = LayerNamer()
        for name in (*fn.inputs, *fn.layers):
            namer.claim(name)
        tensors = {}
        inputs = []
        for name, spec in fn.inputs.items():
            layer = InputLayer(shape=tuple(spec.shape), batch_size=spec.batch_size,
                               dtype=spec.dtype, name=name)
            (tensors[name],) = call_layer(layer, [], [name], (*path, "inputs", name))
            inputs.append(tensors[name])
        layers = {name: self.make_layer(spec, name, namer, models)
                  for name, spec in fn.layers.items()}
        for call in fn.graph:  # a layer given a list of tensors takes its inputs as a list
            if call.callee in layers and any(kw.tensors for kw in call.keywords):
                layers[call.callee].n_inputs = None
        for i, call in enumerate(fn.graph):
            p = (*path, "graph", i)
            if call.helper is not None:
                layer = self.make_layer(call.helper, namer.auto(call.helper.class_name), namer,
                                        models)
            elif call.callee in layers:
                layer = layers[call.callee]
            else:
                layer = self.model_layer(models[call.callee])
            args = [tensors[a] for a in call.args]
            options = {kw.key: kw.value for kw in call.keywords
                       if kw.tensor is None and not kw.tensors}
            if layer.call_signature is not None:  # named tensors in the layer's order
                by_keyword = {kw.key: tensors[kw.tensor] for kw in call.keywords
                              if kw.tensor is not None}
                args = layer.call_signature.arrange(args, by_keyword)
                args += [tensors[name] for kw in call.keywords for name in kw.tensors]
            try:
                outs = call_layer(layer, args, list(call.targets), p, options)
            except ShapeError as exc:
                pos = locate_graph_part(self.cfg, i, "callee", model=named)
                raise self.fail(f"{call.callee}: {exc}", p, pos) from None
            tensors.update(zip(call.targets, outs))
        source = self.cfg.source if named is None else named.source
        for j, name in enumerate(fn.outputs):
            if tensors[name].mask is not None:  # Keras would mask the loss with it
                p = (*path, "outputs", j)
                raise self.fail(f"{name}: {masks.output_refusal(tensors[name].mask)}", p,
                                source.locate(p))
        return Graph(inputs, [tensors[name] for name in fn.outputs])
