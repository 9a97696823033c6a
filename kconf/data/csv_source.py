"""The cells of a CSV file, with the line of each row for errors.

The standard ``csv`` module reads the rows; ``kconf.data.tables`` turns the chosen columns
into numbers or categories (NumPy converts a column at once; only when that fails are the
cells looked at one by one, to name the first bad one).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kconf.data.problem import DataProblem, shown_path
from kconf.errors import ConfigPath


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

    def where(self, row: int) -> str:
        """How messages name a data row: ``people.csv:12`` (the file and its line)."""
        return f"{shown_path(self.file)}:{self.lines[row]}"

    def cells(self, index: int) -> np.ndarray:
        """One column's cells as stripped text, shape ``(rows,)``."""
        return np.char.strip(np.array([row[index] for row in self.rows], dtype=str))


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




#: The cells that mean "no value" (compared stripped and lowercased), as pandas reads them.
MISSING = ("", "na", "n/a", "nan", "null", "none")


def missing_cells(cells: np.ndarray) -> np.ndarray:
    """Which of a column's stripped cells are missing values (``MISSING``)."""
    return np.isin(np.char.lower(cells), MISSING)


def cell_numbers(table: Table, index: int) -> tuple[np.ndarray, tuple[int, str] | None]:
    """One column as float64 numbers, a missing cell as NaN.

    Args:
        table: the file's table.
        index: the column.

    Returns:
        ``(values, bad)``: ``bad`` is ``(row, message)`` of the first cell that is neither a
        number nor missing, or an infinite number; None when every cell reads.
    """
    cells = table.cells(index)
    missing = missing_cells(cells)
    filled = np.where(missing, "nan", cells)
    try:
        values = np.array(filled, dtype=np.float64)
    except ValueError:
        for i, cell in enumerate(filled.tolist()):
            try:
                float(cell)
            except ValueError:
                return np.zeros(len(cells)), (i, f"cannot read {cell!r} as a number")
        raise AssertionError("NumPy refused a column whose every cell float() reads") from None
    infinite = np.isinf(values)
    if infinite.any():
        i = int(np.argmax(infinite))
        return values, (i, f"{str(cells[i])!r} is not a finite number")
    return values, None


def cell_texts(table: Table, index: int) -> np.ndarray:
    """One column as category values: an object array of str, None where a cell is missing."""
    cells = table.cells(index)
    out = cells.astype(object)
    out[missing_cells(cells)] = None
    return out
