"""Paths a command will write, checked before any work starts.

One rule for every command: a missing folder on an output's path is created (and the command
says so); a file where a folder is needed, a folder where a file is needed, or a folder kconf
may not write in is refused with one line ``PATH: message`` (exit 2) before anything runs.

    folders = check_outputs([(output, FILE), (plots, FOLDER)])   # raises ConfigError
    created = make_folders(folders)                               # then say what was created
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from kconf.errors import ConfigError, Problem, SourcePos

#: An output file (``predict -o out.npz``, ``schema -o s.json``).
FILE = "file"
#: An output folder (``--output-dir``, ``plot -o``), created if missing.
FOLDER = "folder"
#: A path stem the command adds suffixes to (``graph -o``, ``export-keras -o``); an existing
#: folder is also accepted (the command writes inside it where it says so).
STEM = "stem"


def _existing_ancestor(path: Path) -> Path:
    """The nearest part of ``path`` (itself included) that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def output_problem(path: Path, kind: str) -> tuple[str | None, list[Path]]:
    """What is wrong with writing ``path`` as ``kind``, and the folders writing would create.

    Args:
        path: the path as the user gave it.
        kind: ``FILE``, ``FOLDER`` or ``STEM``.

    Returns:
        ``(message or None, missing folders from the outermost)``.
    """
    path = Path(path)
    if kind == FOLDER:
        if path.exists() and not path.is_dir():
            return "is a file, not a folder", []
        folder = path
    else:
        if path.is_dir() and kind == FILE:
            return "is a folder; give a file name", []
        folder = path if path.is_dir() else path.parent
    existing = _existing_ancestor(folder.absolute())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder", []
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"no permission to write in {existing}", []
    if kind == FILE and path.exists() and not os.access(path, os.W_OK):
        return "no permission to write this file", []
    missing = [p for p in reversed([folder.absolute(), *folder.absolute().parents])
               if not p.exists() and existing in p.parents]
    return None, missing


def check_outputs(items: Iterable[tuple[Path | None, str]]) -> list[Path]:
    """Check every output path of a command at once.

    Args:
        items: ``(path, kind)`` pairs; a None path (an option not given) is skipped.

    Returns:
        The folders that writing them will create, outermost first.

    Raises:
        ConfigError: one problem per path that cannot be written, located at the path.
    """
    problems, folders = [], []
    for path, kind in items:
        if path is None:
            continue
        message, missing = output_problem(Path(path), kind)
        if message is not None:
            problems.append(Problem(message, (), SourcePos(str(path))))
        folders += [m for m in missing if m not in folders]
    if problems:
        raise ConfigError(problems)
    return folders


def make_folders(folders: Iterable[Path]) -> list[Path]:
    """Create the folders ``check_outputs`` found missing.

    Args:
        folders: outermost first.

    Returns:
        The deepest of those created (relative to the working directory when inside it).

    Raises:
        ConfigError: a folder could not be created (the disk changed since the check).
    """
    made = []
    for folder in folders:
        if folder.is_dir():
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError([Problem(f"cannot create this folder: {exc.strerror or exc}", (),
                                       SourcePos(str(folder)))]) from None
        made.append(folder)
    deepest = [f for f in made if not any(f in g.parents for g in made)]
    return [_shown(f) for f in deepest]


def _shown(folder: Path) -> Path:
    """A folder relative to the working directory where it is inside it."""
    try:
        return folder.relative_to(Path.cwd())
    except ValueError:
        return folder
