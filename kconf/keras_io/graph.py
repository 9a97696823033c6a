"""A Keras model's JSON, Keras 3 or Keras 2 format, read into one small structure.

Sequential and functional models both become a ``KModel``: inputs, layers, and for every
layer its calls (Keras's inbound nodes), each call naming the tensors it takes as
``(layer, node index, tensor index)``; a Sequential model is a chain of one call per layer.
The two formats differ only in how calls are written:

    Keras 3   {"args": [{"class_name": "__keras_tensor__",
                         "config": {"keras_history": ["dense", 0, 0]}}], "kwargs": {}}
    Keras 2   [["dense", 0, 0, {}]]            (one list per call, one entry per tensor)

Nothing is converted here, except an operation of a tensor and a constant (``x + 3.0``),
which is read as the ``Rescaling`` layer it is (``constant_ops.py``); call arguments kconf
cannot honour (an initial state) are reported to the ``Findings``.

Masks: Keras 3 writes the masks its layers computed (a ``mask_zero`` Embedding's, a
``Masking`` layer's, a merge's) as operations in the graph (``NotEqual``, ``Any``,
``LogicalOr`` ... of module ``keras.src.ops``) and hands them to the layers that take them as
a ``mask=`` call argument. kconf computes the same masks from the same layers
(``kconf.engine.masks``), so a functional model drops those operations and arguments. A
mask computed otherwise (a model input, a layer) is reported: kconf has no explicit masks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kconf.args.names import DTYPE_NAMES
from kconf.engine.layers import REGISTRY
from kconf.errors import ConfigPath
from kconf.keras_io.constant_ops import constant_operation
from kconf.keras_io.findings import Findings

#: (layer name, node index, tensor index): a tensor, as Keras's ``keras_history``.
Ref = tuple[str, int, int]

#: Class names of a model used as a layer (Keras 2 called functional models "Model").
MODEL_CLASSES = ("Sequential", "Functional", "Model")

#: Keyword arguments of a call that change nothing when they have these values.
_CALL_KWARGS = {"training": (None, False), "mask": (None,)}

#: Arguments of an InputLayer: those kconf reads, and those it accepts at these values.
_INPUT_READ = ("batch_shape", "batch_input_shape", "shape", "batch_size", "dtype", "name")
_INPUT_FIXED = {"sparse": (False, None), "ragged": (False, None), "optional": (False, None),
                "input_tensor": (None,)}


@dataclass
class KInput:
    """A model input: ``shape`` without the batch axis, a fixed ``batch_size`` or None."""

    name: str
    shape: tuple[int | None, ...]
    batch_size: int | None
    dtype: str
    path: ConfigPath


@dataclass
class KCall:
    """One call of a layer (a Keras node): the tensors it takes, in order; for a layer with a
    call signature (MultiHeadAttention), the last ``len(keywords)`` of them given by keyword
    (``key=...``), and the call's ``options`` (``use_causal_mask``)."""

    inputs: list[Ref]
    path: ConfigPath
    keywords: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class KLayer:
    """A layer entry of a model: its Keras class, name and config, and its calls.

    ``model`` is set for a nested model, ``inner`` for TimeDistributed's wrapped layer and
    Bidirectional's ``layer``, ``backward`` for Bidirectional's ``backward_layer``.
    """

    class_name: str
    name: str
    config: dict[str, Any]
    path: ConfigPath
    calls: list[KCall] = field(default_factory=list)
    model: KModel | None = None
    inner: KLayer | None = None
    backward: KLayer | None = None
    #: a Keras operation (``NotEqual``), not a layer: module ``keras.src.ops...``
    op: bool = False
    #: the tensors its calls take as ``mask=`` (Keras 3 writes the masks it computed)
    mask_refs: list[Ref] = field(default_factory=list)


@dataclass
class KModel:
    """A Sequential or functional Keras model (``kind``), read from its JSON."""

    kind: str
    name: str
    inputs: list[KInput]
    layers: list[KLayer]
    outputs: list[Ref]
    path: ConfigPath
    trainable: bool = True

    def layer(self, name: str) -> KLayer | None:
        """The layer of this name (inputs excluded), or None."""
        return next((l for l in self.layers if l.name == name), None)


def read_model(data: dict[str, Any], path: ConfigPath, findings: Findings) -> KModel | None:
    """Read a model's JSON (``{"class_name": ..., "config": ...}``).

    Args:
        data: the model's entry.
        path: where it sits in the file (``()`` for the file's model).
        findings: where problems go.

    Returns:
        The ``KModel``, or None when it cannot be read at all (a problem says why).
    """
    kind = data.get("class_name")
    config = data.get("config")
    if kind == "Sequential":
        return _sequential(config, data, path, findings)
    if kind in ("Functional", "Model"):
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            findings.add((*path, "config"), "a functional model's config needs layers, "
                                            "input_layers and output_layers")
            return None
        return _functional(config, path, findings)
    findings.add((*path, "class_name"), f"{kind!r} is not a Keras model class kconf can read: "
                                        "expected Sequential or Functional (Model)")
    return None


