"""Config -> Graph. A Sequential spec becomes an InputLayer node followed by a chain of nodes."""
from __future__ import annotations

import re

from kconf.engine.layers import LAYERS
from kconf.engine.layers.base import Layer, format_shape
from kconf.engine.layers.input import InputLayer
from kconf.errors import ConfigError, Problem, ShapeError
from kconf.graph.ir import Graph, call_layer


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
        ConfigError: a missing input shape, a duplicate name, or a layer that cannot take the
            shape it is given — located at the layer's line in the YAML.
    """
    return _build_sequential(cfg, cfg.model.sequential, ("model", "sequential"))


def _build_sequential(cfg, specs, path) -> Graph:
    locate = cfg.source.locate
    if not specs:
        raise ConfigError([Problem("a sequential model needs at least one layer", path,
                                   locate(path))], cfg.source.file)
    hint = specs[0].args.input_hint()
    if hint is None:
        p = (*path, 0, specs[0].class_name)
        raise ConfigError([Problem(
            "the first layer needs the input shape: give input_shape (e.g. [20]), "
            "input_dim (Dense) or batch_input_shape", p, locate(p))], cfg.source.file)
    namer = LayerNamer()
    problems: list[Problem] = []
    layers: list[Layer] = []
    for i, spec in enumerate(specs):
        p = (*path, i, spec.class_name)
        name = spec.args.name  # None: named below, once every user-given name is claimed
        if name is not None and not namer.claim(name):
            problems.append(Problem(f"layer name {name!r} is used twice; names must be unique",
                                    (*p, "name"), locate((*p, "name"))))
        layer = LAYERS[spec.class_name](name=name, trainable=spec.args.trainable,
                                        **spec.args.layer_kwargs())
        layers.append(layer)
    for layer, spec in zip(layers, specs):
        if not layer.name:
            layer.name = namer.auto(spec.class_name)
    if problems:
        raise ConfigError(problems, cfg.source.file)

    batch_size, shape = hint
    input_layer = InputLayer(shape=tuple(shape), batch_size=batch_size,
                             name=namer.auto("InputLayer"))
    (tensor,) = call_layer(input_layer, [], [input_layer.name], path)
    for i, (layer, spec) in enumerate(zip(layers, specs)):
        p = (*path, i, spec.class_name)
        later_hint = spec.args.input_hint() if i else None
        if later_hint is not None and tuple(later_hint[1]) != tuple(tensor.shape[1:]):
            problems.append(Problem(
                f"input shape {list(later_hint[1])} given here does not match the output of the "
                f"layer before, {format_shape(tensor.shape)}; only the first layer needs one",
                p, locate(p)))
            break
        try:
            (tensor,) = call_layer(layer, [tensor], [layer.name], p)
        except ShapeError as exc:
            problems.append(Problem(str(exc), p, locate(p)))
            break
    if problems:
        raise ConfigError(problems, cfg.source.file)
    return Graph([input_layer.inbound_nodes[0].outputs[0]], [tensor])

