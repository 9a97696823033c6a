"""``load_sweep``: read a sweep file, validate it, check what needs the whole file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kconf.text import show
from kconf.config.load import _default_name, _position_order, _read
from kconf.config.problems import problems_from
from kconf.config.source import POISON, Source
from kconf.errors import ConfigError, Problem, SourcePos
from kconf.sweep.config import RANDOM_EXAMPLE, SweepConfig


def load_sweep(path: str | os.PathLike) -> SweepConfig:
    """Load and validate a sweep file (the base config is not loaded here).

    Args:
        path: the sweep's YAML file.

    Returns:
        The frozen ``SweepConfig``; ``sweep.source`` locates each value in the file.

    Raises:
        ConfigError: every problem of the file, sorted by position.
    """
    parsed = _read(path, None)
    src = parsed.source
    if parsed.fatal:
        raise ConfigError(parsed.problems, src.file)
    data = parsed.data
    problems = list(parsed.problems)
    if data is None:
        problems.append(Problem("the sweep file is empty; it needs base, parameters, metric "
                                "and mode", (), SourcePos(src.file, 1, 1)))
    elif data is POISON:
        pass
    elif not isinstance(data, dict):
        problems.append(Problem("a sweep file must be a mapping (base, parameters, metric, "
                                f"mode, ...), got {show(data)}", (), src.locate(())))
    elif "model" in data and "parameters" not in data:
        problems.append(Problem(
            "this is a model config, not a sweep file; a sweep names it as its base: "
            f"base: {Path(src.file).name}, with parameters, metric and mode", (),
            SourcePos(src.file, 1, 1)))
    else:
        data.setdefault("name", _default_name(src.file))
        try:
            sweep = SweepConfig.model_validate(data)
        except ValidationError as err:
            problems += problems_from(err, SweepConfig, src, parsed.poisoned)
        else:
            problems += check_sweep(sweep, src)
            if not problems:
                sweep._source = src
                return sweep
    raise ConfigError(sorted(problems, key=lambda p: _position_order(p, src.file)), src.file)


def check_sweep(sweep: SweepConfig, source: Source) -> list[Problem]:
    """What the schema cannot see alone: spaces that need random search, parameters that
    overwrite each other, a base file that does not exist."""
    problems = []
    grid = sweep.search.tag == "grid"
    paths = list(sweep.parameters)
    for path, spec in sweep.parameters.items():
        where = ("parameters", path)
        if grid and getattr(spec, "random", False):
            at = (*where, spec.tag)
            problems.append(Problem(
                f"{spec.tag} draws at random, which needs search: {RANDOM_EXAMPLE}; a grid "
                "takes a list of values", at, source.locate_key(at)))
        for other in paths[:paths.index(path)]:
            if path.startswith(other + ".") or other.startswith(path + "."):
                line = source.locate_key(("parameters", other)).line
                problems.append(Problem(
                    f"overlaps the parameter {other!r} (line {line}): one would overwrite the "
                    "other; vary one of them", where, source.locate_key(where)))
    base = Path(source.file).parent / sweep.base
    if not base.is_file():
        what = "is a directory, not a config file" if base.is_dir() else "file not found"
        problems.append(Problem(f"{what}: {base}", ("base",), source.locate(("base",))))
    return problems


def describe(value: Any) -> str:
    """A parameter value as a short text for tables and messages (``0.01``, ``'adam'``)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return show(value)


