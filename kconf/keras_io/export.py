"""A kconf model as Keras 3 writes one: ``model.to_json()``'s JSON, and a ``.keras`` archive
(config.json, metadata.json, model.weights.h5) that ``keras.saving.load_model`` opens.

Keras is not needed: the JSON and the weight file's layout are written here. Two Keras facts
matter for the weights: ``load_model`` finds a layer's variables by its position among the
layers of its class (``layers/dense_1/vars``) in the order Keras gives a rebuilt model's
layers, so the layers are listed in that order (``Graph.layers``, the order of Keras's
``map_graph``: by depth from the outputs, then by first visit); and a recurrent layer's
variables belong to its cell (``layers/lstm/cell/vars``).
"""
from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

from kconf.engine.layers import REGISTRY
from kconf.engine.layers.attention import MultiHeadAttention
from kconf.engine.layers.bidirectional import Bidirectional
from kconf.engine.layers.input import InputLayer
from kconf.engine.layers.recurrent import Recurrent
from kconf.engine.layers.time_distributed import TimeDistributed
from kconf.errors import ConfigError, Problem
from kconf.files import write_atomic
from kconf.graph.construct import snake_case
from kconf.graph.model_layer import ModelLayer
from kconf.keras_io.archive import ARCHIVE_CONFIG, ARCHIVE_METADATA, ARCHIVE_WEIGHTS
from kconf.keras_io.compile import keras_compile_config
from kconf.keras_io.h5 import Group, write_weights
from kconf.keras_io.layers import keras_args

#: The Keras version whose formats kconf writes (and was checked against).
KERAS_VERSION = "3.15.1"

#: Keras 3's float32 dtype policy, as every layer config carries it.
FLOAT32 = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
           "registered_name": None}


def keras_json(model) -> dict[str, Any]:
    """What Keras 3's ``model.to_json()`` writes for this model (parsed).

    Args:
        model: a kconf ``Model``; when compiled, its optimizer, losses and metrics become
            ``compile_config``.

    Returns:
        The model's JSON as a dict.

    Raises:
        ConfigError: a setting Keras cannot express (a lazy sparse optimizer...), all listed.
    """
    problems: list[str] = []
    entry = _model_entry(model.graph, model.name, model.sequential)
    if model.optimizer is not None:
        entry["compile_config"] = keras_compile_config(model, problems.append)
    if problems:
        raise ConfigError([Problem(p) for p in problems])
    return entry


def export_keras(model, out: str | os.PathLike, weights: bool = True) -> list[Path]:
    """Write ``OUT.json`` and, with ``weights``, ``OUT.keras`` (the model and its weights).

    Args:
        model: a kconf ``Model`` (built when ``weights``).
        out: the path stem; a ``.json`` or ``.keras`` suffix is dropped.
        weights: also write the ``.keras`` archive.

    Returns:
        The files written.
    """
    stem = Path(out)
    if stem.suffix in (".json", ".keras"):
        stem = stem.with_suffix("")
    data = keras_json(model)
    written = [stem.with_name(stem.name + ".json")]
    _write(written[0], json.dumps(data, indent=1) + "\n")
    if weights:
        written.append(stem.with_name(stem.name + ".keras"))
        _write(written[1], _archive(model, data))
    return written


def save_keras(model, path: str | os.PathLike) -> Path:
    """Save a built model as a ``.keras`` archive (or only its JSON for a ``.json`` path).

    Args:
        model: a built kconf ``Model``.
        path: ``something.keras`` (or ``something.json``).

    Returns:
        The path written.
    """
    path = Path(path)
    data = keras_json(model)
    if path.suffix == ".json":
        _write(path, json.dumps(data, indent=1) + "\n")
    else:
        _write(path, _archive(model, data))
    return path


def _write(path: Path, data: str | bytes) -> None:
    """Write a file atomically, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def _archive(model, data: dict[str, Any]) -> bytes:
    """The bytes of a ``.keras`` zip: config, metadata and weights."""
    import io

    metadata = {"keras_version": KERAS_VERSION,
                "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(ARCHIVE_METADATA, json.dumps(metadata))
        archive.writestr(ARCHIVE_CONFIG, json.dumps(data))
        archive.writestr(ARCHIVE_WEIGHTS, write_weights(weight_groups(model)))
    return buffer.getvalue()


# --- the model's JSON ------------------------------------------------------------------------


def _model_entry(graph, name: str, sequential: bool, trainable: bool = True) -> dict[str, Any]:
    """A Sequential or Functional model's entry (its layers, its connections)."""
    if sequential:
        layers = [_layer_entry(l) for l in graph.layers]
        return {"module": "keras", "class_name": "Sequential",
                "config": {"name": name, "trainable": trainable, "dtype": FLOAT32,
                           "layers": layers},
                "registered_name": None}
    entries = []
    for layer in graph.layers:
        entry = _layer_entry(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [_node(graph, n) for n in graph.nodes_of(layer)
                                  if not isinstance(layer, InputLayer)]
        entries.append(entry)
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": name, "trainable": trainable, "layers": entries,
                       "input_layers": _refs(graph, graph.inputs),
                       "output_layers": _refs(graph, graph.outputs)},
            "registered_name": "Functional"}


