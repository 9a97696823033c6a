"""``load_sweep``: a sweep file through the config's loader, then the checks that need the
whole file."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kconf.text import show
from kconf.config.loader import FileKind, Loaded, load_yaml, located_error
from kconf.config.source import Source
from kconf.errors import Problem, SourcePos
from kconf.sweep.config import RANDOM_EXAMPLE, SweepConfig


def _is_a_config(data: dict[str, Any], source: Source) -> Problem | None:
    """A model config given where a sweep file belongs."""
    if "model" in data and "parameters" not in data:
        return Problem(
            "this is a model config, not a sweep file; a sweep names it as its base: "
            f"base: {Path(source.file).name}, with parameters, metric and mode", (),
            SourcePos(source.file, 1, 1))
    return None


#: A sweep file: a ``SweepConfig``; a model config given instead is told so.
SWEEP_FILE = FileKind(
    SweepConfig,
    empty="the sweep file is empty; it needs base, parameters, metric and mode",
    not_mapping="a sweep file must be a mapping (base, parameters, metric, mode, ...)",
    refuse=_is_a_config,
)


@dataclass(frozen=True, eq=False)
class LoadedSweep(Loaded[SweepConfig]):
    """A loaded sweep file: the ``SweepConfig`` and where each value is written.

    ``sweep.parameters``, ``sweep.metric``, ``sweep.to_data()``... read through to
    ``sweep.config``.

    Attributes:
        config: the validated, frozen ``SweepConfig``.
        source: ``.file``, ``.text``, ``.base_dir``, ``.locate(path)``.
    """

    @property
    def base_path(self) -> Path:
        """The base config's path: ``base`` taken relative to the sweep file's folder (a
        relative path when the sweep file's is)."""
        return Path(os.path.normpath(Path(self.source.file).parent / self.config.base))


def load_sweep(path: str | os.PathLike) -> LoadedSweep:
    """Load and validate a sweep file (the base config is not loaded here).

    Args:
        path: the sweep's YAML file.

    Returns:
        The ``LoadedSweep``: ``.config`` (the frozen ``SweepConfig``, whose fields also read
        through) and ``.source`` (positions).

    Raises:
        ConfigError: every problem of the file, sorted by position.
    """
    validated = load_yaml(os.fspath(path), SWEEP_FILE)
    sweep, src = validated.config, validated.source
    problems = list(validated.problems)
    if sweep is not None:
        problems += check_sweep(sweep, src)
    if problems or sweep is None:
        raise located_error(problems, src)
    return LoadedSweep(sweep, src)


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


