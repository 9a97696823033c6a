"""Streamed tables (``csv``/``parquet`` with ``stream: true``): feature rows read from the file a
batch at a time, encoded with what was fitted on the training split.

Opening a streamed CSV indexes its data rows (the byte offset and line of each, found with one
vectorized pass over the file; a quoted value must not hold a line break); a Parquet file is
read by row groups. The targets are read into memory (they are small and the split, the
stratification and the checks need them); the features stay on disk as a ``TableRows`` per
model input. Their encoding is fitted by one scan of the training rows (``fit_streamed``): the
vocabularies of categorical columns by counting, a ``mean`` fill by a running sum;
``median`` needs every value at once and is refused for a stream.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from kconf.data.csv_source import Table
from kconf.data.problem import DataProblem, shown_path
from kconf.data.stream import RowSource, fingerprint
from kconf.data.tables import CsvColumns, resolve_columns, structured, table_width
from kconf.engine.backend import floatx
from kconf.errors import ConfigPath

#: Bytes read per step while indexing a CSV file.
INDEX_BYTES = 16 << 20


class CsvIndex:
    """Where each data row of a CSV file is: byte offset, length and line number.

    Blank lines (empty or only spaces) are skipped, ``skip_rows`` lines come off the top, and
    with ``header`` the next row names the columns, as ``csv_source.read_table``.
    """

    def __init__(self, file: Path, header: bool, delimiter: str, skip_rows: int,
                 path: ConfigPath):
        shown = shown_path(file)
        if not file.is_file():
            raise DataProblem(f"data file not found: {shown}", path)
        self.file, self.delimiter, self.path = file, delimiter, path
        ends = []
        size = 0
        try:
            with open(file, "rb") as f:
                while chunk := f.read(INDEX_BYTES):
                    ends.append(np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10) + size)
                    size += len(chunk)
        except OSError as exc:
            raise DataProblem(f"cannot read {shown}: {exc}", path) from None
        newlines = np.concatenate(ends) if ends else np.zeros(0, np.int64)
        starts = np.concatenate([[0], newlines + 1])
        stops = np.concatenate([newlines, [size]])
        if len(starts) and starts[-1] >= size:  # the file ends with a line break
            starts, stops = starts[:-1], stops[:-1]
        lines = np.arange(1, len(starts) + 1)
        starts, stops, lines = starts[skip_rows:], stops[skip_rows:], lines[skip_rows:]
        if len(starts) and starts[0] == 0:
            bom = self._bytes(0, min(3, stops[0]))
            if bom == b"\xef\xbb\xbf":
                starts = starts.copy()
                starts[0] = 3
        keep = self._not_blank(starts, stops)
        self.starts, self.stops, self.lines = starts[keep], stops[keep], lines[keep]
        self.names = None
        if header and len(self.starts):
            self.names = [c.strip() for c in self._rows(np.array([0]))[0]]
            self.starts, self.stops, self.lines = self.starts[1:], self.stops[1:], self.lines[1:]
        if not len(self.starts):
            raise DataProblem(f"{shown} has no data rows", path)
        self.fingerprint = fingerprint(file)

    def __len__(self) -> int:
        return len(self.starts)

    def _bytes(self, start: int, stop: int) -> bytes:
        with open(self.file, "rb") as f:
            f.seek(start)
            return f.read(stop - start)

    def _not_blank(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """Lines with more than spaces on them (only short lines are looked at)."""
        keep = np.ones(len(starts), dtype=bool)
        short = np.flatnonzero(stops - starts <= 8)
        if len(short):
            with open(self.file, "rb") as f:
                for i in short.tolist():
                    f.seek(starts[i])
                    keep[i] = bool(f.read(stops[i] - starts[i]).strip())
        return keep

    def _rows(self, index: np.ndarray) -> list[list[str]]:
        """The cells of data rows ``index`` (sorted), read a contiguous run at a time."""
        out: list[list[str]] = []
        with open(self.file, "rb") as f:
            breaks = np.flatnonzero(np.diff(index) != 1) + 1
            for run in np.split(index, breaks):
                if not len(run):
                    continue
                first, last = self.starts[run[0]], self.stops[run[-1]]
                f.seek(first)
                block = f.read(last - first)
                text = [block[a - first:b - first].decode("utf-8") for a, b in
                        zip(self.starts[run].tolist(), self.stops[run].tolist())]
                out += list(csv.reader(io.StringIO("\n".join(text)),
                                       delimiter=self.delimiter))
        return out

    def table(self, index: np.ndarray) -> CsvColumns:
        """Rows ``index`` (sorted) as a table the column readers of ``tables`` take."""
        rows = self._rows(index)
        lines = self.lines[index].tolist()
        width = len(self.names) if self.names is not None else len(rows[0])
        for row, line in zip(rows, lines):
            if len(row) != width:
                what = "the header has" if self.names is not None else "the first row has"
                raise DataProblem(f"{shown_path(self.file)}:{line}: expected {width} values "
                                  f"({what}), got {len(row)}", self.path)
        return CsvColumns(Table(self.file, self.names, rows, lines))


class ParquetIndex:
    """A Parquet file read by row groups (only the groups and columns a read needs)."""

    def __init__(self, file: Path, path: ConfigPath):
        from kconf.data.parquet_source import ParquetTable

        self.whole = ParquetTable(file, path)
        self.file, self.path, self.names = file, path, self.whole.names
        meta = self.whole._file.metadata
        counts = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        self.bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.fingerprint = fingerprint(file)

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def table(self, index: np.ndarray, columns: list[int] | None = None):
        """Rows ``index`` (sorted) as a ``ParquetTable`` holding just those rows."""
        import pyarrow as pa

        from kconf.data.parquet_source import ParquetTable

        columns = list(range(len(self.names))) if columns is None else columns
        groups = np.searchsorted(self.bounds, index, side="right") - 1
        parts: dict[int, list] = {j: [] for j in columns}
        for g in np.unique(groups).tolist():
            local = index[groups == g] - self.bounds[g]
            data = self.whole._file.read_row_group(g, columns=[self.names[j] for j in columns])
            for k, j in enumerate(columns):
                parts[j].append(data.column(k).combine_chunks().take(pa.array(local)))
        sub = object.__new__(ParquetTable)
        sub.__dict__.update(self.whole.__dict__)
        sub.rows = len(index)
        sub._columns = {j: pa.concat_arrays(p) for j, p in parts.items()}
        rows = index

        def where(row: int) -> str:
            return f"{shown_path(self.file)}: row {int(rows[row]) + 1}"

        sub.where = where
        return sub


class TableRows(RowSource):
    """One model input's feature columns of a streamed table, encoded when read.

    ``fitted`` is shared by the views of a source (the splits of one file): the encoding
    ``fit_streamed`` found on the training rows, applied to the rows of every split.
    """

    def __init__(self, index, cols, categorical: set[int], filled: set[int],
                 path: ConfigPath, args):
        super().__init__()
        self.rows_index = index
        self.cols, self.categorical, self.filled = cols, categorical, filled
        self.config_path, self.args = path, args
        self.dtype = np.dtype(floatx)
        self.files = {str(index.file): index.fingerprint}
        self.fitted: dict = {}
        self._n = len(index)

    @property
    def shape(self) -> tuple:
        params = self.fitted.get("params")
        return (self._n, table_width(params, "x") if params else 0)

    @shape.setter
    def shape(self, value: tuple) -> None:
        self._n = value[0]

    def raw(self, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` of the file (any order) as the structured array of their columns."""
        order = np.argsort(index, kind="stable")
        table = self.rows_index.table(index[order], *self._columns())
        found: list = []
        out = structured(table, self.cols, "x", self.categorical, self.filled,
                         self.config_path, found)
        if found:
            raise DataProblem(found[0][0], found[0][1], found[1:])
        back = np.empty_like(out)
        back[order] = out
        return back

    def _columns(self) -> tuple:
        if isinstance(self.rows_index, ParquetIndex):
            return ([j for _, j in self.cols],)
        return ()

    def _read(self, index: np.ndarray) -> np.ndarray:
        from kconf.data.tables import apply_table

        return apply_table(self.fitted["params"], "x", self.raw(index), "streamed",
                           self.config_path).astype(self.dtype, copy=False)

    def nonfinite(self) -> tuple[int, int | None]:
        """Encoded table values are finite (a bad cell is refused when read)."""
        return 0, None


