"""Includes: ``include: [base.yaml, optim/adamw.yaml]`` at the top of a file.

Each included file (relative to the file that names it; it may include others) is read
with its positions, then the files are merged in order, the including file's own keys last:
mappings are merged key by key, anything else (a list, a number, a string) is replaced
whole; a choice written ``{Tag: args}`` (an optimizer, a data source, a layer...) replaced by
another tag is replaced whole too (``{AdamW: {...}}`` over ``{Adam: {...}}``). Every value
keeps the position where it is written, so an error in a value that an included file gives
points into that file. Each file's ``kconf:`` version key is checked
and removed; a missing include or an include cycle is reported at the include entry.

Relative data paths keep being resolved against the folder of the file that was loaded
(``Source.base_dir``), wherever they are written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from kconf.config.callbacks import CALLBACK_SPECS
from kconf.config.compile import OPTIMIZER_SPECS, SCHEDULE_SPECS
from kconf.config.data import DATA_SOURCES, PREPROCESS_STEPS
from kconf.config.layers import LAYER_SPECS
from kconf.config.objectives import LOSS_SPECS, METRIC_SPECS
from kconf.config.source import DICT_FILE, POISON, ParsedYaml, Source
from kconf.config.version import take_version
from kconf.errors import UNREADABLE, ConfigPath, Problem
from kconf.text import show

INCLUDE_KEY = "include"

Reader = Callable[[str], ParsedYaml]

#: The tags of the ``{Tag: args}`` choices of the config language.
CHOICE_TAGS = frozenset().union(CALLBACK_SPECS, OPTIMIZER_SPECS, SCHEDULE_SPECS, DATA_SOURCES,
                                PREPROCESS_STEPS, LAYER_SPECS, LOSS_SPECS, METRIC_SPECS)


def expand_includes(parsed: ParsedYaml, read: Reader) -> list[Problem]:
    """Check and remove the version key, then merge the files ``include`` names into
    ``parsed`` (its ``data``, ``source`` and ``poisoned`` are changed in place).

    Args:
        parsed: a file read with positions, whose data is a mapping.
        read: reads a YAML file by path (``kconf.config.loader.read_yaml``).

    Returns:
        The problems found: of the version keys, the include entries, the included files.
    """
    stack = [_identity(parsed.source)] if parsed.source.file != DICT_FILE else []
    layers, problems = _layers(parsed, read, stack)
    if len(layers) == 1:
        return problems
    merged: dict[str, Any] = {}
    origin: dict[ConfigPath, int] = {}
    for index, layer in enumerate(layers):
        _merge(merged, layer.data, index, (), origin)
    parsed.data.clear()
    parsed.data.update(merged)
    sources = [layer.source for layer in layers]
    values, keys, aliases = {}, {}, {}
    for path, index in origin.items():
        src = sources[index]
        if (pos := src.value_pos(path)) is not None:
            values[path] = pos
        if (pos := src.key_pos(path)) is not None:
            keys[path] = pos
        if (target := src.alias_target(path)) is not None:
            aliases[path] = target
    top = parsed.source
    parsed.source = Source(top.file, top.text, top.base_dir, values, keys, aliases)
    for layer in layers[:-1]:
        parsed.poisoned |= layer.poisoned
    return problems


def _identity(source: Source) -> Path:
    return Path(source.file).resolve()


def _layers(parsed: ParsedYaml, read: Reader, stack: list[Path]
            ) -> tuple[list[ParsedYaml], list[Problem]]:
    """The files to merge for ``parsed``, in order (its includes' layers first, itself
    last), and the problems found on the way."""
    data, source = parsed.data, parsed.source
    _, problem = take_version(data, source)
    problems = [problem] if problem is not None else []
    if INCLUDE_KEY not in data:
        return [parsed], problems
    entries = data.pop(INCLUDE_KEY)
    path: ConfigPath = (INCLUDE_KEY,)
    if isinstance(entries, str):
        entries, paths = [entries], [path]
    elif isinstance(entries, list):
        paths = [(*path, i) for i in range(len(entries))]
    else:
        if entries is not POISON:
            problems.append(Problem("expected a file to include or a list of files, got "
                                    f"{show(entries)}", path, source.locate(path)))
        return [parsed], problems
    if source.file == DICT_FILE:
        folder = source.base_dir
    else:
        folder = Path(source.file).parent
    layers: list[ParsedYaml] = []
    for entry, at in zip(entries, paths):
        if entry is POISON:
            continue
        if not isinstance(entry, str) or not entry.strip():
            problems.append(Problem(f"expected the path of a YAML file, got {show(entry)}",
                                    at, source.locate(at)))
            continue
        shown = os.path.normpath(folder / entry) if not Path(entry).is_absolute() else entry
        found, more = _include(shown, at, source, read, stack)
        layers += found
        problems += more
    return [*layers, parsed], problems


def _include(shown: str, at: ConfigPath, source: Source, read: Reader, stack: list[Path]
             ) -> tuple[list[ParsedYaml], list[Problem]]:
    """The layers of one included file, or the problem of its include entry."""
    identity = Path(shown).resolve()
    if identity in stack:
        chain = " -> ".join(p.name for p in [*stack[stack.index(identity):], identity])
        return [], [Problem(f"include cycle: {chain}; a file cannot include itself, directly "
                            "or through others", at, source.locate(at))]
    included = read(shown)
    if included.fatal:
        problems = []
        for p in included.problems:  # a file that cannot be read: at the include entry
            if p.kind == UNREADABLE:
                p = Problem(f"cannot include {shown}: {p.message}", at, source.locate(at),
                            UNREADABLE)
            problems.append(p)
        return [], problems
    data = included.data
    if not isinstance(data, dict):
        if data is None:
            return [], []  # an empty file includes nothing
        return [], [*included.problems, Problem(
            f"{shown} must be a mapping of config sections to be included, got {show(data)}",
            at, source.locate(at))]
    layers, problems = _layers(included, read, [*stack, identity])
    return layers, [*included.problems, *problems]


def _merge(target: dict[str, Any], value: dict[str, Any], index: int, path: ConfigPath,
           origin: dict[ConfigPath, int]) -> None:
    """Merge ``value`` (of layer ``index``) into ``target``: mappings key by key, anything
    else replaced; ``origin`` records the layer each path's value now comes from."""
    origin[path] = index
    for key, item in value.items():
        sub = (*path, key)
        if isinstance(item, dict) and isinstance(target.get(key), dict) \
                and not _other_choice(target[key], item):
            _merge(target[key], item, index, sub, origin)
        else:
            target[key] = item
            _mark(item, index, sub, origin)


def _other_choice(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` is a ``{Tag: args}`` choice of another tag than ``old``."""
    return (len(new) == 1 and len(old) == 1 and next(iter(new)) in CHOICE_TAGS
            and next(iter(new)) not in old)


def _mark(value: Any, index: int, path: ConfigPath, origin: dict[ConfigPath, int]) -> None:
    """Record layer ``index`` as the origin of ``value`` and everything under it."""
    origin[path] = index
    if isinstance(value, dict):
        for key, item in value.items():
            _mark(item, index, (*path, key), origin)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _mark(item, index, (*path, i), origin)
