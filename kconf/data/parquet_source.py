"""Columns of a Parquet file, read with pyarrow (the ``parquet`` extra) when a config names one.

Only the columns a config chooses are read. A null (or a float NaN) is a missing value.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kconf.data.problem import DataProblem, shown_path
from kconf.errors import ConfigPath

MISSING_PYARROW = "Parquet files need pyarrow: pip install -e '.[parquet]'"


class ParquetTable:
    """A Parquet file's schema, and its columns read on demand.

    Attributes:
        file: the file.
        names: the column names, in the file's order.
    """

    def __init__(self, file: Path, path: ConfigPath):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataProblem(MISSING_PYARROW, path) from None
        shown = shown_path(file)
        if not file.is_file():
            raise DataProblem(f"data file not found: {shown}", path)
        try:
            self._file = pq.ParquetFile(file)
            self.names = list(self._file.schema_arrow.names)
            self.rows = self._file.metadata.num_rows
        except Exception as exc:  # pyarrow's errors (ArrowInvalid, OSError) name the cause
            raise DataProblem(f"cannot read {shown}: {exc}", path) from None
        if self.rows == 0:
            raise DataProblem(f"{shown} has no data rows", path)
        self.file = file
        self.path = path
        self._columns: dict[int, object] = {}

    @property
    def width(self) -> int:
        """The number of columns."""
        return len(self.names)

    def label(self, index: int) -> str:
        """How messages name a column: ``column 'age'``."""
        return f"column {self.names[index]!r}"

    def where(self, row: int) -> str:
        """How messages name a data row: ``people.parquet: row 12`` (1-based)."""
        return f"{shown_path(self.file)}: row {row + 1}"

    def _column(self, index: int):
        if index not in self._columns:
            try:
                table = self._file.read(columns=[self.names[index]])
            except Exception as exc:
                raise DataProblem(f"cannot read {shown_path(self.file)}: {exc}",
                                  self.path) from None
            self._columns[index] = table.column(0).combine_chunks()
        return self._columns[index]

    def is_text(self, index: int) -> bool:
        """Whether a column holds strings (or dictionary-encoded strings)."""
        import pyarrow as pa

        kind = self._column(index).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        return pa.types.is_string(kind) or pa.types.is_large_string(kind)

    def numbers(self, index: int) -> tuple[np.ndarray, tuple[int, str] | None]:
        """One column as float64, null as NaN; ``(values, (row, message) of the first bad
        value or None)`` as ``csv_source.cell_numbers``."""
        import pyarrow as pa

        column = self._column(index)
        if self.is_text(index):
            return np.zeros(len(column)), (0, f"holds strings ({column.type})")
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                or pa.types.is_boolean(column.type)):
            return np.zeros(len(column)), (0, f"holds {column.type}, not numbers")
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        values = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
        values[~valid] = np.nan
        infinite = np.isinf(values)
        if infinite.any():
            i = int(np.argmax(infinite))
            return values, (i, f"{values[i]} is not a finite number")
        return values, None

    def texts(self, index: int) -> np.ndarray:
        """One column as category values: an object array of str, None where null."""
        column = self._column(index)
        values = column.to_pylist()
        if not self.is_text(index):  # numbers used as categories (codes): their text
            values = [None if v is None else str(v) for v in values]
        return np.array(values, dtype=object)
