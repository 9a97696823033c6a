"""The one path every YAML file of kconf takes: read it with positions, apply overrides,
validate it against a pydantic model, turn every error into a located ``Problem``.

    validated = load_yaml("sweep.yaml", SWEEP_FILE)       # a FileKind: model + messages
    validated.config       # the validated model (pure, frozen data), or None
    validated.source       # where each value is written
    validated.problems     # everything found so far, unsorted
    raise located_error(problems, validated.source)      # sorted by position

A config (``load_config``), a sweep file (``load_sweep``) and a model file named by a
config's ``models`` section go through it; each adds the checks that need the whole file
and returns a ``Loaded`` result: the model and its positions side by side, so that the
pydantic models stay plain data.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

from pydantic import BaseModel, ValidationError

from kconf.text import show
from kconf.config.include import expand_includes
from kconf.config.interpolate import interpolate
from kconf.config.overrides import apply_overrides
from kconf.config.problems import problems_from
from kconf.config.source import DICT_FILE, POISON, ParsedYaml, Source, parse_yaml, size_problem
from kconf.config.version import VERSION_PROBLEM
from kconf.errors import UNREADABLE, ConfigError, Problem, SourcePos

M = TypeVar("M", bound=BaseModel)


def _no_refusal(data: dict[str, Any], source: Source) -> Problem | None:
    return None


def _no_problems(data: dict[str, Any], source: Source) -> list[Problem]:
    return []


@dataclass(frozen=True)
class FileKind(Generic[M]):
    """A kind of YAML file: the pydantic model it is validated against, and what is said
    about a file that is not one.

    Attributes:
        model: the model a file's mapping is validated against; when it has a ``name``
            field, a missing ``name`` is the file's stem.
        empty: the problem of an empty file.
        not_mapping: the problem of a file that is not a mapping (``, got <value>`` follows).
        refuse: a problem that makes validating a mapping pointless (a model config given
            as a sweep file), or None.
        when_invalid: more problems of a mapping that ``model`` refused (the checks of the
            sections that are valid on their own), so that every problem is told at once.
    """

    model: type[M]
    empty: str
    not_mapping: str
    refuse: Callable[[dict[str, Any], Source], Problem | None] = _no_refusal
    when_invalid: Callable[[dict[str, Any], Source], list[Problem]] = _no_problems


@dataclass(frozen=True)
class Validated(Generic[M]):
    """A file read and validated.

    Attributes:
        config: the validated model; None when the file could not be read or the model
            refused it.
        source: the file's positions.
        problems: every problem found (unsorted); a ``config`` may come with problems
            (an override that could not be applied, a value that could not be read).
    """

    config: M | None
    source: Source
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Loaded(Generic[M]):
    """A loaded file: its validated model, which is plain data, and where each value is
    written.

    The model's fields and methods read through: ``loaded.fit`` is ``loaded.config.fit``.
    Two results are equal when their models are: where each came from does not matter.

    Attributes:
        config: the validated, frozen pydantic model.
        source: ``.file``, ``.text``, ``.base_dir``, ``.locate(path)``.
    """

    config: M
    source: Source

    @property
    def file(self) -> str:
        """The file as given (``"<dict>"`` for a dict)."""
        return self.source.file

    def __getattr__(self, name: str) -> Any:
        # Only a missing attribute comes here; private and special names never read through
        # (copy and pickle look for those on the result itself).
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            config = self.__dict__["config"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(config, name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Loaded):
            return NotImplemented
        return type(self) is type(other) and self.config == other.config

    __hash__ = None  # type: ignore[assignment]  (the models hold lists; not hashable)


def read_yaml(source: str | os.PathLike | Mapping[str, Any],
              base_dir: str | os.PathLike | None = None) -> ParsedYaml:
    """The raw data and positions of a YAML file or a dict.

    Args:
        source: a file's path, or the data as a dict (deep-copied; it has no positions).
        base_dir: the folder relative paths are resolved against; default: the file's
            folder (the working directory for a dict).

    Returns:
        The parsed file; one that cannot be read is a fatal ``UNREADABLE`` problem.

    Raises:
        TypeError: ``source`` is neither a path nor a mapping.
    """
    base = Path(base_dir) if base_dir is not None else None
    if isinstance(source, Mapping):
        return ParsedYaml(copy.deepcopy(dict(source)), Source(DICT_FILE, None, base))
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected a YAML file's path or a dict, got {type(source).__name__}")
    file = os.fspath(source)
    if isinstance(file, bytes):
        file = os.fsdecode(file)
    path = Path(file)
    try:
        if path.is_dir():
            raise IsADirectoryError
        too_big = size_problem(path.stat().st_size, file)  # refused before it is read
        if too_big is not None:
            return ParsedYaml(None, Source(file, None, base), [too_big], fatal=True)
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
    return ParsedYaml(None, Source(file, None, base),
                      [Problem(message, (), SourcePos(file), UNREADABLE)], fatal=True)


def validate_yaml(parsed: ParsedYaml, kind: FileKind[M],
                  overrides: Mapping[str, Any] | None = None) -> Validated[M]:
    """Validate parsed YAML against ``kind.model``, every problem located.

    Args:
        parsed: what ``read_yaml`` or ``parse_yaml`` read (its data is changed in place).
        kind: the model and the messages of this kind of file.
        overrides: dotted path -> value, set before validation (``{"fit.epochs": 1}``).

    Returns:
        The model (None when refused) with the positions and every problem found.
    """
    src = parsed.source
    if parsed.fatal:
        return Validated(None, src, list(parsed.problems))
    data = parsed.data
    problems = list(parsed.problems)
    if data is None:
        problems.append(Problem(kind.empty, (), SourcePos(src.file, 1, 1)))
    elif data is POISON:
        pass  # the whole document was refused; that problem says why
    elif not isinstance(data, dict):
        problems.append(Problem(f"{kind.not_mapping}, got {show(data)}", (), src.locate(())))
    else:
        problems += expand_includes(parsed, read_yaml)  # the version keys too
        src = parsed.source
        if any(p.kind == VERSION_PROBLEM for p in problems):
            return Validated(None, src, problems)  # another version: its keys mean other things
        refused = kind.refuse(data, src)
        if refused is not None:
            return Validated(None, src, [*problems, refused])
        problems += apply_overrides(data, overrides or {}, src)
        problems += interpolate(data, src, parsed.poisoned)
        if "name" in kind.model.model_fields:
            data.setdefault("name", default_name(src.file))
        try:
            return Validated(kind.model.model_validate(data), src, problems)
        except ValidationError as err:
            problems += problems_from(err, kind.model, src, parsed.poisoned)
            problems += kind.when_invalid(data, src)
    return Validated(None, src, problems)


def load_yaml(source: str | os.PathLike | Mapping[str, Any], kind: FileKind[M],
              overrides: Mapping[str, Any] | None = None, *,
              base_dir: str | os.PathLike | None = None) -> Validated[M]:
    """``read_yaml`` then ``validate_yaml``: a file (or dict) validated as ``kind``.

    Args:
        source: a YAML file's path, or the data as a dict.
        kind: the model and the messages of this kind of file.
        overrides: dotted path -> value, set before validation.
        base_dir: as for ``read_yaml``.

    Returns:
        The model (None when refused) with the positions and every problem found.
    """
    return validate_yaml(read_yaml(source, base_dir), kind, overrides)


def located_error(problems: Sequence[Problem], source: Source) -> ConfigError:
    """The error that reports ``problems`` of the file ``source`` read, sorted by position.

    Args:
        problems: every problem found.
        source: the file's positions (the error names the file unless it is a dict).

    Returns:
        The ``ConfigError`` to raise.
    """
    ordered = sorted(problems, key=lambda p: _position_order(p, source.file))
    return ConfigError(ordered, None if source.file == DICT_FILE else source.file)


def _position_order(problem: Problem, file: str) -> tuple[int, str, int, int]:
    """This file's problems by position, then other files' (models from other files) by
    file and position, then those without a line."""
    pos = problem.pos
    if pos is None or pos.line is None:
        return (2, "", 0, 0)
    if pos.file != file:
        return (1, pos.file, pos.line, pos.col or 0)
    return (0, "", pos.line, pos.col or 0)


def default_name(file: str) -> str:
    """The ``name`` of a file that gives none: its stem, made a simple name."""
    if file == DICT_FILE:
        return "model"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(file).stem).lstrip(".-") or "model"