def load_table_stream(kind: str, args, file: Path, inputs, outputs, aliases,
                      path: ConfigPath) -> tuple[list, list]:
    """The features (``TableRows``, unfitted) and targets (structured arrays, in memory) of a
    streamed table source; every column problem at once."""
    if kind == "parquet":
        index = ParquetIndex(file, (*path, "path"))
        header = index.whole
    else:
        index = CsvIndex(file, args.header, args.delimiter, args.skip_rows, (*path, "path"))
        header = index.table(np.array([0]))
    found: list = []
    x_cols, y_cols, categorical, filled = resolve_columns(header, args, inputs, outputs,
                                                          aliases, path, found)
    if found:
        raise DataProblem(found[0][0], found[0][1], found[1:])
    if args.fills() and any(m == "median" for _, _, m in args.fills()):
        raise DataProblem("fill: median needs every value of a column at once; a streamed "
                          "table takes mean or constant", (*path, "fill"))
    xs = []
    for cols in x_cols:
        rows = TableRows(index, cols, categorical, filled, path, args)
        rows.shuffle_buffer = args.shuffle_buffer
        xs.append(rows)
    ys = [_targets(index, cols, categorical, path) for cols in y_cols]
    return xs, ys


def _targets(index, cols, categorical: set[int], path: ConfigPath) -> np.ndarray:
    """One output's target columns of every row, read a piece at a time."""
    parts, found = [], []
    step = 1 << 16
    extra = ([j for _, j in cols],) if isinstance(index, ParquetIndex) else ()
    for start in range(0, len(index), step):
        rows = np.arange(start, min(start + step, len(index)))
        parts.append(structured(index.table(rows, *extra), cols, "y", categorical, set(), path,
                                found))
        if found:
            raise DataProblem(found[0][0], found[0][1], found[1:])
    return np.concatenate(parts)


