"""Keras model -> kconf config (and Keras weights -> kconf's ``weights.npz``).

    config = from_keras("model.keras")                      # a dict, ready for build_model
    result = import_keras("model.keras", "model.yaml")      # + model.weights.npz

The config gets the model (``model``, and ``models`` for nested ones), the ``compile``
section Keras stored (else Keras's default optimizer and a loss chosen from each output's
activation, said so in a comment), and placeholder ``data`` (random arrays shaped like the
model's inputs and outputs, to replace) so that it validates and trains as it is.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kconf.config.version import CONFIG_VERSION, VERSION_KEY
from kconf.config.objectives import is_loss_class_mapping, loss_class_name
from kconf.engine import loss_classes
from kconf.errors import ConfigError, Problem, SourcePos
from kconf.keras_io.compile import compile_section, default_compile
from kconf.keras_io.findings import Findings
from kconf.keras_io.graph import read_model
from kconf.keras_io.source import KerasSource, read_source
from kconf.keras_io.to_kconf import model_sections
from kconf.keras_io.yaml_text import config_yaml

#: Samples of the placeholder data's splits.
PLACEHOLDER_SAMPLES = {"train": 128, "test": 32}
#: The size placeholder data gives a dimension of any size (``null`` in a shape).
ANY_SIZE = 8

_DATA_NOTE = ("Placeholder data: random arrays shaped like the model's inputs and outputs.",
              "Replace them with your data (npz, npy or csv files; see the README).")
_COMPILE_NOTE = ("Not in the Keras file (the model was saved uncompiled): Keras's default "
                 "optimizer,", "and a loss chosen from each output's activation. Check them.")


@dataclass
class Imported:
    """A Keras model converted: the kconf ``config`` (plain data, keys in writing order),
    where it came from, Keras's names of renamed layers, and comments for the YAML."""

    config: dict[str, Any]
    source: KerasSource
    description: str
    keras_names: dict = field(default_factory=dict)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class ImportResult:
    """What ``import_keras`` wrote: the config, and the weights if there were any."""

    config_file: Path
    weights_file: Path | None
    description: str
    params: int
    arrays: int = 0


def from_keras(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """The kconf config of a Keras model.

    Args:
        source: ``model.to_json()``'s output (a ``.json`` file or the parsed dict; Keras 3
            or Keras 2 format), a ``.keras`` archive, or a Keras 2 whole-model ``.h5``.

    Returns:
        The config as a plain dict (``name``, ``models``, ``model``, ``compile``, ``data``;
        defaults left out), which ``kconf.build_model``/``kconf.load_config`` take as it is
        and ``yaml.safe_dump`` writes.

    Raises:
        ConfigError: every Keras layer, argument or option kconf does not implement, each
            at its place in the Keras JSON (``config.layers[3].config.kernel_regularizer``);
            or a file that is not a Keras model.
    """
    return convert(source).config


def convert(source: str | os.PathLike | Mapping[str, Any]) -> Imported:
    """``from_keras``, keeping what ``import_keras`` also needs (see ``Imported``)."""
    src = read_source(source)
    findings = Findings(src.file)
    kmodel = read_model(src.data, (), findings)
    if kmodel is None:
        findings.check()
    sections = model_sections(kmodel, src.version, findings)
    given = src.data.get("compile_config") or None
    compiled = None
    if given:
        compiled = compile_section(given, sections.output_names, ("compile_config",),
                                   findings)
    findings.check()
    config: dict[str, Any] = {"name": _run_name(kmodel.name)}
    if sections.models:
        config["models"] = sections.models
    config["model"] = sections.model
    notes: dict[str, tuple[str, ...]] = {"data": _DATA_NOTE}
    if compiled is None:
        notes["compile"] = _COMPILE_NOTE
    if compiled is not None and _output_count(config["model"]) == 1:
        compiled = _single_output(compiled)
    config["compile"] = compiled or {"optimizer": "rmsprop", "loss": "mean_squared_error"}
    config["data"] = _provisional_data(config)
    cfg, model = _check(config, src)
    if compiled is None:
        config["compile"] = default_compile([_guess_loss(t) for t in model.graph.outputs])
        cfg, model = _check(config, src)
    config["data"] = placeholder_data(cfg, model)
    _check(config, src)
    version = src.keras_version or str(src.version)
    description = f"Keras {version} {kmodel.kind} model {kmodel.name!r}"
    return Imported(config, src, description, dict(sections.keras_names), notes)


def import_keras(source: str | os.PathLike | Mapping[str, Any], output: str | os.PathLike,
                 weights: str | os.PathLike | None = None,
                 weights_output: str | os.PathLike | None = None) -> ImportResult:
    """Write a Keras model's kconf config, and its weights as kconf's ``weights.npz``.

    Args:
        source: as for ``from_keras``.
        output: the YAML file to write.
        weights: a Keras weights file (``.weights.h5``, a ``.keras`` archive, a Keras 2
            ``.h5``); default: the weights inside ``source``, if any.
        weights_output: the ``.npz`` to write (default: ``output`` with ``.weights.npz``).

    Returns:
        The ``ImportResult``.

    Raises:
        ConfigError: what ``from_keras`` raises; weights that do not fit the model (naming
            each layer); h5py missing.
    """
    from kconf.api import build_model, load_config, model_from_config
    from kconf.keras_io.h5 import read_keras_weights
    from kconf.files import write_atomic
    from kconf.train.runs import save_weights
    from kconf.train.trained import set_named_weights

    imported = convert(source)
    output = Path(output)
    weights_from = weights if weights is not None else imported.source.weights
    npz = None
    arrays = 0
    if weights_from is not None:
        npz = Path(weights_output) if weights_output else output.with_suffix(".weights.npz")
        model = build_model(imported.config)
        label = str(weights) if weights is not None else imported.source.file
        named = read_keras_weights(model, weights_from, imported.keras_names, label)
        set_named_weights(model, named, label)
        output.parent.mkdir(parents=True, exist_ok=True)
        save_weights(npz, named)
        arrays = len(named)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, yaml_text(imported, output, npz))
    cfg = load_config(output)
    params = model_from_config(cfg).count_params()
    return ImportResult(output, npz, imported.description, params, arrays)


