"""Table sources (CSV and Parquet files) as arrays, and the encoding fitted on their training
split.

``load_table`` reads the columns a config chooses (by name, glob or 0-based index) into one
NumPy structured array per model input and output: a numeric column as float64 (NaN where a
value is missing), a categorical column as text (None where missing). Nothing is encoded yet:
``fit_table`` looks at the training split (vocabularies, fills) and ``apply_table`` turns any
split's structured array into the model's numbers with what was fitted, so a test split never
leaks into the encoding. The fitted parameters are plain JSON (a run's ``preprocess.json``).
"""
from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kconf.data.csv_source import cell_numbers, cell_texts, read_table
from kconf.data.problem import DataProblem, shown_path
from kconf.engine.backend import floatx
from kconf.errors import ConfigPath
from kconf.text import suggest

GLOB_CHARS = "*?["


def is_glob(column: Any) -> bool:
    """Whether a column as written is a glob pattern (``score_*``) rather than one name."""
    return isinstance(column, str) and any(c in column for c in GLOB_CHARS)


#: ``(message, config path)`` -> None: how a fitted step reports what it only warns about.
Warn = Callable[[str, ConfigPath], None]
#: How many unknown category values a message shows.
SHOWN = 5


def open_table(kind: str, args, file: Path, path: ConfigPath):
    """The table of a ``csv`` or ``parquet`` source (Parquet read column by column)."""
    if kind == "parquet":
        from kconf.data.parquet_source import ParquetTable

        return ParquetTable(file, (*path, "path"))
    return CsvColumns(read_table(file, header=args.header, delimiter=args.delimiter,
                                  skip_rows=args.skip_rows, path=(*path, "path")))


class CsvColumns:
    """A CSV ``Table`` with the column access ``ParquetTable`` has."""

    def __init__(self, table):
        self.table = table
        self.file, self.names, self.width = table.file, table.names, table.width
        self.rows = len(table.rows)
        self.label, self.where = table.label, table.where

    def is_text(self, index: int) -> bool:
        return False  # CSV cells are text; a column is a category only when the config says

    def numbers(self, index: int):
        return cell_numbers(self.table, index)

    def texts(self, index: int) -> np.ndarray:
        return cell_texts(self.table, index)


def _matches(table, column: str | int) -> list[int]:
    """The columns a name, glob or index stands for (empty when none)."""
    if isinstance(column, int):
        return [column] if column < table.width else []
    names = table.names or []
    if is_glob(column):
        return [j for j, n in enumerate(names) if fnmatch.fnmatchcase(n, column)]
    return [names.index(column)] if column in names else []


def _unknown(table, column: str | int) -> str:
    """Why a column the config names is not in the file."""
    shown = shown_path(table.file)
    if isinstance(column, int):
        return (f"column index {column} is out of range: {shown} has {table.width} columns "
                f"(0-{table.width - 1})")
    names = table.names or []
    if is_glob(column):
        return f"no column matches {column!r}; the columns of {shown}: {', '.join(names)}"
    close = suggest(column, names)
    hint = f" (did you mean {close!r}?)" if close is not None else ""
    return f"unknown column {column!r}{hint}; the columns of {shown}: {', '.join(names)}"


def field_name(table, index: int) -> str:
    """A column's name in the arrays: its header name, or its index as text."""
    return table.names[index] if table.names is not None else str(index)


def load_table(kind: str, args, file: Path, inputs, outputs, aliases,
               path: ConfigPath) -> tuple[list[np.ndarray], list[np.ndarray], Any]:
    """The x and y columns of a table file as structured arrays, and the sample weights
    (float32, or None without a ``sample_weight`` column); every problem at once.

    Args:
        kind: ``"csv"`` or ``"parquet"``.
        args: the source's ``CsvArgs`` / ``ParquetArgs``.
        file: the file, resolved against the config's folder.
        inputs, outputs, aliases: the model's names (``RunConfig``).
        path: the config path of the source (``("data", "source", "csv")``).

    Returns:
        ``(xs, ys, sample_weight)``: one structured array per input and output, a field
        per column; the weights, or None.

    Raises:
        DataProblem: an unknown column or glob that matches none, a feature that is also a
            target, a cell that is not a number in a column not listed as categorical, a
            missing value without ``fill`` (or in a target), pyarrow missing for Parquet.
    """
    table = open_table(kind, args, file, path)
    found: list[tuple[str, ConfigPath]] = []
    x_cols, y_cols, categorical, filled = resolve_columns(table, args, inputs, outputs,
                                                          aliases, path, found)
    if found:
        raise DataProblem(found[0][0], found[0][1], found[1:])
    arrays: dict[str, list[np.ndarray]] = {"x": [], "y": []}
    for key, per_array in (("x", x_cols), ("y", y_cols)):
        for cols in per_array:
            arrays[key].append(structured(table, cols, key, categorical, filled, path, found))
    weights = None
    for at, j in weight_column(table, args, path, []):
        values, bad = table.numbers(j)
        if bad is not None:
            found.append((f"{table.label(j)}: {bad[1]} (row {bad[0]})", at))
        else:
            weights = np.asarray(values, dtype=np.float32)
    if found:
        raise DataProblem(found[0][0], found[0][1], found[1:])
    return arrays["x"], arrays["y"], weights