def read_layer(entry: Any, path: ConfigPath, findings: Findings) -> KLayer | None:
    """One layer entry (``{"class_name", "config"}``); a nested model or TimeDistributed's
    wrapped layer is read too."""
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        findings.add(path, "expected a layer: an object with class_name and config")
        return None
    config = entry.get("config")
    if not isinstance(config, dict):
        config = {"layers": config} if isinstance(config, list) else {}
    class_name = entry["class_name"]
    name = entry.get("name") or config.get("name") or class_name.lower()
    layer = KLayer(class_name, str(name), config, path,
                   op=str(entry.get("module") or "").startswith("keras.src.ops"))
    if class_name in MODEL_CLASSES:
        layer.model = read_model(entry, path, findings)
    elif class_name == "TimeDistributed":
        if "layer" in config:
            layer.inner = read_layer(config["layer"], (*path, "config", "layer"), findings)
        else:
            findings.add((*path, "config"), "TimeDistributed without the layer it wraps")
    elif class_name == "Bidirectional":
        if isinstance(config.get("layer"), dict):
            layer.inner = read_layer(config["layer"], (*path, "config", "layer"), findings)
        else:
            findings.add((*path, "config"), "Bidirectional without the layer it wraps")
        if isinstance(config.get("backward_layer"), dict):
            layer.backward = read_layer(config["backward_layer"],
                                        (*path, "config", "backward_layer"), findings)
    return layer


# --- Sequential ---------------------------------------------------------------------------------


def _sequential(config: Any, data: dict[str, Any], path: ConfigPath,
                findings: Findings) -> KModel | None:
    """A Sequential model as a chain: its input, then one call per layer on the one before."""
    entries = config.get("layers") if isinstance(config, dict) else config  # Keras 2.0: a list
    list_path = (*path, "config", "layers") if isinstance(config, dict) else (*path, "config")
    if not isinstance(entries, list) or not entries:
        findings.add(list_path, "a Sequential model needs a list of layers")
        return None
    name = config.get("name", "sequential") if isinstance(config, dict) else "sequential"
    model_input = None
    layers = []
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("class_name") == "InputLayer":
            model_input = read_input(entry.get("config") or {}, (*list_path, i, "config"),
                                     findings)
            continue
        layer = read_layer(entry, (*list_path, i), findings)
        if layer is not None:
            layers.append(layer)
    if not layers:
        findings.add(list_path, "the Sequential model has no layers besides its input")
        return None
    if model_input is None:
        model_input = _sequential_input(layers[0], config, data, path, findings)
        if model_input is None:
            return None
    previous: Ref = (model_input.name, 0, 0)
    for layer in layers:
        layer.calls = [KCall([previous], layer.path)]
        previous = (layer.name, 0, 0)
    trainable = config.get("trainable", True) if isinstance(config, dict) else True
    return KModel("Sequential", str(name), [model_input], layers, [previous], path,
                  trainable is not False)


def _sequential_input(first: KLayer, config: Any, data: dict[str, Any], path: ConfigPath,
                      findings: Findings) -> KInput | None:
    """The input of a Sequential model without an InputLayer: the first layer's
    ``batch_input_shape`` (Keras 2), else the shape the model was built with."""
    for key in ("batch_input_shape", "batch_shape"):
        if key in first.config:
            return _input_from_batch_shape(first.config[key], first.config.get("dtype"),
                                           (*first.path, "config", key), findings,
                                           first.class_name)
    built = config.get("build_input_shape") if isinstance(config, dict) else None
    if built is None:
        built = (data.get("build_config") or {}).get("input_shape")
    if built is not None:
        return _input_from_batch_shape(built, None, (*path, "config", "build_input_shape"),
                                       findings, first.class_name)
    findings.add((*path, "config"), "the Sequential model has no input shape (no Input, no "
                                    "batch_input_shape, never built): give it one in Keras "
                                    "(keras.Input(shape)) before saving")
    return None


def _input_from_batch_shape(shape: Any, dtype: Any, path: ConfigPath, findings: Findings,
                            first_class: str) -> KInput | None:
    """A Sequential model's input from a shape with the batch axis first."""
    dims = _batch_shape(shape, path, findings)
    if dims is None:
        return None
    # A first Embedding is fed integers (kconf's Sequential makes that input int32).
    kind = "int32" if first_class == "Embedding" else "float32"
    return KInput("input_layer", dims[1:], dims[0], kind, path)


