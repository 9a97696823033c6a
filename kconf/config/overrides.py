"""Overrides: ``{"fit.epochs": 1, "model.sequential.0.Dense.units": 32}`` applied to the raw
data before validation, so an overridden value is checked with the same messages.

Path syntax: keys joined by dots; a part that indexes a list is its integer index (``-1`` is
the last item). Missing mappings on the way are created; a scalar on the way is replaced by
a mapping (so ``compile.optimizer.SGD.lr`` works when the file says ``optimizer: sgd``).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

from kconf.config.source import OVERRIDE_FILE, Source, parse_yaml
from kconf.errors import OVERRIDE_PATH, ConfigError, Problem, SourcePos, format_path

_POS = SourcePos(OVERRIDE_FILE)


def apply_overrides(data: Any, overrides: Mapping[str, Any], source: Source) -> list[Problem]:
    """Set each dotted path of ``overrides`` in ``data`` (in place) and mark it in ``source``.

    Args:
        data: the raw config data (a dict; anything else is left alone).
        overrides: dotted path -> value.
        source: positions; overridden paths get the position ``<override>``.

    Returns:
        Problems with override paths that cannot be applied (a bad list index...).
    """
    if not isinstance(data, dict):
        return []
    problems = []
    for dotted, value in overrides.items():
        problem = _apply(data, dotted, value, source)
        if problem is not None:
            problems.append(problem)
    return problems


def _apply(data: dict, dotted: Any, value: Any, source: Source) -> Problem | None:
    parts = dotted.split(".") if isinstance(dotted, str) else []
    if not parts or "" in parts:
        return _path_problem(dotted, "expected a dotted path like 'fit.epochs'")
    node: Any = data
    path: list[str | int] = []
    for i, part in enumerate(parts):
        key: str | int = part
        if isinstance(node, list):
            try:
                key = int(part)
            except ValueError:
                return _path_problem(dotted, f"{format_path(path)} is a list; index it with a "
                                             f"number, e.g. {'.'.join(map(str, path))}.0")
            if not -len(node) <= key < len(node):
                return _path_problem(dotted, f"index {key} is out of range, "
                                             f"{format_path(path)} has {len(node)} items")
            key %= len(node)
        path.append(key)
        if i == len(parts) - 1:
            node[key] = copy.deepcopy(value)
            source.set_override(tuple(path))
            return None
        child = node.get(key) if isinstance(node, dict) else node[key]
        if not isinstance(child, (dict, list)):
            child = node[key] = {}
            source.set_override(tuple(path))
        node = child
    return None


def _path_problem(dotted: Any, why: str) -> Problem:
    """An override path that cannot be applied, keyed by the path as given."""
    return Problem(f"override {dotted!r}: {why}", (), _POS, OVERRIDE_PATH,
                   dotted if isinstance(dotted, str) else str(dotted))


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a command-line override ``path=value``; the value is read as YAML.

    Args:
        text: e.g. ``"fit.epochs=3"``, ``"compile.optimizer=adam"``, ``"data.train.random.x=[8]"``.

    Returns:
        ``(dotted path, value)``; a value that is not valid YAML stays a string.

    Raises:
        ConfigError: when there is no ``=`` or the path is empty.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError([Problem(f"override {text!r}: expected path=value, e.g. fit.epochs=3",
                                   (), _POS, OVERRIDE_PATH, text)])
    parsed = parse_yaml(raw, OVERRIDE_FILE, base_dir=Path("."))
    if parsed.fatal and raw.lstrip()[:1] in ("[", "{", "'", '"'):  # meant as YAML: say why not
        why = parsed.problems[0].message.removeprefix("invalid YAML: ")
        raise ConfigError([Problem(f"override {text!r}: the value is not valid YAML ({why}); "
                                   "quote the whole value to pass it as text", (), _POS,
                                   OVERRIDE_PATH, text)])
    if parsed.fatal or parsed.problems:
        return key, raw
    return key, parsed.data


def parse_overrides(texts: Iterable[str]) -> dict[str, Any]:
    """``parse_override`` for each text, as the dict ``load_config`` takes (later ones win)."""
    return dict(parse_override(t) for t in texts)