def fit_streamed(splits: dict, fit_samples: int | None) -> list[tuple[int, dict, tuple]]:
    """Fit the encoding of every streamed table input on the training rows (one scan).

    Returns:
        ``(input index, params, config path)`` of each: what ``FittedStep("table", "x", ...)``
        holds, in the format of ``tables.fit_table``.
    """
    out = []
    for k, rows in enumerate(splits["train"].x):
        if not isinstance(rows, TableRows) or rows.fitted.get("params"):
            continue
        view = rows if fit_samples is None else rows[:fit_samples]
        params = _fit(view)
        rows.fitted["params"] = params  # shared with the other splits' views
        out.append((k, params, rows.config_path))
    return out


def _fit(rows: TableRows) -> dict:
    """``fit_table``'s parameters from a scan: vocabularies counted, mean fills summed."""
    from kconf.data.tables import _setting

    args = rows.args
    sums: dict[str, list[float]] = {}
    counts: dict[str, dict[str, int]] = {}
    names: list[str] = []
    step = 1 << 15
    for start in range(0, len(rows), step):
        picked = np.arange(start, min(start + step, len(rows)))
        chunk = rows.raw(picked if rows.index is None else rows.index[picked])
        names = list(chunk.dtype.names)
        for name in names:
            values = chunk[name]
            if values.dtype == object:
                present = values[values != None].astype(str)  # noqa: E711
                tokens, n = np.unique(present, return_counts=True)
                seen = counts.setdefault(name, {})
                for t, c in zip(tokens.tolist(), n.tolist()):
                    seen[t] = seen.get(t, 0) + c
            else:
                known = values[~np.isnan(values)]
                total = sums.setdefault(name, [0.0, 0])
                total[0] += float(known.sum(dtype=np.float64))
                total[1] += len(known)
    columns = []
    for name in names:
        if name in counts:
            tokens = np.array(sorted(counts[name]), dtype=str)
            n = np.array([counts[name][t] for t in tokens.tolist()])
            tokens = tokens[np.lexsort((tokens, n))[::-1]]  # StringLookup's order
            columns.append({"name": name, "encoding": _setting(args, name, args.encodings()),
                            "vocabulary": tokens.tolist()})
            continue
        column: dict = {"name": name}
        method = _setting(args, name, args.fills())
        if method == "constant":
            column["fill"] = float(args.fill_value)
        elif method == "mean":
            total, count = sums[name]
            if not count:
                raise DataProblem(f"column {name!r} has no value in the training split to "
                                  "take the mean of", (*rows.config_path, "fill"))
            column["fill"] = total / count
        columns.append(column)
    return {"columns": columns, "unknown": args.unknown,
            "named": getattr(args, "header", True)}  # as fit_table: read new data by name