# --- inputs ------------------------------------------------------------------------------------


def read_input(config: dict[str, Any], path: ConfigPath, findings: Findings) -> KInput | None:
    """An InputLayer's config: its name, shape, fixed batch size and dtype."""
    for key, value in config.items():
        if key in _INPUT_READ:
            continue
        if key in _INPUT_FIXED:
            if value not in _INPUT_FIXED[key]:
                findings.add((*path, key), f"InputLayer {config.get('name')!r}: {key}="
                                           f"{value!r} is not supported by kconf")
            continue
        findings.add((*path, key), f"InputLayer {config.get('name')!r}: argument {key!r} is "
                                   "not supported by kconf")
    name = str(config.get("name", "input_layer"))
    if "batch_shape" in config or "batch_input_shape" in config:
        key = "batch_shape" if "batch_shape" in config else "batch_input_shape"
        dims = _batch_shape(config[key], (*path, key), findings)
    elif "shape" in config:
        dims = _batch_shape([config.get("batch_size"), *(config["shape"] or [])],
                            (*path, "shape"), findings)
    else:
        findings.add(path, f"InputLayer {name!r} has no shape")
        return None
    dtype = config.get("dtype") or "float32"
    if isinstance(dtype, dict):  # a dtype policy
        dtype = (dtype.get("config") or {}).get("name", "float32")
    if dtype not in DTYPE_NAMES:
        findings.add((*path, "dtype"), f"InputLayer {name!r}: dtype {dtype!r} is not "
                                       f"supported by kconf (inputs are "
                                       f"{', '.join(DTYPE_NAMES)})")
        return None
    if dims is None:
        return None
    return KInput(name, dims[1:], dims[0], str(dtype), path)


def _batch_shape(value: Any, path: ConfigPath,
                 findings: Findings) -> tuple[int | None, ...] | None:
    """A shape with the batch axis first; None (after a problem) when it is not one."""
    ok = isinstance(value, (list, tuple)) and len(value) >= 2 and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in value)
    if not ok:
        findings.add(path, f"expected a shape with the batch axis first, like [null, 20], "
                           f"got {value!r}")
        return None
    return tuple(value)


# --- Functional --------------------------------------------------------------------------------


def _functional(config: dict[str, Any], path: ConfigPath, findings: Findings) -> KModel:
    """A functional model: its inputs, its layers with their calls, its outputs."""
    inputs, layers = [], []
    layers_path = (*path, "config", "layers")
    for i, entry in enumerate(config["layers"]):
        at = (*layers_path, i)
        if isinstance(entry, dict) and entry.get("class_name") == "InputLayer":
            found = read_input(entry.get("config") or {}, (*at, "config"), findings)
            if found is not None:
                found.name = str(entry.get("name", found.name))
                inputs.append(found)
            continue
        rescaling, why = constant_operation(entry)
        if why is not None:
            findings.add((*at, "inbound_nodes"), f"{entry.get('name')!r}: {why}")
            continue
        if rescaling is not None:  # x + 3.0, x * (1/6): a Rescaling (constant_ops.py)
            entry = {**entry, "class_name": "Rescaling", "module": "keras.layers",
                     "config": rescaling}
        layer = read_layer(entry, at, findings)
        if layer is None:
            continue
        nodes = entry.get("inbound_nodes") or []
        layer.calls = [call for k, node in enumerate(nodes)
                       if (call := _call(node, (*at, "inbound_nodes", k), layer, findings))]
        layers.append(layer)
    layers = _without_mask_ops(layers, findings)
    outputs = _refs(config.get("output_layers"), (*path, "config", "output_layers"), findings)
    order = _refs(config.get("input_layers"), (*path, "config", "input_layers"), findings)
    by_name = {i.name: i for i in inputs}
    ordered = [by_name[name] for name, _, _ in order if name in by_name]
    ordered += [i for i in inputs if i not in ordered]
    trainable = config.get("trainable", True)
    return KModel("Functional", str(config.get("name", "functional")), ordered, layers,
                  outputs, path, trainable is not False)