def weight_column(table, args, path: ConfigPath, found: list) -> list[tuple[ConfigPath, int]]:
    """``[(config path, column index)]`` of the ``sample_weight`` column (empty without
    one); a column that is not in the table goes to ``found``."""
    if args.sample_weight is None:
        return []
    at = (*path, "sample_weight")
    matched = _matches(table, args.sample_weight)
    if len(matched) != 1:
        found.append((_unknown(table, args.sample_weight) if not matched else
                      "sample_weight is one column; this names several", at))
        return []
    return [(at, matched[0])]


def resolve_columns(table, args, inputs, outputs, aliases, path: ConfigPath, found: list):
    """Which columns of ``table`` each input and output takes, which are categorical and
    which are filled; what does not resolve goes to ``found`` as ``(message, path)``.

    Returns:
        ``(x_cols, y_cols, categorical, filled)``: per input (output) a list of
        ``(config path, column index)``; sets of column indexes.
    """

    def resolve(key: str, refs) -> list[tuple[ConfigPath, int]]:
        out = []
        for sub, column in refs:
            at = (*path, key, *sub)
            matched = _matches(table, column)
            if not matched:
                found.append((_unknown(table, column), at))
            out += [(at, j) for j in matched]
        return out

    y_cols = [resolve("y", refs) for refs in args.y_for(outputs, aliases)]
    targets = {j for cols in y_cols for _, j in cols}
    weighing = {j for _, j in weight_column(table, args, path, found)}  # not a feature
    x_refs = args.x_for(inputs)
    if x_refs == [None]:
        x_cols = [[((*path, "x"), j) for j in range(table.width)
                   if j not in targets and j not in weighing]]
        if not x_cols[0]:
            raise DataProblem("every column is a target (y): give x, the feature columns",
                              (*path, "y"))
    else:
        x_cols = [resolve("x", refs) for refs in x_refs]
        found += [(f"{table.label(j)} is also a target (y); a feature must not be the label",
                   at) for cols in x_cols for at, j in cols if j in targets]
        found += [(f"{table.label(j)} is the sample_weight column; a feature must not be it",
                   at) for cols in x_cols for at, j in cols if j in weighing]
    chosen = {j for cols in (*x_cols, *y_cols) for _, j in cols}
    categorical = set()
    for sub, column, _ in args.encodings():
        at = (*path, "categorical", *sub)
        for j in _matched(table, column, at, found):
            if j not in chosen:
                found.append((f"{table.label(j)} is categorical but neither a feature (x) nor "
                              "a target (y)", at))
            categorical.add(j)
    filled = _filled(args, table, x_cols, categorical, path, found)
    return x_cols, y_cols, categorical, filled


def _matched(table, column, at, found: list) -> list[int]:
    """The columns a name or glob picks; none is a problem at ``at``."""
    matched = _matches(table, column)
    if not matched:
        found.append((_unknown(table, column), at))
    return matched


def _filled(args, table, x_cols, categorical: set[int], path: ConfigPath,
            found: list) -> set[int]:
    """The feature columns ``fill`` covers; a fill entry for no numeric feature is a problem."""
    features = {j for cols in x_cols for _, j in cols} - categorical
    out = set()
    for sub, column, _ in args.fills():
        at = (*path, "fill", *sub)
        if column is None:
            return features
        for j in _matched(table, column, at, found):
            if j not in features:
                found.append((f"{table.label(j)} is not a numeric feature: fill fills missing "
                              "values of features (x) that are not categorical", at))
            out.add(j)
    return out


