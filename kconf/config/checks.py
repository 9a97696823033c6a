"""Checks across sections, after the schema: names in graphs, models, losses and data.

The schema validates each value on its own; what needs the whole config (is this tensor
defined? does this loss name an output?) or a position inside a graph line is checked here,
and reported like every other problem: file:line:col, config path, message.

Graph lines are checked in order: an argument refers to the latest binding of its name on
an *earlier* line (targets may be rebound, as the Python examples reuse ``x``). A name that
only a later line (or the line itself) binds is "used before it is defined"; this rule also
makes a cycle impossible, so a cycle is reported as a use before definition.

``models`` entries with ``file`` are loaded here (relative to the config's folder; that
file's ``model`` section is the model and its ``models`` section the models it may call),
with their problems located in that file.
"""
from __future__ import annotations

import graphlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from kconf.config.compile import CompileConfig
from kconf.config.data import DataConfig
from kconf.args.fields import ConfigModel, Name
from kconf.text import suggest
from kconf.config.functional import FunctionalConfig, graph_part_position
from kconf.config.layers import LAYER_SPECS, LayerSpecBase
from kconf.engine.layers import REGISTRY
from kconf.engine.layers.time_distributed import TimeDistributedArgs
from kconf.args.names import MERGE_HELPERS
from kconf.config.loader import FileKind, validate_yaml
from kconf.config.run import ModelConfig, ModelEntry, NamedModel, RunConfig
from kconf.config.source import DICT_FILE, OVERRIDE_FILE, Source, parse_yaml
from kconf.errors import UNREADABLE, ConfigPath, Problem

_MODELS = TypeAdapter(dict[Name, ModelEntry])


@dataclass
class CheckResult:
    """What the checks found: problems and the resolved ``models``."""

    problems: list[Problem] = field(default_factory=list)
    named: dict[str, NamedModel] = field(default_factory=dict)


def check_config(config: RunConfig, source: Source) -> CheckResult:
    """Every cross-section check of a validated config.

    Args:
        config: the validated config.
        source: where its values sit.

    Returns:
        The problems (unsorted) and the resolved named models.
    """
    return _check(config.model, config.models, config.compile, config.data, source)


def check_sections(data: dict[str, Any], source: Source) -> list[Problem]:
    """The cross-section checks of the sections that are valid on their own.

    Used when the whole config did not validate, so that every problem is still reported at
    once: a graph's unknown tensor is found even when ``fit.epochs`` is wrong.

    Args:
        data: the raw config data.
        source: where its values sit.

    Returns:
        The problems found (the sections' own errors are not repeated).
    """
    def valid(validate, key, default=None):
        if key not in data:
            return default
        try:
            return validate(data[key])
        except ValidationError:
            return None

    model = valid(ModelConfig.model_validate, "model")
    models = valid(_MODELS.validate_python, "models", {})
    if models is None:  # reported; without the models, graphs' names cannot be checked
        return []
    compile_ = valid(CompileConfig.model_validate, "compile")
    data_ = valid(DataConfig.model_validate, "data")
    return _check(model, models, compile_, data_, source).problems


def _check(model: ModelConfig | None, models: Mapping[str, ModelEntry],
           compile_: CompileConfig | None, data: DataConfig | None,
           source: Source) -> CheckResult:
    result = CheckResult()
    stack = [_identity(source)] if source.file not in (DICT_FILE, OVERRIDE_FILE) else []
    result.problems, result.named = _check_scope(model, models, source, stack)
    if model is None:
        return result
    io = _ModelIO.of(model)
    if compile_ is not None:
        result.problems += _check_compile(compile_, io, source)
    if data is not None:
        result.problems += _check_data(data, io, source)
    return result


# --- models and their scopes ------------------------------------------------------------------


def _identity(source: Source) -> Path:
    return Path(source.file).resolve()


