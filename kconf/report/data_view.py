"""What ``kconf data CONFIG`` shows: each split as the model will see it — sizes, shapes,
dtypes, class balance, a table's encoded columns and a few rows.

Pure functions of the prepared data returning plain data (``data_summary``, for ``--json``)
or rich renderables (``data_renderables``); the CLI decides where they go.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from rich.table import Table
from rich.text import Text

#: Values of a sample shown in a row before "…".
SHOWN_VALUES = 8


def _names(names: Sequence[str] | None, count: int, key: str) -> list[str]:
    return list(names) if names and len(names) == count else \
        [key if count == 1 else f"{key}{i}" for i in range(count)]


def _classes(y, vocabulary: list[str] | None) -> dict[str, int] | None:
    """Samples per class of targets that are labels (integers, or one-hot rows); None for
    other targets (regression)."""
    if not isinstance(y, np.ndarray) or not len(y):
        return None
    if y.dtype.kind in "iub" and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        labels = y.reshape(-1)
    elif (y.dtype.kind == "f" and y.ndim == 2 and y.shape[1] > 1 and
          np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
        labels = y.argmax(axis=1)
    else:
        return None
    values, counts = np.unique(labels, return_counts=True)
    out = {}
    for value, count in zip(values.tolist(), counts.tolist()):
        name = str(value)
        if vocabulary is not None and 0 <= value < len(vocabulary):
            name += f" ({vocabulary[value]})"
        out[name] = count
    return out


def _label_vocabulary(preprocessing, k: int) -> list[str] | None:
    """The class names of output k when a table's category column gave its labels."""
    step = preprocessing.tables("y").get(k) if preprocessing else None
    if step is None or len(step.params["columns"]) != 1:
        return None
    return step.params["columns"][0].get("vocabulary")


def feature_columns(preprocessing, k: int) -> list[str] | None:
    """The names of input k's encoded columns, for a table source: ``age``, ``city=paris``
    (a one-hot column), ``city=[OOV]``, ``plan (id)``, ``age (fill 41.5)``; None for other sources."""
    step = preprocessing.tables("x").get(k) if preprocessing else None
    if step is None:
        return None
    out = []
    for column in step.params["columns"]:
        name = column["name"]
        if column.get("encoding") == "one_hot":
            out += [f"{name}=[OOV]"] + [f"{name}={v}" for v in column["vocabulary"]]
        elif "vocabulary" in column:
            out.append(f"{name} (id)")
        else:
            out.append(name + (f" (fill {column['fill']:g})" if "fill" in column else ""))
    return out


def data_summary(prepared, inputs: Sequence[str] | None = None,
                 outputs: Sequence[str] | None = None, rows: int = 3) -> dict[str, Any]:
    """Each split's arrays described as plain data (what ``kconf data --json`` prints).

    Args:
        prepared: ``kconf.data.sources.Prepared`` (the splits and their preprocessing).
        inputs, outputs: the model's input and output names.
        rows: how many first rows of each split to include.

    Returns:
        ``{"splits": {name: {"samples", "x": {name: {shape, dtype}}, "y": ..., "classes",
        "rows"}}, "columns": {input: [...]}}``.
    """
    pre = prepared.preprocessing
    out: dict[str, Any] = {"splits": {}, "columns": {}}
    for name, split in prepared.splits.items():
        xs, ys = split.x, split.y
        xnames, ynames = _names(inputs, len(xs), "x"), _names(outputs, len(ys), "y")
        entry = {
            "samples": len(xs[0]) if xs else 0,
            "x": {n: {"shape": list(a.shape), "dtype": str(a.dtype)} for n, a in zip(xnames, xs)},
            "y": {n: {"shape": list(a.shape), "dtype": str(a.dtype)} for n, a in zip(ynames, ys)},
            "classes": {n: c for k, (n, a) in enumerate(zip(ynames, ys))
                        if (c := _classes(a, _label_vocabulary(pre, k))) is not None},
            "rows": [{"x": [_values(a[i]) for a in xs], "y": [_values(a[i]) for a in ys]}
                     for i in range(min(rows, len(xs[0]) if xs else 0))
                     if all(isinstance(a, np.ndarray) for a in (*xs, *ys))],
        }
        out["splits"][name] = entry
    for k, n in enumerate(_names(inputs, len(next(iter(prepared.splits.values())).x), "x")):
        columns = feature_columns(pre, k)
        if columns is not None:
            out["columns"][n] = columns
    return out


def _values(sample: np.ndarray) -> list:
    """One sample's values, flattened, as Python numbers."""
    return np.asarray(sample).reshape(-1).tolist()


def _shown(values: list) -> str:
    more = len(values) > SHOWN_VALUES
    text = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                     for v in values[:SHOWN_VALUES])
    return f"[{text}{', …' if more else ''}]"


def data_renderables(summary: dict[str, Any], title: str) -> list:
    """The summary as rich renderables: a table of the splits, the encoded columns of each
    table input, and each split's first rows."""
    table = Table(title=title, title_justify="left")
    for column, justify in (("Split", "left"), ("Samples", "right"), ("x", "left"),
                            ("y", "left"), ("Classes (samples)", "left")):
        table.add_column(column, justify=justify)
    for name, entry in summary["splits"].items():
        arrays = {key: "\n".join(f"{n} {tuple(a['shape'])} {a['dtype']}" if len(entry[key]) > 1
                                 else f"{tuple(a['shape'])} {a['dtype']}"
                                 for n, a in entry[key].items()) for key in ("x", "y")}
        classes = []
        for n, counts in entry["classes"].items():
            total = sum(counts.values())
            shares = ", ".join(f"{c}: {k} ({100 * k / total:.1f}%)" for c, k in counts.items())
            classes.append(shares if len(entry["classes"]) == 1 else f"{n}: {shares}")
        table.add_row(name, f"{entry['samples']:,}", arrays["x"], arrays["y"],
                      "\n".join(classes) or "-")
    out: list = [table]
    for n, columns in summary["columns"].items():
        out.append(Text(f"Columns of {n} ({len(columns)}): {', '.join(columns)}"))
    for name, entry in summary["splits"].items():
        if not entry["rows"]:
            continue
        rows = Table(title=f"First rows of {name}", title_justify="left")
        rows.add_column("#", justify="right")
        rows.add_column("x")
        rows.add_column("y")
        for i, row in enumerate(entry["rows"]):
            rows.add_row(str(i), "\n".join(_shown(v) for v in row["x"]),
                         "\n".join(_shown(v) for v in row["y"]))
        out.append(rows)
    return out
