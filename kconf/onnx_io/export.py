"""A kconf model as an ONNX model: walk the layer graph, convert each call, check, write.

The exported graph computes what ``Model.predict`` computes (inference mode: dropout, noise
and augmentation are the identity, BatchNormalization uses its moving statistics), with a
dynamic batch axis and the inputs and outputs named as in the config. Extra leading layers
per input (``preprocessing``: Rescaling/Normalization, e.g. a run's fitted preprocessing)
go in front of the model's own. Every layer that cannot be expressed is reported at once.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from kconf.engine.layers.base import Layer
from kconf.engine.layers.time_distributed import TimeDistributed
from kconf.errors import ConfigError, Problem
from kconf.files import write_atomic
from kconf.graph.model_layer import ModelLayer
from kconf.onnx_io.builder import Builder, Call, Result, Unsupported
from kconf.onnx_io.table import CONVERTERS, MASK_AWARE

#: the opset written unless ``--opset`` says otherwise: onnxruntime 1.18 and later run it
#: (the 1.32 the tests use runs every opset up to onnx 1.23's 28)
DEFAULT_OPSET = 21
#: the oldest opset the converters' operators have their current form in (Squeeze/Unsqueeze/
#: ReduceSum with axes as inputs: 13; ReduceMax/ReduceMean with axes inputs: 18)
MIN_OPSET = 18

_ONNX_TYPES = {"float32": 1, "int32": 6, "int64": 7, "bool": 9, "float64": 11}


def require_onnx():
    """The ``onnx`` module, or a ConfigError naming the extra to install."""
    try:
        import onnx
    except ImportError:
        raise ConfigError([Problem("ONNX export needs the 'onnx' package: "
                                   "pip install 'kconf[onnx]'")]) from None
    return onnx


class _Walk:
    """Converts one model; collects every layer it cannot express."""

    def __init__(self, b: Builder, source=None):
        self.b = b
        self.problems: list[Problem] = []
        self._reported: set[int] = set()
        self.source = source

    def refuse(self, layer: Layer, path, reason: str) -> None:
        if id(layer) in self._reported:
            return
        self._reported.add(id(layer))
        pos = self.source.locate(path) if self.source is not None and path else None
        self.problems.append(Problem(f"layer {layer.name!r} ({type(layer).__name__}) cannot be "
                                     f"exported to ONNX: {reason}", tuple(path or ()), pos))

    def graph(self, graph, values: list[str], masks: list[str | None]):
        """Run a graph's nodes on ONNX values; return its outputs' values and masks."""
        env = {id(t): v for t, v in zip(graph.inputs, values)}
        menv = {id(t): m for t, m in zip(graph.inputs, masks)}
        for node in graph.nodes:
            if not node.inputs and id(node.outputs[0]) in env:
                continue  # an input layer
            call = Call(node.layer, [env[id(t)] for t in node.inputs],
                        [t.shape for t in node.inputs], [t.shape for t in node.outputs],
                        [menv.get(id(t)) for t in node.inputs], dict(node.options))
            outs, out_masks = self.call(call, node.path, [t.mask for t in node.outputs])
            for t, v, m in zip(node.outputs, outs, out_masks):
                env[id(t)], menv[id(t)] = v, m
        return ([env[id(t)] for t in graph.outputs], [menv.get(id(t)) for t in graph.outputs])

    def call(self, call: Call, path, carries: Sequence[Any]):
        """One layer call: its output values and masks (placeholders where it is refused)."""
        b = self.b
        b.prefix = f"{call.layer.name}/"
        try:
            result = self.convert(call)
        except Unsupported as exc:
            self.refuse(call.layer, path, str(exc))
            return [b.fresh("unexported") for _ in call.out_shapes], [None] * len(call.out_shapes)
        finally:
            b.prefix = ""
        masks = result.masks or [None] * len(result.outputs)
        first = next((m for m in call.masks if m is not None), None)
        masks = [m if m is not None or not carry else first for m, carry in zip(masks, carries)]
        return result.outputs, masks

    def convert(self, call: Call) -> Result:
        """A layer call's ONNX nodes; ``Unsupported`` where it cannot be expressed (a nested
        model's layers are reported by themselves)."""
        layer = call.layer
        kind = type(layer).__name__
        if isinstance(layer, ModelLayer):
            return Result(*self.graph(layer.graph, call.inputs, call.masks))
        if isinstance(layer, TimeDistributed):
            return Result([self.time_distributed(call)])
        converter = CONVERTERS.get(kind)
        if converter is None:
            raise Unsupported("no ONNX converter for this layer class")
        if layer.takes_mask and any(call.masks) and kind not in MASK_AWARE:
            raise Unsupported("it uses its input's mask, which this exporter does not carry "
                              "into this layer")
        result = converter(self.b, call)
        if not isinstance(result, Result):
            result = Result(result if isinstance(result, list) else [result])
        return result

    def time_distributed(self, call: Call) -> str:
        """The inner layer on (N·T, ...) samples, reshaped back to (N, T, ...)."""
        b, shape, out = self.b, call.shape, call.out_shapes[0]
        flat = b.reshape(call.x, (-1, *shape[2:]))
        inner = Call(call.layer.layer, [flat], [(None, *shape[2:])], [(None, *out[2:])])
        y = self.convert(inner).outputs[0]
        if shape[1] is not None:
            return b.reshape(y, (None, shape[1], *out[2:]))
        size = b.op("Concat", [b.op("Shape", [call.x], start=0, end=2),
                               b.op("Shape", [y], start=1)], axis=0)
        return b.op("Reshape", [y, size])