def _check_scope(model: ModelConfig | None, entries: Mapping[str, ModelEntry], source: Source,
                 stack: list[Path]) -> tuple[list[Problem], dict[str, NamedModel]]:
    """Load the ``file`` entries of one file's ``models``, check each model of the file."""
    problems: list[Problem] = []
    named: dict[str, NamedModel] = {}
    for name, entry in entries.items():
        if entry.file is None:
            named[name] = NamedModel(name, entry, source, ("models", name), named)
            continue
        loaded = _load_model_file(entry.file, ("models", name, "file"), source, stack)
        problems += loaded.problems
        if loaded.config is not None:
            named[name] = NamedModel(name, loaded.config, loaded.source, ("model",),
                                     loaded.named)
    names = list(entries)
    for name in names:
        if name in MERGE_HELPERS:
            problems.append(Problem(
                f"{name!r} is the name of a helper (the merge layer {MERGE_HELPERS[name]}); "
                "give the model another name", ("models", name),
                source.locate_key(("models", name))))
    uses: dict[str, set[str]] = {}
    for name, entry in entries.items():
        if entry.file is None:
            found, uses[name] = _check_model(entry, names, source, ("models", name))
            problems += found
    if model is not None:
        problems += _check_model(model, names, source, ("model",))[0]
    problems += _cycles(uses, source)
    return problems, named


@dataclass
class _Loaded:
    config: ModelConfig | None
    source: Source | None
    named: dict[str, NamedModel]
    problems: list[Problem]


