"""Problems found in a Keras model, collected so that one error lists every one of them.

Each problem names where it sits in the Keras file's JSON, as a config path
(``config.layers[3].config.kernel_regularizer``), and what kconf cannot do there; the
``ConfigError`` that ``Findings.check`` raises prints one line per problem and exits the CLI
with status 2, like every other mistake a user can fix.
"""
from __future__ import annotations

from typing import Sequence

from kconf.errors import ConfigError, ConfigPath, Problem, SourcePos


class Unsupported(Exception):
    """A value kconf cannot reproduce; the message says what it is (raised by converters)."""


class Findings:
    """The problems of one Keras file, in the order they were found.

    Args:
        file: the file's name, the start of every message (``model.keras``).
    """

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def add(self, path: Sequence[str | int], message: str) -> None:
        """Record one problem at a path of the Keras JSON."""
        self.problems.append(Problem(message, tuple(path), SourcePos(self.file)))

    def check(self) -> None:
        """Raise every problem found so far at once.

        Raises:
            ConfigError: when there is at least one problem.
        """
        if self.problems:
            raise ConfigError(sorted(self.problems, key=_file_order), self.file)


def fail(file: str, message: str, path: ConfigPath = ()) -> ConfigError:
    """A ``ConfigError`` with one problem, for mistakes that stop reading at once."""
    return ConfigError([Problem(message, path, SourcePos(file))], file)


def _file_order(problem: Problem) -> tuple[int, int]:
    """Problems in the order of the file: the model's layers by index, then the rest, then
    the compile config (a stable sort keeps each layer's own problems in order found)."""
    path = problem.path
    if path[:2] == ("config", "layers") and len(path) > 2 and isinstance(path[2], int):
        return (0, path[2])
    return (2, 0) if path[:1] == ("compile_config",) else (1, 0)
