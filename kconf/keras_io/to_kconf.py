"""A Keras model (``KModel``) as a kconf config: what a person would write.

- A Sequential model becomes ``model: sequential:``, one ``{Class: {args}}`` per layer, the
  input shape on the first, a ``name`` only where kconf's automatic name would differ.
- A functional model becomes ``inputs``, ``layers`` (one entry per layer instance, so a
  shared layer is one entry with several graph lines), ``graph`` and ``outputs``. Merge
  layers with automatic names use the helpers (``x = concatenate(a, b, axis=1)``). Tensors
  get readable names: a chain of single-use tensors is ``x``, as in the Keras docs; outputs
  are named after their layers, as Keras names outputs; other tensors after the layer (and
  call) that computes them.
- Nested models (called like a layer, or wrapped in TimeDistributed) go to ``models``.
- Keras names that cannot name things in a kconf graph (``dense-1``, ``add``, which is a
  helper) are renamed; ``Converted.keras_names`` keeps the originals, by which weights are
  found in Keras's weight files.
"""
from __future__ import annotations

import keyword
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kconf.config.layers import LAYER_SPECS
from kconf.engine.layers import REGISTRY
from kconf.args.layer import LayerArgs
from kconf.args.names import MERGE_HELPERS
from kconf.graph.construct import LayerNamer, snake_case
from kconf.keras_io.findings import Findings
from kconf.keras_io.graph import KCall, KInput, KLayer, KModel, Ref
from kconf.keras_io.layers import MERGE_CLASSES, RULES, layer_args

#: kconf names a nested model's layers by (model name or None for the main model, layer).
NameKey = tuple[str | None, str]

#: Names of a recurrent layer's extra outputs with return_state.
_STATE_NAMES = {"LSTM": ("h", "c"), "GRU": ("h",), "SimpleRNN": ("h",)}
#: The tensor name of a chain of single-use tensors, as in the Keras docs.
CHAIN = "x"
#: The name of what a merge helper computes (when it is not part of a chain).
MERGED = "merged"


@dataclass
class ModelSections:
    """The ``model`` section and the ``models`` it needs, plus the Keras names of renamed
    layers, inputs and models (``(scope, kconf name) -> Keras name``)."""

    model: dict[str, Any]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    keras_names: dict[NameKey, str] = field(default_factory=dict)
    output_names: dict[str, str] = field(default_factory=dict)


def model_sections(kmodel: KModel, version: int, findings: Findings) -> ModelSections:
    """Convert a Keras model (and the models nested in it).

    Args:
        kmodel: the model read from the Keras file.
        version: 2 or 3, the Keras format (some names changed meaning).
        findings: where every unsupported layer or argument is reported.

    Returns:
        The sections; only meaningful when ``findings`` stayed empty.
    """
    converter = _Converter(version, findings, _all_names(kmodel))
    sections = ModelSections({})
    converter.sections = sections
    sections.model = converter.model(kmodel, scope=None)
    sections.output_names = converter.top_outputs
    return sections


def _all_names(kmodel: KModel) -> set[str]:
    """Every input and layer name of every scope (model names must differ from all)."""
    names = {i.name for i in kmodel.inputs}
    for layer in kmodel.layers:
        if layer.model is None:
            names.add(layer.name)
        for nested in (layer.model, layer.inner.model if layer.inner else None):
            if nested is not None:
                names |= _all_names(nested)
    return names


def valid_name(name: str) -> str:
    """A Keras name made into a name a kconf graph line can use (``dense-1`` -> ``dense_1``)."""
    text = re.sub(r"\W", "_", name.encode("ascii", "replace").decode("ascii")) or "layer"
    if text[0].isdigit():
        text = "_" + text
    if keyword.iskeyword(text) or text in MERGE_HELPERS:
        text += "_layer"
    return text