class _ModelFile(ConfigModel):
    """The part of another config file that makes a named model; other sections are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model: ModelConfig
    models: dict[Name, ModelEntry] = Field(default_factory=dict)


def _model_file(shown: str) -> FileKind[_ModelFile]:
    """Another config file, read for its model; messages name it as the config does."""
    text = f"{shown} must be a config with a model section"
    return FileKind(_ModelFile, empty=text, not_mapping=text)


def _load_model_file(file: str, path: ConfigPath, source: Source,
                     stack: list[Path]) -> _Loaded:
    """Read and check the model of another config file (relative to ``source``'s folder)."""
    target = Path(file) if Path(file).is_absolute() else source.base_dir / file
    shown = file
    if source.file not in (DICT_FILE, OVERRIDE_FILE) and not Path(file).is_absolute():
        shown = os.path.normpath(os.path.join(os.path.dirname(source.file), file))
    at = source.locate(path)

    def fail(message: str) -> _Loaded:
        return _Loaded(None, None, {}, [Problem(message, path, at, UNREADABLE)])

    identity = target.resolve()
    if identity in stack:
        chain = " -> ".join([*(p.name for p in stack[stack.index(identity):]), target.name])
        return _Loaded(None, None, {}, [Problem(
            f"{shown} includes itself ({chain}); a model file cannot use itself", path, at)])
    try:
        if target.is_dir():
            return fail(f"{shown} is a directory, not a config file")
        text = target.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return fail(f"model file not found: {shown}")
    except UnicodeDecodeError as err:
        return fail(f"{shown} is not UTF-8 text (byte {err.start} cannot be decoded)")
    except OSError as err:
        return fail(f"{shown} cannot be read: {err.strerror or err}")
    validated = validate_yaml(parse_yaml(text, shown, identity.parent), _model_file(shown))
    doc, other, problems = validated.config, validated.source, list(validated.problems)
    if doc is None:
        return _Loaded(None, other, {}, problems)
    found, named = _check_scope(doc.model, doc.models, other, [*stack, identity])
    problems += found
    return _Loaded(None if problems else doc.model, other, named, problems)


def _cycles(uses: dict[str, set[str]], source: Source) -> list[Problem]:
    """A model that uses itself, directly or through others, as one problem."""
    graph = {name: {u for u in used if u in uses} for name, used in uses.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        cycle = list(reversed(err.args[1]))
        first = cycle[0]
        return [Problem(f"model {first!r} uses itself: {' -> '.join(cycle)}", ("models", first),
                        source.locate_key(("models", first)))]
    return []


def _check_model(model: ModelConfig, models: Sequence[str], source: Source,
                 prefix: ConfigPath) -> tuple[list[Problem], set[str]]:
    """The problems of one model and the models it uses."""
    problems: list[Problem] = []
    uses: set[str] = set()
    if model.sequential is not None:
        for i, spec in enumerate(model.sequential):
            path = (*prefix, "sequential", i, spec.tag)
            problems += _check_wrapped(spec, path, models, source, uses)
    if model.functional is not None:
        problems += _check_functional(model.functional, models, source,
                                      (*prefix, "functional"), uses)
    return problems, uses


def _check_wrapped(spec: LayerSpecBase, path: ConfigPath, models: Sequence[str],
                   source: Source, uses: set[str]) -> list[Problem]:
    """The models that TimeDistributed layers (nested ones too) name must exist."""
    args = spec.args
    if not isinstance(args, TimeDistributedArgs):
        return []
    path = (*path, "layer")
    if isinstance(args.layer, LayerSpecBase):
        return _check_wrapped(args.layer, (*path, args.layer.tag), models, source, uses)
    if args.layer in models:
        uses.add(args.layer)
        return []
    return [Problem(_unknown_model(args.layer, models), path, source.locate(path))]


def _unknown_model(name: str, models: Sequence[str]) -> str:
    if not models:
        return (f"unknown model {name!r}: no models section defines it (wrap a layer, like "
                "{Dense: {units: 10}}, or define the model under models)")
    close = suggest(name, models)
    hint = f" (did you mean {close!r}?)" if close else f"; models: {', '.join(models)}"
    return f"unknown model {name!r}{hint}"


# --- a functional model's names ---------------------------------------------------------------


def _check_functional(fn: FunctionalConfig, models: Sequence[str], source: Source,
                      prefix: ConfigPath, uses: set[str]) -> list[Problem]:
    """Names in a functional model: declared once, defined before use, all used."""
    problems: list[Problem] = []
    inputs, layers = fn.inputs, fn.layers

    def key_problem(section: str, name: str, message: str) -> None:
        path = (*prefix, section, name)
        problems.append(Problem(message, path, source.locate_key(path)))

    used_inputs: set[str] = set()
    called: set[str] = set()
    for name in inputs:
        if name in MERGE_HELPERS:
            key_problem("inputs", name, f"{name!r} is the name of a helper (the merge layer "
                                        f"{MERGE_HELPERS[name]}); give the input another name")
        elif name in models:
            key_problem("inputs", name, f"{name!r} names both an input and a model "
                                        f"(models.{name}); give each its own name")
    for name, spec in layers.items():
        if name in inputs:
            key_problem("layers", name, f"{name!r} names both an input and a layer; give each "
                                        "its own name")
        elif name in models:
            key_problem("layers", name, f"{name!r} names both a layer and a model "
                                        f"(models.{name}); give each its own name")
        elif name in MERGE_HELPERS:
            key_problem("layers", name, f"{name!r} is the name of a helper (the merge layer "
                                        f"{MERGE_HELPERS[name]}); give the layer another name")
            called.add(name)  # calls of the name are the helper's: one problem is enough
        if spec.args.name is not None:
            path = (*prefix, "layers", name, spec.tag, "name")
            problems.append(Problem(f"a functional model's layer is named by its key "
                                    f"({name!r}); remove name", path, source.locate_key(path)))
        problems += _check_wrapped(spec, (*prefix, "layers", name, spec.tag), models, source,
                                   uses)

    first_binding: dict[str, int] = {}
    for i, call in enumerate(fn.graph):
        for target in call.targets:
            first_binding.setdefault(target, i)
    defined: dict[str, int] = {name: -1 for name in inputs}  # name -> line of latest binding
    suggested: set[str | None] = set()  # layers a misspelt call probably meant

    for i, call in enumerate(fn.graph):
        line = (*prefix, "graph", i)

        def at(part: Any, message: str) -> None:
            problems.append(Problem(message, line, graph_part_position(source, line, call, part)))

        if call.helper is None:
            callee = call.callee
            if callee in layers:
                called.add(callee)
            elif callee in models:
                uses.add(callee)
            else:
                at("callee", _not_a_layer(callee, layers, models, defined, first_binding))
                suggested.add(suggest(callee, [*layers, *models, *MERGE_HELPERS]))
        tensor_args = [(("arg", k), arg) for k, arg in enumerate(call.args)]
        tensor_args += [(("kwarg", k), kw.tensor) for k, kw in enumerate(call.keywords)
                        if kw.tensor is not None]
        tensor_args += [(("kwlist", (k, j)), name) for k, kw in enumerate(call.keywords)
                        for j, name in enumerate(kw.tensors)]
        for part, arg in tensor_args:
            if arg in defined:
                if defined[arg] == -1:
                    used_inputs.add(arg)
            elif arg in first_binding:
                where = _line_name(source, (*prefix, "graph", first_binding[arg]),
                                   first_binding[arg])
                at(part, f"{arg!r} is used before it is defined ({where} defines it)")
            elif arg in layers or arg in models:
                kind = "layer" if arg in layers else "model"
                at(part, f"{arg!r} is a {kind}, not a tensor: call it on a tensor "
                         f"(`y = {arg}(x)`)")
            else:
                at(part, _unknown_tensor(arg, defined))
        if call.helper is None and (call.keywords or call.callee in layers):
            for part, message in _call_problems(call, layers, models):
                at(part, message)
        for k, target in enumerate(call.targets):
            # A result may share its layer's name (the docs' `main_output = Dense(...,
            # name='main_output')(x)`): callees are layers, arguments are tensors.
            if target in inputs:
                at(("target", k), f"{target!r} is an input; give the result another name")
            elif target in call.targets[:k]:
                at(("target", k), f"{target!r} is assigned twice on this line")
        for target in call.targets:
            defined[target] = i

    listed: set[str] = set()
    for k, name in enumerate(fn.outputs):
        path = (*prefix, "outputs", k)
        pos = source.locate(path)
        if name in listed:
            problems.append(Problem(f"output {name!r} is listed twice", path, pos))
        listed.add(name)
        if name in defined:
            if defined[name] == -1:
                used_inputs.add(name)
        elif name in layers or name in models:
            problems.append(Problem(_layer_as_output(name, fn), path, pos))
        else:
            problems.append(Problem(_unknown_output(name, defined), path, pos))

    for name in inputs:
        if name not in used_inputs:
            key_problem("inputs", name, f"input {name!r} is not used by any graph line")
    for name in layers:
        if name not in called and name not in suggested:
            key_problem("layers", name, f"layer {name!r} is declared but no graph line "
                                        "calls it")
    return problems


def _call_problems(call, layers: Mapping[str, Any],
                   models: Sequence[str]) -> list[tuple[Any, str]]:
    """What is wrong with how a line calls a layer that takes named tensors or options
    (``mha(query=x, value=y, use_causal_mask=True)``), or with keywords given to a layer or
    a model that takes none: ``(part of the line, message)`` pairs."""
    callee = call.callee
    if callee in models and callee not in layers:
        return [(("keyword", 0), f"{callee!r} is a model: call it on its input tensors by "
                                 "position, without keywords")]
    if callee not in layers:
        return []  # an unknown callee is reported already
    class_name = layers[callee].class_name
    signature = REGISTRY[class_name].layer.call_signature
    if signature is None:
        if not call.keywords:
            return []
        return [(("keyword", 0), f"{callee} ({class_name}) takes its tensors by position and "
                                 "no keyword arguments; give a layer's arguments under "
                                 "layers:")]
    problems: list[tuple[Any, str]] = []
    what = f"{callee} ({class_name})"
    known = [*signature.tensors, *signature.tensor_lists, *signature.options]
    if len(call.args) > len(signature.tensors):
        problems.append((("arg", len(signature.tensors)),
                         f"{what} takes at most {len(signature.tensors)} tensors by position "
                         f"({', '.join(signature.tensors)})"))
    named = {}
    for k, kw in enumerate(call.keywords):
        part = ("keyword", k)
        if kw.key not in known:
            close = suggest(kw.key, known)
            hint = f" (did you mean {close!r}?)" if close else ""
            problems.append((part, f"{what} takes the keywords {', '.join(known)}, not "
                                   f"{kw.key!r}{hint}"))
        elif kw.key in signature.tensor_lists:
            if not kw.tensors:
                shown = kw.tensor if kw.tensor is not None else kw.value
                problems.append((part, f"{kw.key} is a list of tensors ({kw.key}=[h, c]), "
                                       f"got {shown!r}"))
        elif kw.tensors:
            one = "tensor" if kw.key in signature.tensors else "value"
            problems.append((part, f"{kw.key} takes one {one}, not a list"))
        elif kw.key in signature.tensors:
            if kw.tensor is None:
                problems.append((part, f"{kw.key} is a tensor: give a tensor's name "
                                       f"({kw.key}=x), not {kw.value!r}"))
            elif signature.tensors.index(kw.key) < len(call.args):
                problems.append((part, f"{kw.key} is given twice, by position and by "
                                       "keyword"))
            else:
                named[kw.key] = kw.tensor
        else:
            kind = signature.options[kw.key]
            ok = kw.tensor is None and isinstance(kw.value, kind) and (
                kind is bool or not isinstance(kw.value, bool))
            if not ok:
                shown = kw.tensor if kw.tensor is not None else kw.value
                words = "True or False" if kind is bool else f"an {kind.__name__}"
                problems.append((part, f"{kw.key} is {words}, got {shown!r}"))
    if not problems:
        try:
            signature.arrange(list(call.args), named)
        except ValueError:
            given = [*signature.tensors[:len(call.args)], *named]
            missing = [t for t in signature.tensors[:signature.required] if t not in given]
            what_missing = " and ".join(missing) or "the tensors before the last one given"
            usual = ", ".join(signature.tensors[:signature.required])
            problems.append(("callee", f"{what} needs {what_missing} (by position or "
                                       f"keyword: {callee}({usual}))"))
    return problems


def _line_name(source: Source, path: ConfigPath, index: int) -> str:
    """How a message refers to a graph line: its line in the file, else its index."""
    pos = source.locate(path)
    return f"line {pos.line}" if pos.line is not None else f"graph[{index}]"


def _not_a_layer(callee: str, layers: Mapping[str, Any], models: Sequence[str],
                 defined: Mapping[str, int], bound: Mapping[str, int]) -> str:
    if callee in defined or callee in bound:
        return f"{callee!r} is a tensor, not a layer: call a layer on it (`y = layer({callee})`)"
    if callee in LAYER_SPECS:
        return (f"{callee!r} is a layer class, not a layer: declare one under layers "
                f"(e.g. {callee.lower()}: {{{callee}: {{...}}}}) and call it by that name")
    close = suggest(callee, [*layers, *models, *MERGE_HELPERS])
    if close is not None:
        return f"{callee!r} is not a layer (did you mean {close!r}?)"
    known = ", ".join([*layers, *models]) or "none"
    return f"{callee!r} is not a layer, a model or a helper; layers and models: {known}"


def _unknown_tensor(name: str, defined: Mapping[str, int]) -> str:
    close = suggest(name, list(defined))
    if close is not None:
        return f"unknown tensor {name!r} (did you mean {close!r}?)"
    return f"unknown tensor {name!r}; defined before this line: {', '.join(defined)}"


def _unknown_output(name: str, defined: Mapping[str, int]) -> str:
    close = suggest(name, list(defined))
    hint = f" (did you mean {close!r}?)" if close is not None else ""
    return f"output {name!r} is not computed by any graph line{hint}"


def _layer_as_output(name: str, fn: FunctionalConfig) -> str:
    computed = [t for call in fn.graph if call.callee == name for t in call.targets]
    kind = "layer" if name in fn.layers else "model"
    message = f"{name!r} is a {kind}; outputs are tensors, the results of graph lines"
    if len(computed) == 1:
        message += f" (did you mean {computed[0]!r}, the tensor it computes?)"
    return message


# --- inputs and outputs of the model: compile and data ----------------------------------------


@dataclass
class _ModelIO:
    """The names a model's inputs and outputs can be given in compile and data."""

    inputs: list[str] | None  # None: a sequential model's unnamed input
    outputs: list[str] | None  # None: a sequential model whose last layer has no name
    aliases: dict[str, str]
    ambiguous: dict[str, list[str]]  # layer name -> the several outputs it computed

    @classmethod
    def of(cls, model: ModelConfig) -> _ModelIO:
        fn = model.functional
        if fn is None:
            last = model.sequential[-1].args.name
            return cls(None, None if last is None else [last], {}, {})
        ambiguous = {c: outs for c, outs in fn.outputs_by_callee().items() if len(outs) > 1}
        return cls(fn.input_names(), list(fn.outputs), fn.output_aliases(), ambiguous)


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names)


def _check_keys(mapping: Mapping[str, Any], path: ConfigPath, names: list[str] | None,
                io: _ModelIO, what: str, noun: str, require_all: bool, source: Source,
                aliases: Mapping[str, str] | None = None) -> list[Problem]:
    """Keys of a mapping by input or output name: known, not repeated, complete if required."""
    if names is None:
        if what == "input":
            message = (f"a sequential model's input has no name: give {noun} for its one "
                       "input, not a mapping")
        else:
            message = (f"a sequential model's output is named after its last layer, which "
                       f"has no name: give that layer a name to key {noun} by it")
        return [Problem(message, path, source.locate(path))]
    aliases = aliases or {}
    problems: list[Problem] = []
    covered: dict[str, str] = {}
    for key in mapping:
        key_path = (*path, key)
        out = key if key in names else aliases.get(key)
        if out is None:
            if key in io.ambiguous and what == "output":
                message = (f"{key!r} computes several outputs ({_listing(io.ambiguous[key])}); "
                           "name the output tensor instead")
            else:
                close = suggest(key, [*names, *aliases])
                hint = f" (did you mean {close!r}?)" if close else ""
                message = (f"unknown {what} {key!r}{hint}; the model's {what}s: "
                           f"{_listing(names)}")
            problems.append(Problem(message, key_path, source.locate_key(key_path)))
        elif out in covered:
            problems.append(Problem(f"{key!r} and {covered[out]!r} both name {what} {out!r}; "
                                    "give one", key_path, source.locate_key(key_path)))
        else:
            covered[out] = key
    if require_all:
        missing = [n for n in names if n not in covered]
        if missing and not problems:
            problems.append(Problem(
                f"no {noun} for {what}{'s' if len(missing) > 1 else ''} "
                f"{_listing(repr(m) for m in missing)}; give one for every {what}",
                path, source.locate(path)))
    return problems


def _check_count(items: Sequence[Any], path: ConfigPath, names: list[str] | None, what: str,
                 noun: str, source: Source) -> list[Problem]:
    expected = 1 if names is None else len(names)
    if len(items) == expected:
        return []
    if names is None:
        message = f"a sequential model has one {what}: give one {noun}, got {len(items)}"
    else:
        count = f"{expected} {what}{'s' if expected > 1 else ''}"
        message = (f"{noun} has {len(items)} item{'s' if len(items) != 1 else ''} but the "
                   f"model has {count} ({_listing(names)})")
    return [Problem(message, path, source.locate(path))]


def _check_compile(compile_: CompileConfig, io: _ModelIO, source: Source) -> list[Problem]:
    problems: list[Problem] = []
    for key, value, require_all in (("loss", compile_.loss, True),
                                    ("loss_weights", compile_.loss_weights, False),
                                    ("metrics", compile_.metrics, False),
                                    ("weighted_metrics", compile_.weighted_metrics, False)):
        path = ("compile", key)
        noun = key.replace("_", " ")
        if isinstance(value, dict):
            problems += _check_keys(value, path, io.outputs, io, "output", noun, require_all,
                                    source, io.aliases)
        elif isinstance(value, list) and not key.endswith("metrics"):
            problems += _check_count(value, path, io.outputs, "output", noun, source)
    return problems


def _check_data(data: DataConfig, io: _ModelIO, source: Source) -> list[Problem]:
    problems: list[Problem] = []
    for key, spec in data.sources().items():
        base = ("data", key, spec.kind)
        args = spec.args
        if spec.kind == "random":
            problems += _check_arrays(args.x, (*base, "x"), io.inputs, io, "input", "x",
                                      source, by_position=False)
            if args.y is not None:
                problems += _check_arrays(args.y, (*base, "y"), io.outputs, io, "output", "y",
                                          source, by_position=False)
            elif io.outputs is not None and len(io.outputs) > 1:
                problems.append(Problem(
                    f"classes gives labels for one output; the model has {len(io.outputs)} "
                    f"outputs ({_listing(io.outputs)}): give y as a mapping by output name",
                    (*base, "classes"), source.locate_key((*base, "classes"))))
        elif spec.kind in ("csv", "parquet"):
            problems += _check_columns(args.x, (*base, "x"), io.inputs, io, "input", "x",
                                       source)
            problems += _check_columns(args.y, (*base, "y"), io.outputs, io, "output", "y",
                                       source)
        elif spec.kind in ("digits", "images"):
            for names, what in ((io.inputs, "input"), (io.outputs, "output")):
                if names is not None and len(names) > 1:
                    noun = "the digits data set" if spec.kind == "digits" else "an image folder"
                    problems.append(Problem(
                        f"{noun} has one x and one y; the model has "
                        f"{len(names)} {what}s ({_listing(names)})", base, source.locate(base)))
        else:
            problems += _check_arrays(args.x, (*base, "x"), io.inputs, io, "input", "x",
                                      source, by_position=True)
            problems += _check_arrays(args.y, (*base, "y"), io.outputs, io, "output", "y",
                                      source, by_position=True)
    for i, step in enumerate(data.preprocess):
        for key, names, what in (("x", io.inputs, "input"), ("y", io.outputs, "output")):
            value = getattr(step.args, key)
            if isinstance(value, dict):
                aliases = io.aliases if what == "output" else {}
                problems += _check_keys(value, ("data", "preprocess", i, step.tag, key), names,
                                        io, what, key, False, source, aliases)
    return problems


def _check_columns(value: Any, path: ConfigPath, names: list[str] | None, io: _ModelIO,
                   what: str, key: str, source: Source) -> list[Problem]:
    """CSV columns: a mapping by input/output name, else the columns of the only one."""
    if isinstance(value, dict):
        aliases = io.aliases if what == "output" else {}
        return _check_keys(value, path, names, io, what, key, True, source, aliases)
    if names is not None and len(names) > 1:
        given = "" if value is not None else " (without it, x is every column not in y)"
        return [Problem(f"the model has {len(names)} {what}s ({_listing(names)}): give {key} "
                        f"as a mapping {what} name -> columns{given}", path,
                        source.locate(path))]
    return []


def _check_arrays(value: Any, path: ConfigPath, names: list[str] | None, io: _ModelIO,
                  what: str, key: str, source: Source, by_position: bool) -> list[Problem]:
    if isinstance(value, dict):
        aliases = io.aliases if what == "output" else {}
        return _check_keys(value, path, names, io, what, key, True, source, aliases)
    if isinstance(value, list):
        return _check_count(value, path, names, what, key, source)
    if names is not None and len(names) > 1:
        forms = "a mapping by name" + (" or a list in that order" if by_position else "")
        return [Problem(f"the model has {len(names)} {what}s ({_listing(names)}): give {key} "
                        f"as {forms}", path, source.locate(path))]
    return []
