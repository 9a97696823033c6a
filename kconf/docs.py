"""The config reference (``docs/config-reference.md``), generated from the registries and the
pydantic models, so that it lists exactly what kconf reads: every section, layer, optimizer,
schedule, loss, metric, callback, data source and preprocessing step, with each argument's
type, default and meaning.

    kconf docs                        # writes docs/config-reference.md
    text = reference_markdown()       # the same text

Types come from each model's JSON Schema (the one editors use), defaults from the fields,
meanings from the fields' descriptions, else the glossary below, else nothing; an entry's
one-line meaning is the first sentence of its class's docstring. Layer argument models are
built lazily for configs; here every one of them is.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from pydantic import AliasChoices, BaseModel
from pydantic_core import PydanticUndefined

#: Where ``kconf docs`` writes by default (relative to the working folder).
DEFAULT_OUTPUT = Path("docs/config-reference.md")

#: One-line meanings of arguments that many layers share (a field's description wins).
GLOSSARY = {
    "units": "size of the output's last axis",
    "activation": "activation applied to the output (a name: relu, softmax, ...)",
    "use_bias": "whether the layer adds a bias vector",
    "kernel_initializer": "initializer of the kernel weights",
    "bias_initializer": "initializer of the bias",
    "recurrent_initializer": "initializer of the recurrent kernel",
    "kernel_regularizer": "penalty on the kernel added to the loss",
    "bias_regularizer": "penalty on the bias added to the loss",
    "activity_regularizer": "penalty on the output added to the loss",
    "kernel_constraint": "constraint applied to the kernel after each update",
    "bias_constraint": "constraint applied to the bias after each update",
    "filters": "number of output channels",
    "kernel_size": "size of the convolution window",
    "strides": "step of the window",
    "padding": "valid (no padding) or same (output as large as the input / strides)",
    "dilation_rate": "spacing between the window's taps",
    "groups": "number of channel groups convolved separately",
    "pool_size": "size of the pooling window",
    "rate": "fraction of the inputs dropped while training",
    "noise_shape": "shape of the dropout mask, batch axis first (null: the input's size); "
                   "a 1 shares one draw along that axis",
    "axis": "the axis (or axes) it works along",
    "axes": "the axes it works along",
    "epsilon": "small number added to denominators",
    "momentum": "momentum of the updates",
    "return_sequences": "return the output of every step, not only the last",
    "return_state": "also return the final state(s)",
    "go_backwards": "read the sequence backwards",
    "stateful": "keep the state from one batch to the next",
    "dropout": "fraction of the inputs dropped while training",
    "recurrent_dropout": "fraction of the recurrent state dropped while training",
    "learning_rate": "step size: a number or a schedule ({ExponentialDecay: {...}})",
    "decay": "Keras 2's time-based decay: lr / (1 + decay * step) (version 0)",
    "monitor": "the logged quantity to watch (val_loss, accuracy, ...)",
    "mode": "min, max or auto (from the quantity's name)",
    "patience": "epochs without improvement before acting",
    "min_delta": "smallest change that counts as an improvement",
    "from_logits": "whether predictions are logits rather than probabilities",
    "reduction": "how per-sample losses are combined",
    "dtype": "element type",
    "seed": "seed of the random numbers",
    "path": "file path, relative to the config's folder",
    "name": "the name it is logged under (default: Keras's)",
    "x": "the inputs: array name(s), file(s) or column(s), one per model input",
    "y": "the targets: array name(s), file(s) or column(s), one per model output",
    "samples": "number of samples",
    "beta_1": "decay rate of the first-moment (mean) estimates",
    "beta_2": "decay rate of the second-moment (variance) estimates",
    "rho": "decay rate of the moving average of squared gradients",
    "amsgrad": "use the maximum of past second moments (AMSGrad)",
    "centered": "normalize by the gradient's estimated variance",
    "nesterov": "use Nesterov momentum",
    "initial_accumulator_value": "starting value of the accumulators",
    "weight_decay": "decoupled weight decay applied at each step",
    "clipnorm": "clip each gradient to this norm",
    "clipvalue": "clip each gradient's values to [-clipvalue, clipvalue]",
    "global_clipnorm": "clip all gradients together to this global norm",
    "ema_overwrite_frequency": "every how many steps the weights are replaced by their "
                               "moving average",
    "loss_scale_factor": "the loss is multiplied by it, the gradients divided by it",
    "gradient_accumulation_steps": "batches whose gradients are summed into one update",
    "initial_learning_rate": "the learning rate at step 0",
    "decay_steps": "steps over which the rate decays",
    "decay_rate": "the decay factor",
    "staircase": "decay in whole steps of decay_steps",
    "label_smoothing": "fraction of the label mass spread over the classes",
    "ignore_class": "a label whose samples count for nothing",
    "class_id": "the class the metric is computed for",
    "num_thresholds": "number of thresholds the curve is computed at",
    "thresholds": "prediction thresholds above which a sample counts as positive",
    "top_k": "count only the k highest predictions",
    "k": "how many of the highest predictions count",
    "num_classes": "number of classes",
    "baseline": "a value the quantity must beat",
    "restore_best_weights": "end with the weights of the best epoch",
    "start_from_epoch": "epochs to wait before watching",
    "factor": "the learning rate is multiplied by it",
    "cooldown": "epochs to wait after a reduction",
    "min_lr": "lower bound of the learning rate",
    "save_best_only": "save only when the quantity improves",
    "separator": "column separator",
    "append": "append to an existing file",
    "keepdims": "keep the reduced axes (as size 1)",
    "depthwise_initializer": "initializer of the depthwise kernel",
    "pointwise_initializer": "initializer of the pointwise kernel",
    "depth_multiplier": "output channels per input channel of the depthwise step",
    "gamma_initializer": "initializer of the scale (gamma)",
    "beta_initializer": "initializer of the offset (beta)",
    "moving_mean_initializer": "initializer of the moving mean",
    "moving_variance_initializer": "initializer of the moving variance",
    "center": "add a learned offset (beta)",
    "embeddings_initializer": "initializer of the embedding matrix",
    "output_dim": "size of each embedding vector",
    "mask_zero": "index 0 is padding and masked",
    "recurrent_activation": "activation of the gates",
    "unit_forget_bias": "start the forget gate's bias at 1",
    "reset_after": "apply the reset gate after the matrix product (Keras 3's default)",
    "zero_output_for_mask": "masked steps output zeros (else the previous output)",
    "output_padding": "extra size added to one side of the output",
    "target_shape": "the shape of one output sample",
    "dims": "the permutation of a sample's axes, counted from 1",
    "n": "number of repetitions",
    "size": "the upsampling factor",
    "cropping": "how much is cut at each end",
    "height": "output height",
    "width": "output width",
    "num_heads": "number of attention heads",
    "key_dim": "size of each head for query and key",
    "value_dim": "size of each head for value (default key_dim)",
    "use_scale": "learn a scale of the scores",
    "mask_value": "the value that marks a step as masked",
    "merge_mode": "how the forward and backward outputs are combined",
    "layer": "the wrapped layer",
    "backward_layer": "the layer run backwards (default: a copy of layer)",
    "stddev": "standard deviation of the noise",
    "l1": "L1 penalty factor",
    "l2": "L2 penalty factor",
    "offset": "added after scaling",
    "max_value": "upper bound of the output",
    "negative_slope": "slope of the negative part",
    "shared_axes": "axes along which alpha is shared",
    "alpha_initializer": "initializer of alpha",
    "init_values": "starting value of the scale",
    "projection_dim": "size of the scaled axis",
    "mean": "the mean to subtract (default: learned by adapt)",
    "variance": "the variance to divide by (default: learned by adapt)",
    "invert": "undo the normalization instead",
    "height_factor": "fraction of the height it may change by",
    "width_factor": "fraction of the width it may change by",
    "fill_value": "the value of filled pixels",
    "value_range": "the range of pixel values",
    "crop_to_aspect_ratio": "crop to the target aspect ratio before resizing",
}

#: Meanings of the arguments every layer takes, and of the Keras 2 shape shortcuts (only in
#: the layers that have them: Embedding's ``input_dim`` is its vocabulary size).
LAYER_GLOSSARY = {
    **GLOSSARY,
    "name": "the layer's name (in summaries, weights and graph lines)",
    "trainable": "whether the layer's weights are trained",
    "momentum": "momentum of the moving statistics",
    "input_shape": "shape of one sample, without the batch axis (first layer only)",
    "batch_size": "fixed batch size of the input (first layer only)",
    "batch_input_shape": "shape of the input with the batch axis (first layer only)",
}
SHORTCUTS = {
    "input_dim": "Keras 2 shortcut for input_shape: [input_dim] (version 0; kconf upgrade "
                 "rewrites it)",
    "input_length": "Keras 2 shortcut for the number of steps (version 0; kconf upgrade "
                    "rewrites it)",
}

#: Meanings of the sections' fields that carry no description.
SECTION_MEANINGS = {
    "model": "the model: sequential or functional (see `model`)",
    "compile": "optimizer, loss and metrics (see `compile`)",
    "data": "the data of each split (see `data`)",
    "fit": "how to train (see `fit`)",
    "seed": "seed of every random number: weights, shuffling, dropout, random data",
    "epochs": "passes over the training data",
    "batch_size": "samples per gradient step",
    "shuffle": "shuffle the training samples every epoch",
    "validation": "the validation data's source",
    "test": "the test data's source",
    "dtype": "element type",
}


def reference_markdown() -> str:
    """The whole reference as Markdown text (deterministic: the same kconf gives the same
    text)."""
    from kconf.config.callbacks import CALLBACK_SPECS
    from kconf.config.compile import OPTIMIZER_SPECS, SCHEDULE_SPECS, CompileConfig
    from kconf.config.optimizers import OptimizerOptions
    from kconf.config.data import DATA_SOURCES, PREPROCESS_STEPS, DataConfig, SplitConfig
    from kconf.config.functional import FunctionalConfig, InputConfig
    from kconf.config.objectives import LOSS_NAMES, METRIC_NAMES
    from kconf.config.run import FitConfig, ModelConfig, ModelEntry, RunConfig
    from kconf.config.version import CONFIG_VERSION
    from kconf.args.layer import COMMON_FIELDS
    from kconf.args.names import ACTIVATION_NAMES, INITIALIZER_NAMES
    from kconf.engine import loss_classes, metric_classes
    from kconf.engine.layers import REGISTRY

    out = [
        "# kconf config reference",
        "",
        "<!-- Generated by `kconf docs` from kconf's registries and schema; do not edit. -->",
        "",
        "A config is a YAML mapping of the sections below. Types are those of the JSON "
        "Schema (`schemas/kconf.schema.json`); a default of *required* means the key must be "
        "given.",
        "",
        "## The config language",
        "",
        f"- `kconf: {CONFIG_VERSION}`: the version of the config language. Optional "
        "(missing means the current version); every command that writes a config writes "
        "it. `kconf upgrade FILE [--write]` rewrites an older file (version 0: Keras 2's "
        "`lr`, `decay`, `input_dim`/`input_length`, LeakyReLU's `alpha`). A newer version "
        "than this kconf reads is refused.",
        "- `include: [base.yaml, optim/adamw.yaml]`: files (relative to the including file, "
        "which may include others) merged in order, the file's own keys last: mappings are "
        "merged key by key, lists and other values replaced. Command-line overrides apply "
        "after. Errors point into the file that wrote the value.",
        "- `${fit.batch_size}`: the value at a config path (list items as `.0` or `[0]`), "
        "as written after includes and overrides (not defaults). Alone it keeps the "
        "value's type; inside text it is written as text. `${env:NAME}` and "
        "`${env:NAME,default}` read an environment variable (alone, a number or true/false "
        "is read as one). `$${` writes a literal `${`. Inside YAML's flow style (`{...}`, "
        "`[...]`) quote it: `{epochs: '${fit.batch_size}'}`.",
        "",
        "## Sections",
        "",
    ]
    for title, model in (("Top level", RunConfig), ("model", ModelConfig),
                         ("models.NAME", ModelEntry), ("model.functional", FunctionalConfig),
                         ("model.functional.inputs.NAME", InputConfig),
                         ("compile", CompileConfig), ("data", DataConfig),
                         ("data.split", SplitConfig), ("fit", FitConfig)):
        out += _entry(f"`{title}`" if title != "Top level" else title, model, level=3,
                      glossary=SECTION_MEANINGS)
    layers = {name: e.args for name, e in REGISTRY.items() if e.args is not None}
    out += ["## Layers", "",
            "Written `{ClassName: {arguments}}`, one per item of `model.sequential` or per "
            "name of `model.functional.layers`. Every layer also takes:", ""]
    any_layer = next(iter(layers.values()))
    out += _table(any_layer, only=COMMON_FIELDS, glossary=LAYER_GLOSSARY)
    for name, args in layers.items():
        shortcuts = {f: SHORTCUTS[f] for f in getattr(args, "shape_shortcuts", ())
                     if f in SHORTCUTS}
        out += _entry(name, args, level=3, skip=COMMON_FIELDS,
                      doc=_first_sentence(REGISTRY[name].layer) or _first_sentence(args),
                      glossary={**LAYER_GLOSSARY, **shortcuts})
    out += ["## Optimizers", "",
            "`compile.optimizer`: a name (`sgd`, `adam`, ...) or `{ClassName: {arguments}}`. "
            "Every optimizer also takes Keras's options:", ""]
    out += _table(OptimizerOptions)
    options = tuple(OptimizerOptions.model_fields)
    for name, spec in OPTIMIZER_SPECS.items():
        out += _entry(name, _args(spec, name), level=3, skip=options)
    out += _registry("Learning-rate schedules", "`learning_rate: {ClassName: {arguments}}` "
                     "of any optimizer.", SCHEDULE_SPECS)
    out += ["## Losses", "", "`compile.loss`: a name, or `{ClassName: {arguments}}`. Names: "
            + _names(LOSS_NAMES) + ".", ""]
    for name, cls in loss_classes.LOSS_CLASSES.items():
        out += _entry(name, cls.Args, level=3, doc=_first_sentence(cls) or None)
    out += ["## Metrics", "", "`compile.metrics`: names, `{ClassName: {arguments}}`, or an "
            "import path `package.module:function`. Names: " + _names(METRIC_NAMES) + ".", ""]
    for name, cls in metric_classes.METRIC_CLASSES.items():
        out += _entry(name, cls.Args, level=3, doc=_first_sentence(cls) or None)
    out += _registry("Callbacks", "`fit.callbacks`: a list of `{ClassName: {arguments}}`.",
                     CALLBACK_SPECS)
    out += _registry("Data sources", "`data.train`, `data.validation`, `data.test`, "
                     "`data.source`: `{kind: {arguments}}`.", DATA_SOURCES)
    out += _registry("Preprocessing steps", "`data.preprocess`: a list of "
                     "`{step: {arguments}}`, applied in order.", PREPROCESS_STEPS)
    out += ["## Names", "",
            "- Activations: " + _names(ACTIVATION_NAMES) + ".",
            "- Initializers: " + _names(INITIALIZER_NAMES) + ".", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def write_reference(path: str | os.PathLike = DEFAULT_OUTPUT) -> None:
    """Write ``reference_markdown()`` to ``path`` (its folder must exist)."""
    from kconf.files import write_atomic

    write_atomic(path, reference_markdown())


# --- pieces ------------------------------------------------------------------------------------


def _registry(title: str, intro: str, specs: Mapping[str, type[BaseModel]]) -> list[str]:
    """A section for a registry of ``{Tag: {args}}`` wrappers."""
    out = [f"## {title}", "", intro, ""]
    for name, spec in specs.items():
        out += _entry(name, _args(spec, name), level=3, doc=_first_sentence(spec) or None)
    return out


def _args(spec: type[BaseModel], name: str) -> type[BaseModel]:
    """The arguments model of a ``{name: args}`` wrapper."""
    return spec.model_fields[name].annotation


def _entry(title: str, model: type[BaseModel], level: int, skip: Iterable[str] = (),
           doc: str | None = None, glossary: Mapping[str, str] = GLOSSARY) -> list[str]:
    """A heading, the one-line meaning, and the table of arguments."""
    out = [f"{'#' * level} {title}", ""]
    meaning = doc if doc is not None else _first_sentence(model)
    if meaning:
        out += [meaning, ""]
    return out + _table(model, skip=tuple(skip), glossary=glossary)


def _table(model: type[BaseModel], skip: tuple[str, ...] = (),
           only: tuple[str, ...] | None = None,
           glossary: Mapping[str, str] = GLOSSARY) -> list[str]:
    """The arguments of ``model`` as a Markdown table (a line saying there are none)."""
    schema = model.model_json_schema(mode="validation")
    defs = schema.get("$defs", {})
    props = schema.get("properties", {})
    rows = []
    for name, info in model.model_fields.items():
        if name in skip or (only is not None and name not in only):
            continue
        shown = f"`{name}`"
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            others = [c for c in alias.choices if isinstance(c, str) and c != name]
            if others:
                shown += " (also " + ", ".join(f"`{o}`" for o in others) + ")"
        kind = _type(props.get(name, {}), defs)
        meaning = info.description or glossary.get(name, "")
        rows.append(f"| {shown} | {_cell(kind)} | {_cell(_default(info))} | "
                    f"{_cell(meaning)} |")
    if not rows:
        return ["No arguments.", ""]
    return ["| argument | type | default | meaning |", "|---|---|---|---|", *rows, ""]


def _default(info: Any) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "*required*"
    value = info.default_factory() if info.default is PydanticUndefined else info.default
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    return f"`{_yaml(value)}`"


def _yaml(value: Any) -> str:
    """A value in YAML flow style."""
    from kconf.keras_io.yaml_text import flow

    return flow(value)


def _type(prop: Mapping[str, Any], defs: Mapping[str, Any], depth: int = 0) -> str:
    """A short type from a JSON Schema fragment: ``integer >= 1``, ``relu | tanh``..."""
    if "$ref" in prop:
        target = defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
        if depth > 1 or "properties" in target:
            return _mapping_name(target)
        return _type(target, defs, depth + 1)
    if "enum" in prop:
        names = [_yaml(v) for v in prop["enum"]]
        return " \\| ".join(names) if len(names) <= 8 else "a name"
    if "const" in prop:
        return _yaml(prop["const"])
    if "anyOf" in prop or "oneOf" in prop:
        parts: list[str] = []
        tags: list[str] = []
        for option in _options(prop):
            tag = _spec_tag(option, defs)
            if tag is not None:
                tags.append(tag)
            elif (text := _type(option, defs, depth + 1)) not in parts:
                parts.append(text)
        if tags:
            parts.append("{" + (tags[0] if len(tags) == 1 else "ClassName") + ": {...}}")
        return " or ".join(parts)
    kind = prop.get("type")
    if kind == "array":
        if "prefixItems" in prop:
            return "[" + ", ".join(_type(p, defs, depth + 1) for p in prop["prefixItems"]) + "]"
        return "list of " + _type(prop.get("items", {}), defs, depth + 1)
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict):
            return "mapping of name to " + _type(extra, defs, depth + 1)
        return _mapping_name(prop)
    if kind in ("integer", "number"):
        return kind + _bounds(prop)
    if isinstance(kind, list):
        return " or ".join(kind)
    return kind or "any"


def _options(prop: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The alternatives of an ``anyOf``/``oneOf``, nested ones flattened."""
    found = []
    for option in prop.get("anyOf", prop.get("oneOf", [])):
        found += _options(option) if ("anyOf" in option or "oneOf" in option) else [option]
    return found