class _Scope:
    """The names of one model's graph, each used once; a tensor may share the name of the
    layer that computes it, as in the docs' ``main_output = main_output(x)``."""

    def __init__(self, reserved: set[str]):
        self.taken = set(reserved) | set(MERGE_HELPERS)  # inputs, models, tensors, helpers
        self.layers: set[str] = set()

    def claim(self, wanted: str, layer: bool = False) -> str:
        """An input's or a layer's name: ``wanted`` made valid and unique (``_1``...)."""
        name = self._free(valid_name(wanted), lambda n: n in self.taken or n in self.layers)
        (self.layers if layer else self.taken).add(name)
        return name

    def tensor(self, wanted: str, own_layer: str | None) -> str:
        """A tensor name: unique, and no other layer's name."""
        name = self._free(valid_name(wanted), lambda n: n in self.taken or (
            n in self.layers and n != own_layer))
        self.taken.add(name)
        return name

    @staticmethod
    def _free(base: str, used) -> str:
        """``base``, else ``base_1``, ``base_2``... whichever ``used`` says is free first."""
        name, n = base, 0
        while used(name):
            n += 1
            name = f"{base}_{n}"
        return name


class _Converter:
    """Converts one Keras model and the models nested in it (see the module docstring)."""

    def __init__(self, version: int, findings: Findings, all_names: set[str]):
        self.version = version
        self.findings = findings
        self.all_names = all_names
        self.sections: ModelSections
        self.model_names: dict[int, str] = {}  # id(KModel) -> its name in `models`
        self.top_outputs: dict[str, str] = {}

    # --- models ------------------------------------------------------------------------
    def model(self, km: KModel, scope: str | None, frozen: bool = False) -> dict[str, Any]:
        """``{sequential: [...]}`` or ``{functional: {...}}`` for one model."""
        frozen = frozen or not km.trainable
        if km.kind == "Sequential" and self._fits_sequential(km):
            return {"sequential": self.sequential(km, frozen)}
        return {"functional": self.functional(km, scope, frozen)}

    def nested(self, km: KModel, frozen: bool) -> str:
        """The name of a nested model in ``models`` (converted on first use)."""
        if id(km) in self.model_names:
            return self.model_names[id(km)]
        taken = self.all_names | set(self.sections.models) | set(self.model_names.values())
        name, n = valid_name(km.name), 0
        base = name
        while name in taken or name in MERGE_HELPERS:
            n += 1
            name = f"{base}_model" if n == 1 else f"{base}_model_{n - 1}"
        self.model_names[id(km)] = name
        if name != km.name:
            self.sections.keras_names[(None, name)] = km.name
        self.sections.models[name] = self.model(km, name, frozen)
        return name

    def _fits_sequential(self, km: KModel) -> bool:
        """Whether kconf's Sequential form can say it: no model called as a layer, and an
        integer input only into an Embedding (kconf's Sequential feeds that int32)."""
        if any(layer.model is not None for layer in km.layers):
            return False
        return km.layers[0].class_name == "Embedding" or km.inputs[0].dtype == "float32"

    # --- layers ------------------------------------------------------------------------
    def spec(self, layer: KLayer, frozen: bool) -> dict[str, Any] | None:
        """``{Class: {args}}`` of a layer (None after reporting one kconf lacks)."""
        cls = layer.class_name
        if cls not in RULES:
            self.findings.add(layer.path, f"{cls} layer {layer.name!r} is not supported by "
                                          f"kconf (kconf's layers: {', '.join(RULES)})")
            return None

        def report(key: str, message: str) -> None:
            self.findings.add((*layer.path, "config", key), f"{cls} {layer.name!r}: {message}")

        args = _ordered(cls, layer_args(cls, layer.config, self.version, report))
        if cls == "TimeDistributed" and layer.inner is not None:
            inner = layer.inner
            if inner.model is not None:
                args = {"layer": self.nested(inner.model, frozen), **args}
            else:
                wrapped = self.spec(inner, False)
                if wrapped is None:
                    return None
                args = {"layer": wrapped, **args}
        if cls == "Bidirectional" and layer.inner is not None:
            wrapped = self.spec(layer.inner, False)
            if wrapped is None:
                return None
            args = {"layer": wrapped, **args}
            back = layer.backward
            if back is not None and not _mirrors(layer.inner, back):
                given = self.spec(back, False)
                if given is None:
                    return None
                args["backward_layer"] = given
        if frozen:
            args["trainable"] = False
        return {cls: args}

    # --- Sequential ----------------------------------------------------------------------
    def sequential(self, km: KModel, frozen: bool) -> list[dict[str, Any]]:
        """The layers, the input shape on the first, names where kconf's would differ."""
        specs = [self.spec(layer, frozen) for layer in km.layers]
        if any(s is None for s in specs):
            return []
        given: set[int] = set()
        while True:  # name the layers whose automatic name would differ, until none does
            autos = _sequential_names(km.layers, given)
            wrong = {i for i, (layer, auto) in enumerate(zip(km.layers, autos))
                     if auto != layer.name} - given
            if not wrong:
                break
            given |= wrong
        out = []
        for i, (layer, spec) in enumerate(zip(km.layers, specs)):
            ((cls, args),) = spec.items()
            if i in given:
                args = {**args, "name": layer.name}
            if i == 0:
                args = {**args, **_input_hint(km.inputs[0])}
            out.append({cls: args})
        return out

    # --- Functional ------------------------------------------------------------------------
    def functional(self, km: KModel, scope: str | None, frozen: bool) -> dict[str, Any]:
        """Inputs, layers, graph lines and outputs of a functional model."""
        names = _Scope(set(self.model_names.values()) | set(self.sections.models))
        kinds = {layer.name: layer for layer in km.layers}
        inputs: dict[str, dict[str, Any]] = {}
        known: dict[str, str] = {}  # Keras name of an input or layer -> kconf name
        for kin in km.inputs:
            known[kin.name] = self._rename(names.claim(kin.name), kin.name, scope)
            inputs[known[kin.name]] = _input_spec(kin)
        helpers: set[str] = set()
        layers: dict[str, Any] = {}
        for layer in km.layers:
            if _is_helper(layer):
                helpers.add(layer.name)
                continue
            if layer.model is not None:
                known[layer.name] = self.nested(layer.model, frozen)
                continue
            kname = self._rename(names.claim(layer.name, layer=True), layer.name, scope)
            known[layer.name] = kname
            spec = self.spec(layer, frozen)
            if spec is not None:
                layers[kname] = spec
        calls = self._order(km, kinds)
        if calls is None:
            return {}
        tensors = self._tensor_names(km, calls, known, names)
        graph = [self._line(layer, call, tensors, known) for layer, call in calls]
        outputs = [tensors.get(ref, "?") for ref in km.outputs]
        if scope is None:
            self.top_outputs = {ref[0]: tensors.get(ref, ref[0]) for ref in km.outputs}
        out: dict[str, Any] = {"inputs": inputs}
        if layers:
            out["layers"] = layers
        out["graph"] = graph
        out["outputs"] = outputs
        return out

    def _rename(self, kname: str, keras_name: str, scope: str | None) -> str:
        """Remember Keras's name of a layer or input kconf renamed."""
        if kname != keras_name:
            self.sections.keras_names[(scope, kname)] = keras_name
        return kname

    def _order(self, km: KModel, kinds: dict[str, KLayer]) -> list[tuple[KLayer, KCall]] | None:
        """Every call once its input tensors exist: layers in the file's order, each
        layer's calls in order (Keras rebuilds a functional model the same way)."""
        ready = {kin.name for kin in km.inputs}
        pending = [(layer, k) for layer in km.layers for k in range(len(layer.calls))]
        done: list[tuple[KLayer, KCall]] = []
        while pending:
            progress = False
            for item in list(pending):
                layer, k = item
                earlier = any(other is layer and j < k for other, j in pending)
                if not earlier and all(_made(ref, ready) for ref in layer.calls[k].inputs):
                    done.append((layer, layer.calls[k]))
                    ready.add(f"{layer.name}#{k}")
                    pending.remove(item)
                    progress = True
            if not progress:
                for layer, k in pending:
                    missing = [r for r in layer.calls[k].inputs if not _made(r, ready)]
                    unknown = [r for r in missing if r[0] not in kinds and
                               r[0] not in {i.name for i in km.inputs}]
                    what = ("refers to unknown layers: " + ", ".join(r[0] for r in unknown)
                            if unknown else "is part of a cycle or needs a missing call")
                    self.findings.add(layer.calls[k].path, f"this call of {layer.name!r} {what}")
                return None
        for ref in km.outputs:
            if not _made(ref, ready):
                self.findings.add(km.path, f"output {list(ref)} is not computed by any call")
                return None
        return done

    def _tensor_names(self, km: KModel, calls: list[tuple[KLayer, KCall]],
                      known: dict[str, str], names: _Scope) -> dict[Ref, str]:
        """A name for every tensor (see the module docstring)."""
        tensors: dict[Ref, str] = {(kin.name, 0, 0): known[kin.name] for kin in km.inputs}
        uses = Counter(ref for _, call in calls for ref in call.inputs)
        uses.update(km.outputs)
        consumers = {}
        for i, (_, call) in enumerate(calls):
            for ref in call.inputs:
                consumers.setdefault(ref, set()).add(i)
        outputs = set(km.outputs)
        chain_ok = CHAIN not in known.values()
        for i, (layer, call) in enumerate(calls):
            node = layer.calls.index(call)
            count = _output_count(layer, call)
            own = known.get(layer.name)
            base = own or MERGED
            if len(layer.calls) > 1:
                base = f"{base}_{node}"
            for j in range(count):
                ref = (layer.name, node, j)
                if ref in outputs:
                    tensors[ref] = names.tensor(_state_name(layer, base, j), own)
                elif (count == 1 and chain_ok and len(layer.calls) == 1 and uses[ref] == 1
                      and consumers.get(ref) == {i + 1}):
                    tensors[ref] = CHAIN
                else:
                    tensors[ref] = names.tensor(_state_name(layer, base, j), own)
        return tensors

    def _line(self, layer: KLayer, call: KCall, tensors: dict[Ref, str],
              known: dict[str, str]) -> str:
        """``targets = callee(args)``."""
        node = layer.calls.index(call)
        targets = [tensors[(layer.name, node, j)] for j in range(_output_count(layer, call))]
        positional = call.inputs[:len(call.inputs) - len(call.keywords)]
        args = ", ".join(tensors.get(ref, "?") for ref in positional)
        named: dict[str, list[str]] = {}  # keyword -> its tensors (a list for initial_state)
        for key, ref in zip(call.keywords, call.inputs[len(positional):]):
            named.setdefault(key, []).append(tensors.get(ref, "?"))
        lists = _tensor_lists(layer.class_name)
        words = [f"{key}=[{', '.join(refs)}]" if key in lists else f"{key}={refs[0]}"
                 for key, refs in named.items()]
        words += [f"{key}={_literal(value)}" for key, value in call.options.items()]
        args = ", ".join([args, *words] if args else words)
        if _is_helper(layer):
            callee = snake_case(layer.class_name)
            kwargs = layer_args(layer.class_name, layer.config, self.version,
                                lambda key, message: self.findings.add(
                                    (*layer.path, "config", key),
                                    f"{layer.class_name} {layer.name!r}: {message}"))
            kwargs.pop("trainable", None)
            args += "".join(f", {k}={_literal(v)}" for k, v in kwargs.items())
        else:
            callee = known[layer.name]
        return f"{', '.join(targets)} = {callee}({args})"


