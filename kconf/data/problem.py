"""The error the data loaders raise: a message and the config path it belongs to.

``load_splits`` turns each one into a located ``Problem`` (file:line:col of that path in the
YAML), so every loader stays free of positions and reports all it finds the same way.
"""
from __future__ import annotations

import os
from pathlib import Path

from kconf.errors import ConfigPath


class DataProblem(Exception):
    """Something wrong with a config's data, at a config path; possibly several things.

    Attributes:
        items: ``(message, config path)`` pairs, e.g. ``("unknown column 'agee' ...",
            ("data", "source", "csv", "x", 1))``; the first is the one given to the
            constructor.
    """

    def __init__(self, message: str, path: ConfigPath,
                 more: list[tuple[str, ConfigPath]] | None = None):
        super().__init__(message)
        self.items = [(message, tuple(path)), *(more or [])]


def shown_path(file: Path) -> str:
    """A data file as messages show it.

    Args:
        file: the file (as resolved against the config's folder).

    Returns:
        The path relative to the working directory when the file is inside it, else as is.
    """
    try:
        return os.path.relpath(file) if file.resolve().is_relative_to(Path.cwd()) else str(file)
    except (OSError, ValueError):
        return str(file)


class DataWarning(UserWarning):
    """Something in a config's data that kconf works around but a user should know: a
    category the training split never had (``unknown: warn``). The message is located
    (``FILE:LINE:COL: config.path: ...``) when it comes from a config."""
