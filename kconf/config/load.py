"""``load_config``: read, override, validate; every problem at once, sorted by position."""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from kconf.config.checks import check_config, check_sections
from kconf.text import show
from kconf.config.overrides import apply_overrides
from kconf.config.problems import problems_from
from kconf.config.run import RunConfig
from kconf.config.source import DICT_FILE, POISON, ParsedYaml, Source, parse_yaml
from kconf.errors import ConfigError, Problem, SourcePos


def load_config(source: str | os.PathLike | Mapping[str, Any],
                overrides: Mapping[str, Any] | None = None, *,
                base_dir: str | os.PathLike | None = None) -> RunConfig:
    """Load and validate a config.

    Args:
        source: a YAML file's path, or the config as a dict.
        overrides: dotted path -> value, applied before validation (``{"fit.epochs": 1}``;
            list items by index: ``"model.sequential.0.Dense.units"``).
        base_dir: directory for relative data paths; default: the file's directory
            (the working directory for a dict).

    Returns:
        The frozen ``RunConfig``; ``cfg.source`` locates each value in the file.

    Raises:
        ConfigError: listing every problem found, sorted by position.
    """
    parsed = _read(source, base_dir)
    src = parsed.source
    error_file = None if src.file == DICT_FILE else src.file
    if parsed.fatal:
        raise ConfigError(parsed.problems, error_file)
    data = parsed.data
    problems = list(parsed.problems)
    if data is None:
        problems.append(Problem("the config is empty; it needs the sections model, compile "
                                "and data", (), SourcePos(src.file, 1, 1)))
    elif data is POISON:
        pass  # the whole document was refused; that problem says why
    elif not isinstance(data, dict):
        problems.append(Problem("a config must be a mapping of sections (model, compile, "
                                f"data), got {show(data)}", (), src.locate(())))
    else:
        problems += apply_overrides(data, overrides or {}, src)
        data.setdefault("name", _default_name(src.file))
        try:
            config = RunConfig.model_validate(data)
        except ValidationError as err:
            problems += problems_from(err, RunConfig, src, parsed.poisoned)
            problems += check_sections(data, src)
        else:
            checked = check_config(config, src)
            problems += checked.problems
            if not problems:
                config._source = src
                config._named = checked.named
                config.compile._aliases = checked.aliases
                return config
    raise ConfigError(sorted(problems, key=lambda p: _position_order(p, src.file)), error_file)


def _position_order(problem: Problem, file: str) -> tuple[int, str, int, int]:
    """This file's problems by position, then other files' (models from other files) by
    file and position, then those without a line."""
    pos = problem.pos
    if pos is None or pos.line is None:
        return (2, "", 0, 0)
    if pos.file != file:
        return (1, pos.file, pos.line, pos.col or 0)
    return (0, "", pos.line, pos.col or 0)


def _default_name(file: str) -> str:
    if file == DICT_FILE:
        return "model"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(file).stem).lstrip(".-") or "model"


def _read(source: Any, base_dir: str | os.PathLike | None) -> ParsedYaml:
    """The raw data and positions of a file or a dict; file errors are fatal problems."""
    base = Path(base_dir) if base_dir is not None else None
    if isinstance(source, Mapping):
        return ParsedYaml(copy.deepcopy(dict(source)), Source(DICT_FILE, None, base))
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load_config takes a path or a dict, got {type(source).__name__}")
    file = os.fspath(source)
    if isinstance(file, bytes):
        file = os.fsdecode(file)
    path = Path(file)
    try:
        if path.is_dir():
            raise IsADirectoryError
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        message = "file not found"
    except IsADirectoryError:
        message = "is a directory, not a YAML file"
    except UnicodeDecodeError as err:
        message = f"is not UTF-8 text (byte {err.start} cannot be decoded)"
    except OSError as err:
        message = f"cannot be read: {err.strerror or err}"
    else:
        return parse_yaml(text, file, base)
    return ParsedYaml(None, Source(file, None, base), [Problem(message, (), SourcePos(file))],
                      fatal=True)


def is_sweep_file(path: str | os.PathLike) -> bool:
    """Whether a YAML file is a sweep (a mapping with ``parameters`` and no ``model``) rather
    than a config; a file that cannot be read is not (loading it reports why). Here, not in
    ``kconf.sweep``, so that telling them apart loads none of the sweep machinery."""
    parsed = _read(path, None)
    data = parsed.data
    return isinstance(data, dict) and "parameters" in data and "model" not in data