def yaml_text(imported: Imported, output: Path | None = None, weights: Path | None = None) -> str:
    """The config as YAML, with the schema line, where it came from, and the notes."""
    header = [f"yaml-language-server: $schema={schema_reference(output)}",
              f"Imported from {Path(imported.source.file).name} "
              f"({imported.description}) by kconf import-keras."]
    if weights is not None:
        header.append(f"Its weights: {weights.name} (kconf evaluate/predict --weights, kconf "
                      "train --init-weights).")
    versioned = {VERSION_KEY: CONFIG_VERSION, **imported.config}  # configs say their version
    return config_yaml(versioned, header, imported.notes)


def schema_reference(output: Path | None) -> str:
    """The path of kconf's JSON Schema relative to the folder of ``output`` (the working
    folder when None), as configs/*.yaml refer to it."""
    schema = Path(__file__).resolve().parents[2] / "schemas" / "kconf.schema.json"
    base = (output.resolve().parent if output is not None else Path.cwd())
    return Path(os.path.relpath(schema, base)).as_posix()


# --- helpers -----------------------------------------------------------------------------------


def _run_name(name: str) -> str:
    """A Keras model name made into a run name (letters, digits, ``_``, ``-``, ``.``)."""
    text = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lstrip(".-")
    return text or "model"


def _check(config: dict[str, Any], src: KerasSource):
    """Validate the converted config and build its graph; problems are kconf's limits
    (a shape a kconf layer refuses), reported against the Keras file."""
    from kconf.api import model_from_config
    from kconf.config import load_config

    try:
        cfg = load_config(config)
        return cfg, model_from_config(cfg)
    except ConfigError as err:
        raise ConfigError([Problem(f"kconf cannot build this model: {p.format()}", (),
                                   SourcePos(src.file)) for p in err.problems],
                          src.file) from None


def _provisional_data(config: dict[str, Any]) -> dict[str, Any]:
    """Data of the right names (shapes come later, from the built model)."""
    model = config["model"]
    if "sequential" in model:
        first = next(iter(model["sequential"][0].values()))
        shape = [d or ANY_SIZE for d in first.get("input_shape") or [1]]
        x: Any = shape
        extra = {"dtype": "int32", "high": 2} if "Embedding" in model["sequential"][0] else {}
        return {"train": {"random": {"samples": 1, "x": x, **extra, "y": [1]}}}
    fn = model["functional"]
    xs = {name: {"shape": [d or ANY_SIZE for d in spec["shape"]],
                 "dtype": spec.get("dtype", "float32"),
                 **({"high": 2} if spec.get("dtype", "float32") != "float32" else {})}
          for name, spec in fn["inputs"].items()}
    ys = {name: [1] for name in fn["outputs"]}
    return {"train": {"random": {"samples": 1, "x": xs, "y": ys}}}


