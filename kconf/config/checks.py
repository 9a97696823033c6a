"""Checks across sections, after the schema: names in graphs, models, losses and data.

The schema validates each value on its own; what needs the whole config (is this tensor
defined? does this loss name an output?) or a position inside a graph line is checked here,
and reported like every other problem: file:line:col, config path, message. This module
checks the models and their scopes; ``graph_checks`` a model's layers and graph lines,
``io_checks`` what ``compile`` and ``data`` say of its inputs and outputs.

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
from kconf.args.names import MERGE_HELPERS
from kconf.config.graph_checks import check_functional, check_wrapped
from kconf.config.io_checks import ModelIO, check_compile, check_data
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
    io = ModelIO.of(model)
    if compile_ is not None:
        result.problems += check_compile(compile_, io, source)
    if data is not None:
        result.problems += check_data(data, io, source)
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
            problems += check_wrapped(spec, path, models, source, uses)
    if model.functional is not None:
        problems += check_functional(model.functional, models, source,
                                      (*prefix, "functional"), uses)
    return problems, uses
