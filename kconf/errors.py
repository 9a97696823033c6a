"""Typed errors. A user's mistake is data (path + position + message); one formatter renders it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

ConfigPath = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """Render a config path the way users write it: ``model.sequential[2].Dense.units``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass(frozen=True)
class SourcePos:
    """Where a value sits in a source file (1-based line and column; None when unknown)."""

    file: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


#: ``Problem.kind`` of a key that a mapping does not take; ``Problem.key`` is that key and
#: ``Problem.path`` the mapping that holds it.
UNKNOWN_KEY = "unknown_key"
#: ``Problem.kind`` of a required key that is not given; ``Problem.key`` is that key.
MISSING = "missing"
#: ``Problem.kind`` of an override whose path cannot be applied; ``Problem.key`` is its dotted
#: path as given.
OVERRIDE_PATH = "override_path"
#: ``Problem.kind`` of a file that cannot be read (not found, a directory, not UTF-8).
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Problem:
    """One user-facing mistake: where it is, which config path, and what is wrong.

    Attributes:
        message: what is wrong, for people.
        path: the config path the problem is about.
        pos: where that is written (None when nowhere: an override's own text).
        kind: what is wrong, for code: ``UNKNOWN_KEY``, ``MISSING``, ``OVERRIDE_PATH``,
            ``UNREADABLE``, or pydantic's error type for other schema errors
            (``"int_type"``, ``"kconf_run_name"``...); empty where nothing needs to tell.
        key: the name the problem is about, where its kind has one (the unknown or missing
            key, the override's dotted path); None otherwise.
    """

    message: str
    path: ConfigPath = ()
    pos: SourcePos | None = None
    kind: str = ""
    key: str | None = None

    def format(self) -> str:
        parts = []
        if self.pos is not None:
            parts.append(str(self.pos))
        if self.path:
            parts.append(format_path(self.path))
        parts.append(self.message)
        return ": ".join(parts)


class KconfError(Exception):
    """Base of every error kconf raises on purpose."""


class ConfigError(KconfError):
    """One or more problems in a user's config (or its data files); the CLI exits with status 2."""

    def __init__(self, problems: Sequence[Problem], file: str | None = None):
        self.problems = list(problems)
        self.file = file
        super().__init__(self.format())

    def format(self) -> str:
        lines = [p.format() for p in self.problems]
        n = len(self.problems)
        if n > 1:
            lines.append(f"{n} errors" + (f" in {self.file}" if self.file else ""))
        return "\n".join(lines)


class ShapeError(KconfError):
    """A layer cannot accept the shape it is given; the graph constructor adds the config path."""


class TrainingError(KconfError):
    """Training stopped for a reason the user must see (e.g. a NaN loss)."""


class StoppedElsewhere(TrainingError):
    """Training stopped because another process of the run did (a data-parallel run's rank
    failed, or stopped answering); the message already says where."""


class RunWarning(UserWarning):
    """Something about a run that does not stop it but that a user should know (a resumed run
    whose numbers cannot be bit-identical to an uninterrupted one's); the message names the
    run folder."""