def _refs(graph, tensors) -> list:
    """``[layer, node, tensor]`` triples; one bare triple for one tensor, as Keras writes."""
    refs = [[t.node.layer.name, graph.node_index(t.node), t.index] for t in tensors]
    return refs[0] if len(refs) == 1 else refs


def _node(graph, node) -> dict[str, Any]:
    """One call: its tensors as ``__keras_tensor__`` objects (a list for merge layers and
    Attention), a call signature's optional tensors and options as keywords (MHA)."""
    tensors = [{"class_name": "__keras_tensor__",
                "config": {"shape": list(t.shape), "dtype": t.dtype,
                           "keras_history": [t.node.layer.name, graph.node_index(t.node),
                                             t.index]}}
               for t in node.inputs]
    signature = node.layer.call_signature
    if signature is not None:  # Keras's call: the required tensors, the others by keyword
        if signature.keras_list:
            return {"args": [tensors], "kwargs": dict(node.options)}
        named = dict(zip(signature.tensors[signature.required:], tensors[signature.required:]))
        listed = tensors[len(signature.tensors):]  # a recurrent call's initial_state=[h, c]
        if signature.tensor_lists and listed:
            named[signature.tensor_lists[0]] = listed
        return {"args": tensors[:signature.required], "kwargs": {**named, **node.options}}
    args = [tensors] if node.layer.n_inputs != 1 else tensors
    return {"args": args, "kwargs": {}}


def _layer_entry(layer) -> dict[str, Any]:
    """A layer's ``{module, class_name, config, registered_name}``."""
    if isinstance(layer, ModelLayer):
        return _model_entry(layer.graph, layer.name, layer.kind == "Sequential", layer.trainable)
    if isinstance(layer, InputLayer):
        return {"module": "keras.layers", "class_name": "InputLayer",
                "config": {"batch_shape": [layer.batch_size, *layer.shape],
                           "dtype": layer.dtype, "sparse": False, "name": layer.name},
                "registered_name": None}
    cls = type(layer).__name__
    config = {"name": layer.name, "trainable": layer.trainable, "dtype": FLOAT32}
    if isinstance(layer, TimeDistributed):
        config["layer"] = _layer_entry(layer.layer)
    elif isinstance(layer, Bidirectional):  # Keras writes both layers, the copy included
        config.update(keras_args(cls, layer))
        config["layer"] = _layer_entry(layer.forward_layer)
        config["backward_layer"] = _layer_entry(layer.backward_layer)
    else:
        config.update(keras_args(cls, layer))
    args = REGISTRY[cls].args
    if not args.keras_takes_trainable:
        del config["trainable"]
    module = args.keras_module  # keras.applications' layers: Keras names them
    return {"module": module, "class_name": cls, "config": config,
            "registered_name": None if module == "keras.layers" else cls}


# --- the weights file --------------------------------------------------------------------------


def weight_groups(model) -> list[Group]:
    """The groups of the ``model.weights.h5`` Keras 3 writes for this model."""
    groups = [Group("", model.name)]
    _container(groups, "", model.graph, model.sequential)
    return groups


def _container(groups: list[Group], path: str, graph, sequential: bool) -> None:
    """A model's ``layers/<class>[_<n>]`` groups, numbered per class in Keras's order."""
    layers = graph.layers
    used: dict[str, int] = {}
    for layer in layers:
        if sequential and isinstance(layer, InputLayer):
            continue  # a Sequential model's layers do not include its input
        base = snake_case(_keras_class(layer))
        count = used.get(base)
        used[base] = 0 if count is None else count + 1
        key = base if count is None else f"{base}_{count + 1}"
        _layer_groups(groups, f"{path}layers/{key}", layer)


def _layer_groups(groups: list[Group], path: str, layer) -> None:
    """One layer's group(s): its own vars, its cell's, its wrapped layer's, its layers'."""
    if isinstance(layer, ModelLayer):
        groups.append(Group(path, layer.name))
        _container(groups, path + "/", layer.graph, layer.kind == "Sequential")
    elif isinstance(layer, TimeDistributed):
        groups.append(Group(path, layer.name))
        _layer_groups(groups, path + "/layer", layer.layer)
    elif isinstance(layer, Bidirectional):  # its two layers' groups, by attribute name
        groups.append(Group(path, layer.name))
        _layer_groups(groups, path + "/forward_layer", layer.forward_layer)
        _layer_groups(groups, path + "/backward_layer", layer.backward_layer)
    elif isinstance(layer, Recurrent):
        groups.append(Group(path, layer.name))
        cell = f"{snake_case(type(layer).__name__)}_cell"
        groups.append(Group(path + "/cell", cell, list(layer.weights.values())))
    elif isinstance(layer, MultiHeadAttention):  # the weights in its sublayers' groups
        groups.append(Group(path, layer.name))
        for key, name, prefix in layer.keras_weight_groups:
            arrays = [w for k, w in layer.weights.items() if prefix and k.startswith(prefix)]
            groups.append(Group(f"{path}/{key}", name, arrays))
    else:
        groups.append(Group(path, layer.name, list(layer.weights.values())))


def _keras_class(layer) -> str:
    """The Keras class a layer is saved as (Sequential or Functional for a model)."""
    if isinstance(layer, ModelLayer):
        return layer.kind
    return type(layer).__name__
