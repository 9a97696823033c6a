"""Columns of a CSV file as arrays, with errors that name the file and row.

The standard ``csv`` module reads the rows; NumPy converts each chosen column at once, and
only when that fails are the cells looked at one by one, to name the first bad one.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kconf.text import suggest
from kconf.data.problem import DataProblem, shown_path
from kconf.engine.backend import floatx
from kconf.errors import ConfigPath

#: One column as the config names it, with its config path.
ColumnRef = tuple[ConfigPath, "str | int"]


@dataclass
class Table:
    """The cells of a CSV file (as text) with the line of each row.

    Attributes:
        file: the file read.
        names: the header's column names, or None without a header.
        rows: the data rows, each a list of ``width`` strings.
        lines: the 1-based line of the file where each row is.
    """

    file: Path
    names: list[str] | None
    rows: list[list[str]]
    lines: list[int]

    @property
    def width(self) -> int:
        """The number of columns."""
        if self.names is not None:
            return len(self.names)
        return len(self.rows[0]) if self.rows else 0

    def label(self, index: int) -> str:
        """How messages name a column: ``column 'age'`` or ``column 3``."""
        return f"column {self.names[index]!r}" if self.names is not None else f"column {index}"


def read_table(file: Path, *, header: bool, delimiter: str, skip_rows: int,
               path: ConfigPath) -> Table:
    """Read a CSV file's cells; blank lines are skipped.

    Args:
        file: the CSV file.
        header: whether the first row (after ``skip_rows``) names the columns.
        delimiter: the one character between values.
        skip_rows: lines skipped before the header (or the first data row).
        path: the config path of the source's ``path`` (for errors).

    Returns:
        The ``Table``.

    Raises:
        DataProblem: the file is missing, unreadable, empty, or a row has a different number
            of values than the header (or the first row).
    """
    shown = shown_path(file)
    if not file.is_file():
        raise DataProblem(f"data file not found: {shown}", path)
    names, rows, lines = None, [], []
    try:
        with file.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for _ in range(skip_rows):
                if next(reader, None) is None:
                    break
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if header and names is None:
                    names = [cell.strip() for cell in row]
                    continue
                rows.append(row)
                lines.append(reader.line_num)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataProblem(f"cannot read {shown}: {exc}", path) from None
    table = Table(file, names, rows, lines)
    if not rows:
        raise DataProblem(f"{shown} has no data rows", path)
    width = table.width
    for row, line in zip(rows, lines):
        if len(row) != width:
            what = "the header has" if names is not None else "the first row has"
            raise DataProblem(f"{shown}:{line}: expected {width} values ({what}), got "
                              f"{len(row)}", path)
    return table


def column_index(table: Table, ref: ColumnRef) -> int:
    """The 0-based index of a column the config names.

    Args:
        table: the file's table.
        ref: ``(config path, name or index)``.

    Returns:
        The index.

    Raises:
        DataProblem: an unknown name (with the closest one and the list of columns), or an
            index past the last column; located at the column in the config.
    """
    path, column = ref
    if isinstance(column, int):
        if column >= table.width:
            raise DataProblem(f"column index {column} is out of range: "
                              f"{shown_path(table.file)} has {table.width} columns "
                              f"(0-{table.width - 1})", path)
        return column
    names = table.names or []
    if column in names:
        return names.index(column)
    close = suggest(column, names)
    hint = f" (did you mean {close!r}?)" if close is not None else ""
    raise DataProblem(f"unknown column {column!r}{hint}; the columns of "
                      f"{shown_path(table.file)}: {', '.join(names)}", path)


def column_values(table: Table, indexes: Sequence[int], path: ConfigPath,
                  labels: bool = False) -> np.ndarray:
    """The chosen columns as numbers, shape ``(rows, len(indexes))``.

    Args:
        table: the file's table.
        indexes: the columns, in order.
        path: the config path of the source (for errors).
        labels: targets: integer-valued columns give int64 labels, others float32.

    Returns:
        float32 values (int64 for integer labels).

    Raises:
        DataProblem: ``FILE:ROW: column 'age': cannot read 'abc' as a number``, for the first
            bad cell of each column (in row order), or a value that is not finite.
    """
    problems: list[tuple[int, str]] = []
    columns = []
    for j in indexes:
        cells = [row[j] for row in table.rows]
        try:
            values = np.array(cells, dtype=np.float64)
        except ValueError:
            values = None
        bad = _first_bad(cells, values)
        if bad is not None:
            i, message = bad
            problems.append((i, f"{shown_path(table.file)}:{table.lines[i]}: "
                                f"{table.label(j)}: {message}"))
            continue
        columns.append(values)
    if problems:
        first, *more = [m for _, m in sorted(problems)]
        raise DataProblem(first, path, [(m, path) for m in more])
    data = np.stack(columns, axis=1)
    if labels and np.array_equal(data, np.round(data)):
        return data.astype(np.int64)
    return data.astype(floatx)


def _first_bad(cells: list[str], values: np.ndarray | None) -> tuple[int, str] | None:
    """The row and message of the first cell that is not a finite number."""
    if values is not None:
        finite = np.isfinite(values)
        if finite.all():
            return None
        i = int(np.argmin(finite))
        return i, f"{cells[i].strip()!r} is not a finite number"
    for i, cell in enumerate(cells):
        try:
            float(cell)
        except ValueError:
            return i, f"cannot read {cell.strip()!r} as a number"
    raise AssertionError("NumPy refused a column whose every cell float() reads")