def _without_mask_ops(layers: list[KLayer], findings: Findings) -> list[KLayer]:
    """``layers`` without the Keras operations that only compute the masks given as
    ``mask=`` (kconf computes masks itself); a mask that no operation computed is reported."""
    by_name = {layer.name: layer for layer in layers}
    pending = [(ref, layer) for layer in layers for ref in layer.mask_refs]
    mask_ops: set[str] = set()
    while pending:
        (name, _, _), user = pending.pop()
        producer = by_name.get(name)
        if (producer is None or not producer.op) and user.op:
            continue  # the data an operation reads (the tokens NotEqual compares with 0)
        if producer is None or not producer.op:
            findings.add(user.calls[0].path if user.calls else user.path,
                         f"{user.class_name} {user.name!r} receives a mask computed by "
                         f"{name!r}: kconf computes masks only from Embedding(mask_zero) and "
                         "Masking, and takes no explicit mask")
            continue
        if name not in mask_ops:
            mask_ops.add(name)
            pending += [(ref, producer) for call in producer.calls for ref in call.inputs]
    used = {ref[0] for layer in layers if layer.name not in mask_ops
            for call in layer.calls for ref in call.inputs}
    # an operation whose result a layer also takes as data stays (and is reported there)
    return [layer for layer in layers if layer.name not in mask_ops - used]


def _refs(value: Any, path: ConfigPath, findings: Findings) -> list[Ref]:
    """``input_layers`` / ``output_layers``: one triple, or a list of them."""
    if _is_ref(value):
        return [tuple(value[:3])]
    if isinstance(value, dict):  # Keras 3 models with inputs or outputs by name
        value = list(value.values())
    if not isinstance(value, list) or not all(_is_ref(v) for v in value):
        findings.add(path, "expected [layer name, node index, tensor index] triples")
        return []
    return [tuple(v[:3]) for v in value]


def _is_ref(value: Any) -> bool:
    """Whether ``value`` is a ``[layer name, node index, tensor index(, kwargs)]`` list."""
    return (isinstance(value, (list, tuple)) and len(value) >= 3 and isinstance(value[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:3]))


def _call(node: Any, path: ConfigPath, layer: KLayer, findings: Findings) -> KCall | None:
    """One inbound node, Keras 3 (``args``/``kwargs``) or Keras 2 (a list of triples)."""
    what = f"{layer.class_name} {layer.name!r}"
    if isinstance(node, dict) and "args" in node:
        refs: list[Ref] = []
        _collect_tensors(node["args"], refs)
        kwargs = dict(node.get("kwargs") or {})
        signature = _signature(layer.class_name)
        keywords, options = [], {}
        if signature is not None:
            for key in list(kwargs):
                if key in signature.tensors and kwargs[key] is not None:
                    found: list[Ref] = []
                    _collect_tensors(kwargs.pop(key), found)
                    refs += found[:1]
                    keywords += [key] * len(found[:1])
                elif key in signature.tensors:
                    kwargs.pop(key)  # key=None: Keras's default
                elif key in signature.tensor_lists:  # initial_state=[h, c]: after the others
                    found = []
                    _collect_tensors(kwargs.pop(key) or [], found)
                    refs += found
                    keywords += [key] * len(found)
                elif key in signature.options:
                    value = kwargs.pop(key)
                    if value:  # False is the default of every option
                        options[key] = value
        if kwargs.get("mask") is not None:  # a mask Keras computed: kconf computes its own
            _collect_tensors(kwargs.pop("mask"), layer.mask_refs)
        _check_kwargs(kwargs, (*path, "kwargs"), what, findings)
        return KCall(refs, path, tuple(keywords), options)
    if isinstance(node, list) and all(isinstance(t, list) and _is_ref(t) for t in node):
        for k, entry in enumerate(node):
            if len(entry) > 3 and entry[3]:
                _check_kwargs(entry[3], (*path, k, 3), what, findings)
        return KCall([tuple(t[:3]) for t in node], path)
    findings.add(path, f"{what}: cannot read this call (expected Keras 3 args/kwargs or "
                       "Keras 2 [layer, node, tensor] lists)")
    return None


def _signature(class_name: str):
    """The call signature of a layer class kconf has (None for the others)."""
    entry = REGISTRY.get(class_name)
    return None if entry is None else entry.layer.call_signature


def _collect_tensors(value: Any, out: list[Ref]) -> None:
    """Every ``__keras_tensor__`` in a call's arguments, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            if _is_ref(history):
                out.append(tuple(history[:3]))
            return
        for item in value.values():
            _collect_tensors(item, out)
    elif isinstance(value, list):
        for item in value:
            _collect_tensors(item, out)


def _check_kwargs(kwargs: dict[str, Any], path: ConfigPath, what: str,
                  findings: Findings) -> None:
    """Call arguments kconf ignores only at values that change nothing."""
    for key, value in kwargs.items():
        if key in _CALL_KWARGS and value in _CALL_KWARGS[key]:
            continue
        if key == "mask":
            message = f"{what} receives a mask: masking is not implemented in kconf"
        else:
            message = (f"{what} is called with {key}=...: kconf's layers take no call "
                       "arguments besides their inputs")
        findings.add((*path, key), message)