def placeholder_data(cfg, model) -> dict[str, Any]:
    """Random ``train`` and ``test`` data shaped like the model's inputs and outputs: labels
    for a classification loss, uniform values otherwise; integers below the vocabulary for an
    input an Embedding reads."""
    graph = model.graph
    outputs = [t.name for t in graph.outputs]
    losses = cfg.compile.loss_for(outputs, cfg.output_aliases())
    inputs = {t.name: _input_data(t, graph) for t in graph.inputs}
    targets = {name: _target_data(t, loss)
               for name, t, loss in zip(outputs, graph.outputs, losses)}
    args: dict[str, Any] = {}
    if cfg.model.sequential is not None:
        ((spec,),) = [inputs.values()]
        args.update(spec if isinstance(spec, dict) else {"x": spec})
        if isinstance(spec, dict):
            args["x"] = args.pop("shape")
    else:
        args["x"] = inputs
    if len(targets) == 1:
        (target,) = targets.values()
        args.update(target if isinstance(target, dict) else {"y": target})
    else:
        args["y"] = targets
    return {split: {"random": {"samples": n, **args}}
            for split, n in PLACEHOLDER_SAMPLES.items()}


def _fixed(shape) -> list[int]:
    """A shape for random data: ``ANY_SIZE`` for each dimension of any size."""
    return [d if d is not None else ANY_SIZE for d in shape]


def _input_data(tensor, graph) -> Any:
    """A shape, or ``{shape, dtype, high}`` for integer inputs."""
    shape = _fixed(tensor.shape[1:])
    if tensor.dtype == "float32":
        return shape
    return {"shape": shape, "dtype": tensor.dtype, "high": _vocabulary(tensor, graph)}


def _vocabulary(tensor, graph) -> int:
    """The vocabulary of the Embedding that reads an integer input (2 when none does)."""
    from kconf.engine.layers.embedding import Embedding

    for node in graph.nodes:
        layer = getattr(node.layer, "layer", node.layer)  # TimeDistributed(Embedding)
        if isinstance(layer, Embedding) and any(t is tensor for t in node.inputs):
            return layer.input_dim
    return 2


def _target_data(tensor, loss: Any) -> Any:
    """Labels for a classification loss on a vector output, else uniform targets."""
    shape = _fixed(tensor.shape[1:])
    loss = loss_classes.LOSS_CLASSES[loss_class_name(loss)].function  # "mse" or {Class: ...}
    if len(shape) == 1:
        if loss == "categorical_crossentropy" and shape[0] > 1:
            return {"classes": shape[0], "one_hot": True}
        if loss == "sparse_categorical_crossentropy" and shape[0] > 1:
            return {"classes": shape[0]}
        if loss == "binary_crossentropy" and shape[0] == 1:
            return {"classes": 2}
    return shape


def _guess_loss(tensor) -> str:
    """A loss for an output Keras stored none for, from its layer's activation."""
    from kconf.keras_io.converters import activation_name

    layer = tensor.node.layer
    while True:
        inner = getattr(layer, "layer", None)  # TimeDistributed
        graph = getattr(layer, "graph", None)  # a nested model
        if inner is not None:
            layer = inner
        elif graph is not None:
            layer = graph.outputs[tensor.index if len(graph.outputs) > 1 else 0].node.layer
        else:
            break
    activation = getattr(layer, "activation", None)
    name = activation_name(activation) if activation is not None else "linear"
    return {"softmax": "categorical_crossentropy",
            "sigmoid": "binary_crossentropy"}.get(name, "mean_squared_error")


def _output_count(model: dict[str, Any]) -> int:
    """How many outputs a converted ``model`` section has."""
    return 1 if "sequential" in model else len(model["functional"]["outputs"])


def _single_output(section: dict[str, Any]) -> dict[str, Any]:
    """For a model with one output, a loss (and metrics, loss weights) keyed by that output
    written plainly: a Sequential model's output has no name in kconf unless its last layer
    is given one."""
    out = dict(section)
    for key in ("loss", "loss_weights", "metrics"):
        value = out.get(key)
        if isinstance(value, dict) and len(value) == 1 and not (
                key == "loss" and is_loss_class_mapping(value)):  # {Huber: {...}} is one loss
            (only,) = value.values()
            out[key] = [only] if key == "loss_weights" else only
        elif isinstance(value, list) and len(value) == 1 and key == "loss":
            out[key] = value[0]
    if isinstance(out.get("metrics"), (str, dict)):  # a name, or {AUC: {...}}
        out["metrics"] = [out["metrics"]]
    return out