def _ordered(class_name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Arguments in the order of kconf's schema (Keras's constructor order), the arguments
    every layer takes (``trainable``) last."""
    fields = list(LAYER_SPECS[class_name].model_fields[class_name].annotation.model_fields)
    common = [f for f in LayerArgs.model_fields if f in fields]
    order = [f for f in fields if f not in common] + common
    return {k: args[k] for k in sorted(args, key=lambda k: order.index(k) if k in order else 0)}


def _made(ref: Ref, ready: set[str]) -> bool:
    """Whether the tensor ``ref`` exists yet (an input, or a call already made)."""
    name, node, _ = ref
    return name in ready or f"{name}#{node}" in ready


def _is_helper(layer: KLayer) -> bool:
    """A merge layer with a name Keras made up: written as a helper call."""
    if layer.class_name not in MERGE_CLASSES:
        return False
    return re.fullmatch(rf"{snake_case(layer.class_name)}(_\d+)?", layer.name) is not None


def _output_count(layer: KLayer, call: KCall | None = None) -> int:
    """How many tensors one call of the layer returns (``call``: with its options)."""
    if call is not None and call.options.get("return_attention_scores"):
        return 2
    if layer.model is not None:
        return max(1, len(layer.model.outputs))
    if layer.class_name in _STATE_NAMES and layer.config.get("return_state"):
        return 1 + len(_STATE_NAMES[layer.class_name])
    if layer.class_name == "Bidirectional" and layer.inner is not None:
        inner = layer.inner
        outputs = 2 if "merge_mode" in layer.config and layer.config["merge_mode"] is None else 1
        if inner.class_name in _STATE_NAMES and inner.config.get("return_state"):
            back = layer.backward or inner
            outputs += len(_STATE_NAMES[inner.class_name])
            outputs += len(_STATE_NAMES.get(back.class_name, ()))
        return outputs
    return 1


def _mirrors(forward: KLayer, backward: KLayer) -> bool:
    """Whether Bidirectional's ``backward_layer`` is the copy Keras makes of ``layer``
    (``go_backwards`` flipped, renamed): kconf's config then leaves it out."""
    def rest(layer: KLayer) -> dict[str, Any]:
        return {k: v for k, v in layer.config.items() if k not in ("name", "go_backwards")}

    return (forward.class_name == backward.class_name and rest(forward) == rest(backward)
            and bool(forward.config.get("go_backwards")) != bool(
                backward.config.get("go_backwards")))


