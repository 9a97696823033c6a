"""A config file plus command-line overrides -> the validated config, with every problem an
override causes reported under the override's own text.

    cfg, overrides = resolve_config("configs/vgg.yaml", ["fit.epochs=3", "seed=1"])

The config package locates a value set by an override at ``<override>``; here each such
problem is relocated to the override that set it (``override 'fit.epochs=-3': fit.epochs:
must be a positive integer, got -3``), so a user with several overrides sees which one is wrong.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import yaml

from kconf.config import OVERRIDE_FILE, LoadedConfig, load_config, parse_override
from kconf.errors import OVERRIDE_PATH, UNKNOWN_KEY, ConfigError, Problem, SourcePos


@dataclass(frozen=True)
class Override:
    """One override: its dotted path, its value, and how the user wrote it (for messages)."""

    key: str
    value: Any
    label: str


def parse_override_texts(texts: Sequence[str]) -> list[Override]:
    """Parse command-line ``path=value`` overrides; every malformed one is reported at once.

    Args:
        texts: e.g. ``["fit.epochs=3", "compile.optimizer.SGD.lr=0.001"]``.

    Returns:
        One ``Override`` per text, in order.

    Raises:
        ConfigError: texts without ``=`` or with an empty path, each named.
    """
    parsed, problems = [], []
    for text in texts:
        try:
            key, value = parse_override(text)
        except ConfigError as exc:
            problems += [replace(p, pos=None) for p in exc.problems]
            continue
        parsed.append(Override(key, value, f"override {text!r}"))
    if problems:
        raise ConfigError(problems)
    return parsed


def resolve_config(file: str | os.PathLike, overrides: Sequence[str] = (),
                   options: Mapping[str, tuple[Any, str]] | None = None, *,
                   base_dir: str | os.PathLike | None = None,
                   ) -> tuple[LoadedConfig, dict[str, Any]]:
    """Load a config with overrides, validated exactly like the file.

    Args:
        file: the YAML config.
        overrides: command-line texts ``path=value`` (values read as YAML, typed by the schema).
        options: dotted path -> (value, label) from command-line options such as
            ``--epochs``; they are applied after ``overrides`` (so they win).
        base_dir: the folder relative paths in the config are resolved against (default: the
            file's folder); a run folder's ``resolved.yaml`` passes its original config's.

    Returns:
        ``(config, applied)`` where ``applied`` maps each overridden dotted path to its value,
        in the order given (what a run folder records in ``overrides.yaml``).

    Raises:
        ConfigError: a malformed override, or any problem in the file or caused by an
            override; the latter are located at the override's text.
    """
    items = parse_override_texts(overrides)
    items += [Override(key, value, label) for key, (value, label) in (options or {}).items()]
    applied: dict[str, Any] = {}
    for item in items:
        applied.pop(item.key, None)  # a later override of the same path moves to the end
        applied[item.key] = item.value
    try:
        cfg = load_config(file, overrides=applied, base_dir=base_dir)
    except ConfigError as exc:
        raise ConfigError([_relocate(p, items) for p in exc.problems], exc.file) from None
    return cfg, applied


def overrides_yaml(applied: Mapping[str, Any]) -> str:
    """The overrides as YAML (``fit.epochs: 3``), as ``overrides.yaml`` records them.

    Args:
        applied: dotted path -> value.

    Returns:
        YAML text; ``{}`` when there are none.
    """
    return yaml.safe_dump(dict(applied), sort_keys=False, default_flow_style=False)


def _relocate(problem: Problem, items: Sequence[Override]) -> Problem:
    """Put a problem located at ``<override>`` at the override that caused it; a problem in
    the file at a value that an override wrote inside (``compile.optimizer.Adam.lr=0.1`` adds
    a second optimizer to the file's) names that override too."""
    if problem.pos is not None and problem.pos.file != OVERRIDE_FILE and problem.path:
        parts = [str(p) for p in problem.path]
        inside = [item for item in items if len(item.key.split(".")) > len(parts)
                  and _shared_prefix(parts, item.key.split(".")) == len(parts)]
        if inside:
            return replace(problem, message=f"{problem.message} (with {inside[-1].label})")
    if problem.pos is None or problem.pos.file != OVERRIDE_FILE:
        return problem
    if problem.kind == OVERRIDE_PATH:
        return replace(problem, pos=None)  # its message names the override itself
    path = tuple(problem.path)
    if problem.kind == UNKNOWN_KEY:  # reported at the mapping that holds it; the override
        path += (problem.key,)       # named the key itself
    item = _culprit(path, items)
    if item is None:
        return problem
    return replace(problem, pos=SourcePos(item.label))


def _culprit(path: tuple, items: Sequence[Override]) -> Override | None:
    """The override whose dotted path shares the longest prefix with ``path`` (the last one
    on a tie, since it is the one that took effect)."""
    best, best_len = None, 0
    parts = [str(p) for p in path]
    for item in items:
        n = _shared_prefix(parts, item.key.split("."))
        if n and n >= best_len and (n == len(parts) or n == len(item.key.split("."))):
            best, best_len = item, n
    if best is None and len(items) == 1:
        return items[0]
    return best


def _shared_prefix(path: list[str], key: list[str]) -> int:
    """How many leading parts agree; a negative list index in ``key`` matches any index."""
    n = 0
    for p, k in zip(path, key):
        if p != k and not (k.startswith("-") and k[1:].isdigit() and p.isdigit()):
            break
        n += 1
    return n


def resolved_yaml(cfg: LoadedConfig) -> str:
    """The resolved config (defaults filled in) as YAML, a layer per line as in the file.

    Args:
        cfg: a validated config.

    Returns:
        YAML text that ``load_config`` accepts again.
    """
    return yaml.safe_dump(cfg.to_data(), sort_keys=False, default_flow_style=None,
                          width=1 << 16)