def structured(table, cols, key: str, categorical: set[int], filled: set[int],
                path: ConfigPath, found: list) -> np.ndarray:
    """One array's columns as a structured array (float64 numbers, text categories)."""
    names = [field_name(table, j) for _, j in cols]
    seen = set()
    for (at, j), name in zip(cols, names):
        if name in seen:
            found.append((f"{table.label(j)} is chosen twice", at))
        seen.add(name)
    if len(seen) < len(names):
        return np.zeros(0)
    out = np.empty(table.rows, dtype=[(n, object if j in categorical else np.float64)
                                      for n, (_, j) in zip(names, cols)])
    for name, (at, j) in zip(names, cols):
        if j in categorical:
            out[name] = table.texts(j)
            continue
        values, bad = table.numbers(j)
        if bad is not None:
            row, message = bad
            hint = ""
            if "cannot read" in message or "strings" in message:
                hint = " (a column of text: list it in categorical)"
            found.append((f"{table.where(row)}: {table.label(j)}: {message}{hint}", path))
            continue
        missing = np.isnan(values)
        if missing.any() and j not in filled:
            row = int(np.argmax(missing))
            fix = ("a target must have every value" if key == "y" else
                   "give fill: mean, median or constant")
            found.append((f"{table.where(row)}: {table.label(j)}: missing value ({fix})", path))
        out[name] = values
    return out


def is_table(array: np.ndarray) -> bool:
    """Whether an array is a table source's raw columns (a structured array)."""
    return array.dtype.names is not None


def class_codes(array: np.ndarray) -> np.ndarray:
    """One integer class per sample of a raw table target (one column), to stratify by."""
    if len(array.dtype.names) != 1:
        raise ValueError(f"stratify needs one target column; y has {len(array.dtype.names)}")
    values = array[array.dtype.names[0]]
    if values.dtype == object:
        return np.unique(np.where(values == None, "", values).astype(str),  # noqa: E711
                         return_inverse=True)[1].reshape(-1)
    return values.astype(np.int64)


# --- the encoding fitted on the training split ------------------------------------------------


def _setting(args, name: str, entries) -> Any:
    """The setting an entry list (``encodings()`` / ``fills()``) gives a column, or None."""
    for _, column, value in entries:
        if column is None or str(column) == name or (
                is_glob(column) and fnmatch.fnmatchcase(name, column)):
            return value
    return None


def fit_table(args, key: str, train: np.ndarray, path: ConfigPath) -> dict[str, Any]:
    """The encoding of one array's columns, fitted on the training split.

    Args:
        args: the source's table arguments (``categorical``, ``fill``, ``unknown``).
        key: ``"x"`` (features: an out-of-vocabulary id 0 first) or ``"y"`` (labels: the
            sorted values, no out-of-vocabulary id).
        train: the training split's structured array.
        path: the source's config path.

    Returns:
        ``{"columns": [...], "unknown": ..., "named": ...}``: per column its name and a
        ``fill`` (numbers) or ``vocabulary`` and ``encoding`` (categories), as JSON;
        ``named``: the columns have names (a header), so new data is read by them.

    Raises:
        DataProblem: a fill by mean or median of a column the training split has no value of.
    """
    columns = []
    for name in train.dtype.names:
        values = train[name]
        if values.dtype == object:
            present = values[values != None].astype(str)  # noqa: E711
            tokens, counts = np.unique(present, return_counts=True)
            if key == "x":  # Keras's StringLookup: most frequent first, ties by the token, descending
                tokens = tokens[np.lexsort((tokens, counts))[::-1]]
            columns.append({"name": name, "encoding": _setting(args, name, args.encodings()),
                            "vocabulary": tokens.tolist()})
            continue
        column: dict[str, Any] = {"name": name}
        method = _setting(args, name, args.fills()) if key == "x" else None
        if method is not None:
            known = values[~np.isnan(values)]
            if method == "constant":
                column["fill"] = float(args.fill_value)
            elif not len(known):
                raise DataProblem(f"column {name!r} has no value in the training split to take "
                                  f"the {method} of", (*path, "fill"))
            else:
                column["fill"] = float(np.mean(known) if method == "mean" else np.median(known))
        columns.append(column)
    named = getattr(args, "header", True)  # columns known by name: a later file is read by them
    return {"columns": columns, "unknown": args.unknown, "named": named}