def _tensor_lists(class_name: str) -> tuple[str, ...]:
    """The keywords of a layer's call that take a list of tensors (``initial_state``)."""
    entry = REGISTRY.get(class_name)
    signature = None if entry is None else entry.layer.call_signature
    return () if signature is None else signature.tensor_lists


def _state_name(layer: KLayer, base: str, j: int) -> str:
    """The name of a call's ``j``-th result (``lstm``, ``lstm_h``, ``lstm_c``)."""
    if j == 0:
        return base
    states = _STATE_NAMES.get(layer.class_name)
    return f"{base}_{states[j - 1]}" if states else f"{base}_{j}"


def _literal(value: Any) -> str:
    """A helper keyword's value as Python writes it (``True``, ``(1, 2)``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def _input_spec(kin: KInput) -> dict[str, Any]:
    """``{shape, dtype, batch_size}`` of a functional input, defaults left out."""
    spec: dict[str, Any] = {"shape": list(kin.shape)}
    if kin.dtype != "float32":
        spec["dtype"] = kin.dtype
    if kin.batch_size is not None:
        spec["batch_size"] = kin.batch_size
    return spec


def _input_hint(kin: KInput) -> dict[str, Any]:
    """The input-shape arguments of a Sequential model's first layer."""
    hint: dict[str, Any] = {"input_shape": list(kin.shape)}
    if kin.batch_size is not None:
        hint["batch_size"] = kin.batch_size
    return hint


def _sequential_names(layers: list[KLayer], given: set[int]) -> list[str]:
    """The names kconf's Sequential gives the layers when those in ``given`` are named."""
    namer = LayerNamer()
    for i in given:
        namer.claim(layers[i].name)
    return [layer.name if i in given else namer.auto(layer.class_name)
            for i, layer in enumerate(layers)]