#: The layers a run's saved preprocessing is written as (``kconf.train.preprocessing``).
PREPROCESSING_CLASSES = ("Rescaling", "Normalization", "Reshape")


def preprocessing_layers(specs) -> list[Layer]:
    """Engine layers from specs: engine layers, or ``{ClassName: {args}}`` dicts as a config
    writes them (Rescaling, Normalization with its statistics given, Reshape: the weightless
    layers of a run's saved preprocessing), their arguments checked as a config's.
    """
    from kconf.engine.layers import REGISTRY

    layers = []
    for spec in specs:
        if isinstance(spec, Layer):
            layers.append(spec)
            continue
        ((cls, args),) = spec.items()
        if cls not in PREPROCESSING_CLASSES:
            raise ValueError(f"preprocessing layers are {', '.join(PREPROCESSING_CLASSES)}, "
                             f"got {cls}")
        kwargs = REGISTRY[cls].args.model_validate(dict(args or {})).layer_kwargs()
        layer = REGISTRY[cls].layer(**kwargs)
        if cls == "Normalization" and layer.mean is None:
            raise ValueError("a preprocessing Normalization needs its mean and variance")
        layers.append(layer)
    return layers


def onnx_model(model, opset: int = DEFAULT_OPSET,
               preprocessing: Mapping[str, Sequence[Any]] | None = None, source=None,
               raw_shapes: Mapping[str, Sequence[int]] | None = None):
    """The ONNX ``ModelProto`` of a built kconf model.

    Args:
        model: a built kconf ``Model`` (its current weights are written).
        opset: the ONNX opset (``MIN_OPSET`` or newer).
        preprocessing: input name -> layers applied first (engine layers or
            ``{Rescaling: {...}}`` / ``{Normalization: {...}}`` / ``{Reshape: {...}}`` specs).
        source: the config's ``source`` (``LoadedConfig.source``), to place the problems
            in its file.
        raw_shapes: input name -> the sample shape the ONNX input takes, when the
            preprocessing reshapes (default: the model input's).

    Raises:
        ConfigError: the opset is out of range, or layers cannot be expressed (all listed).
    """
    onnx = require_onnx()
    from onnx import helper

    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ConfigError([Problem(f"--opset: must be between {MIN_OPSET} and {newest} (the "
                                   f"installed onnx package's newest), got {opset}")])
    graph = model.graph
    b = Builder(opset)
    walk = _Walk(b, source)
    inputs, values = [], []
    names = [t.name for t in graph.inputs]
    unknown = sorted(set(preprocessing or {}) - set(names))
    if unknown:
        raise ValueError(f"preprocessing for {', '.join(unknown)}: the model's inputs are "
                         f"{', '.join(names)}")
    for t in graph.inputs:
        b.reserve(t.name)
    for t in graph.outputs:
        b.reserve(t.name)
    for t in graph.inputs:
        shape = (None, *(raw_shapes or {}).get(t.name, t.shape[1:]))
        inputs.append(helper.make_tensor_value_info(
            t.name, _ONNX_TYPES.get(t.dtype, 1), ["batch", *shape[1:]]))
        value = t.name
        for layer in preprocessing_layers((preprocessing or {}).get(t.name, ())):
            if t.dtype != "float32":
                value = b.op("Cast", [value], to=1)
            out = tuple(layer.compute_output_shape(shape))
            value, _ = walk.call(Call(layer, [value], [shape], [out]), (), [None])
            value, shape = value[0], out
        values.append(value)
    outs, _ = walk.graph(graph, values, [None] * len(values))
    if walk.problems:
        raise ConfigError(walk.problems, getattr(source, "file", None))
    outputs = []
    for t, v in zip(graph.outputs, outs):
        b.op("Identity", [v], [t.name])
        outputs.append(helper.make_tensor_value_info(t.name, 1, ["batch", *t.shape[1:]]))
    used = _inputs_used(b.nodes)
    onnx_graph = helper.make_graph(b.nodes, model.name or "kconf", inputs, outputs,
                                   [i for i in b.initializers if i.name in used])
    proto = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="kconf")
    # the oldest IR version the opset needs, so older runtimes read the file
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _inputs_used(nodes) -> set[str]:
    """The value names ``nodes`` read, their subgraphs' (a Scan's body) included."""
    used = set()
    for node in nodes:
        used.update(node.input)
        for attr in node.attribute:
            if attr.HasField("g"):
                used |= _inputs_used(attr.g.node)
    return used


def export_onnx(model, out: str | os.PathLike, opset: int = DEFAULT_OPSET,
                preprocessing: Mapping[str, Sequence[Any]] | None = None,
                source=None, raw_shapes: Mapping[str, Sequence[int]] | None = None) -> Path:
    """Write ``model`` as an ONNX file (atomically); return its path."""
    proto = onnx_model(model, opset, preprocessing, source, raw_shapes)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, proto.SerializeToString())
    return path