def table_width(params: dict[str, Any], key: str) -> int:
    """The number of values per sample the encoding gives."""
    oov = 1 if key == "x" else 0
    return sum(len(c["vocabulary"]) + oov if c.get("encoding") == "one_hot" else 1
               for c in params["columns"])


def apply_table(params: dict[str, Any], key: str, array: np.ndarray, split: str,
                path: ConfigPath, warn: Warn | None = None) -> np.ndarray:
    """A split's structured array encoded as fitted: float32 features, or targets (int64
    labels when every value is a whole number and no column is one-hot).

    Args:
        params: what ``fit_table`` returned.
        key: ``"x"`` or ``"y"``.
        array: the split's structured array (a field per column the fit saw).
        split: the split's name, for messages.
        path: the source's config path (messages about categories go to its
            ``categorical``, about fills to its ``fill``).
        warn: called with each warning (an unknown category under ``unknown: warn``).

    Returns:
        ``(N, table_width(params, key))`` numbers.

    Raises:
        DataProblem: a missing column, a missing value with no fill, an unknown category
            under ``unknown: error`` (or in a target).
    """
    missing = [c["name"] for c in params["columns"] if c["name"] not in (array.dtype.names or ())]
    if missing:
        raise DataProblem(f"the {split} data has no column {', '.join(map(repr, missing))}; "
                          f"it has {', '.join(array.dtype.names or ())}", path)
    parts, one_hot = [], False
    for column in params["columns"]:
        values = array[column["name"]]
        if "vocabulary" in column:
            ids = _lookup(column, key, values, split, params["unknown"], path, warn)
            if column["encoding"] == "one_hot":
                width = len(column["vocabulary"]) + (1 if key == "x" else 0)
                parts.append(np.eye(width, dtype=np.float64)[ids])
                one_hot = True
            else:
                parts.append(ids[:, None].astype(np.float64))
            continue
        values = values.astype(np.float64)
        gaps = np.isnan(values)
        if gaps.any():
            if "fill" not in column:
                raise DataProblem(f"column {column['name']!r} of the {split} data has a missing "
                                  f"value (row {int(np.argmax(gaps)) + 1}) and no fill was "
                                  "fitted for it", (*path, "fill"))
            values = np.where(gaps, column["fill"], values)
        parts.append(values[:, None])
    out = np.concatenate(parts, axis=1)
    if key == "y" and not one_hot and np.array_equal(out, np.round(out)):
        return out.astype(np.int64)
    return out.astype(floatx)


def _lookup(column: dict[str, Any], key: str, values: np.ndarray, split: str, policy: str,
            path: ConfigPath, warn: Warn | None) -> np.ndarray:
    """Category values to ids: vocabulary position (+1 for features, whose id 0 is the
    out-of-vocabulary value: a missing one, or one the training split never had)."""
    present = values != None  # noqa: E711 (elementwise on an object array)
    text = np.where(present, values, "").astype(str)
    tokens, inverse = np.unique(text, return_inverse=True)
    index = {t: i for i, t in enumerate(column["vocabulary"])}
    mapped = np.array([index.get(t, -1) for t in tokens.tolist()], dtype=np.int64)
    ids = mapped[inverse.reshape(-1)]
    unknown = (ids < 0) & present
    at = (*path, "categorical")
    if key == "y":
        if not present.all() or unknown.any():
            bad = "a missing label" if not present.all() else \
                f"label {str(text[np.argmax(unknown)])!r}"
            raise DataProblem(f"column {column['name']!r}: the {split} data has {bad} that the "
                              f"training split never had; its classes: "
                              f"{', '.join(column['vocabulary'])}", at)
        return ids
    if unknown.any():
        seen = sorted(set(text[unknown].tolist()))
        shown = ", ".join(map(repr, seen[:SHOWN])) + (", ..." if len(seen) > SHOWN else "")
        message = (f"column {column['name']!r}: {int(unknown.sum())} value(s) of the {split} "
                   f"data that the training split never had ({shown})")
        if policy == "error":
            raise DataProblem(f"{message} (unknown: error; unknown: warn maps them to the "
                              "out-of-vocabulary id 0)", at)
        if policy == "warn" and warn is not None:
            warn(f"{message}: mapped to the out-of-vocabulary id 0", at)
    return np.where(ids < 0, -1, ids) + 1