def _spec_tag(option: Mapping[str, Any], defs: Mapping[str, Any]) -> str | None:
    """The tag of a ``{Tag: {args}}`` wrapper the option refers to (None for others)."""
    if "$ref" not in option:
        return None
    target = defs.get(option["$ref"].rsplit("/", 1)[-1], {})
    props = target.get("properties", {})
    if len(props) == 1 and target.get("title", "").endswith("Spec"):
        return next(iter(props))
    return None


def _mapping_name(schema: Mapping[str, Any]) -> str:
    """A mapping by its title: ``{Dense: ...}`` for a one-key wrapper, else ``mapping``."""
    props = schema.get("properties", {})
    if len(props) == 1 and schema.get("title", "").endswith("Spec"):
        return "{" + next(iter(props)) + ": {...}}"
    return "mapping"


def _bounds(prop: Mapping[str, Any]) -> str:
    parts = []
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                      ("exclusiveMaximum", "<")):
        if key in prop:
            parts.append(f"{sign} {_yaml(prop[key])}")
    return (" " + ", ".join(parts)) if parts else ""


def _first_sentence(obj: Any) -> str:
    """The first sentence of an object's own docstring, in Markdown (empty when none)."""
    doc = obj.__dict__.get("__doc__") if hasattr(obj, "__dict__") else None
    if not doc:
        return ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    match = re.match(r"(.+?)(;\s|\.\s+(?=[A-Z`])|\.?$)", paragraph)
    sentence = (match.group(1) if match else paragraph).rstrip(".") + "."
    return sentence.replace("``", "`")


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _cell(text: str) -> str:
    """Text for a table cell: one line, ``|`` escaped (already-escaped ones kept)."""
    text = " ".join(str(text).split()).replace("``", "`")
    return re.sub(r"(?<!\\)\|", r"\\|", text)


def check_current(path: str | os.PathLike = DEFAULT_OUTPUT) -> bool:
    """Whether the file at ``path`` is what ``kconf docs`` would write now."""
    try:
        return Path(path).read_text(encoding="utf-8") == reference_markdown()
    except OSError:
        return False


__all__ = ["DEFAULT_OUTPUT", "check_current", "reference_markdown", "write_reference"]
