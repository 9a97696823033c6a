"""Checks of what ``compile`` and ``data`` say of a model's inputs and outputs, after the
schema: every name is one of the model's, every list has one item per input or output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from kconf.config.compile import CompileConfig
from kconf.config.data import DataConfig
from kconf.config.run import ModelConfig
from kconf.config.source import Source
from kconf.errors import ConfigPath, Problem
from kconf.text import suggest


@dataclass
class ModelIO:
    """The names a model's inputs and outputs can be given in compile and data."""

    inputs: list[str] | None  # None: a sequential model's unnamed input
    outputs: list[str] | None  # None: a sequential model whose last layer has no name
    aliases: dict[str, str]
    ambiguous: dict[str, list[str]]  # layer name -> the several outputs it computed

    @classmethod
    def of(cls, model: ModelConfig) -> ModelIO:
        fn = model.functional
        if fn is None:
            last = model.sequential[-1].args.name
            return cls(None, None if last is None else [last], {}, {})
        ambiguous = {c: outs for c, outs in fn.outputs_by_callee().items() if len(outs) > 1}
        return cls(fn.input_names(), list(fn.outputs), fn.output_aliases(), ambiguous)


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names)


def _check_keys(mapping: Mapping[str, Any], path: ConfigPath, names: list[str] | None,
                io: ModelIO, what: str, noun: str, require_all: bool, source: Source,
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


def check_compile(compile_: CompileConfig, io: ModelIO, source: Source) -> list[Problem]:
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


def check_data(data: DataConfig, io: ModelIO, source: Source) -> list[Problem]:
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


def _check_columns(value: Any, path: ConfigPath, names: list[str] | None, io: ModelIO,
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


def _check_arrays(value: Any, path: ConfigPath, names: list[str] | None, io: ModelIO,
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
