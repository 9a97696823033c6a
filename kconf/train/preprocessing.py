"""A run's fitted preprocessing (``preprocess.json``): saved with the run, read back by
``evaluate``, ``predict``, ``load_run`` and the exports, and written as Keras layers.

The file holds what ``kconf.data.preprocess.Preprocessing`` fitted on the training split:
each step's parameters (statistics as float64 lists, vocabularies, fills), so applying it to
the run's own raw test data gives the arrays the run was evaluated on, to the bit.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from kconf.data.preprocess import Preprocessing
from kconf.errors import ConfigError, Problem, SourcePos
from kconf.files import write_atomic

PREPROCESS_FILE = "preprocess.json"


def save_preprocessing(run_dir: Path, preprocessing: Preprocessing) -> None:
    """Write ``run_dir/preprocess.json`` atomically (readable JSON, one step per entry)."""
    text = json.dumps(preprocessing.to_json(), indent=1)
    # a list of numbers or words on one line (JSON strings hold no raw newline)
    text = re.sub(r"\[[^\[\]{}]*\]", lambda m: re.sub(r"\n\s*", " ", m.group(0))
                  .replace("[ ", "[").replace(" ]", "]"), text)
    write_atomic(Path(run_dir) / PREPROCESS_FILE, text + "\n")


def read_preprocessing(run_dir: Path) -> Preprocessing | None:
    """A run folder's saved preprocessing; None for a run written before kconf saved it.

    Raises:
        ConfigError: a file that is not what ``save_preprocessing`` writes.
    """
    path = Path(run_dir) / PREPROCESS_FILE
    if not path.is_file():
        return None
    try:
        return Preprocessing.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError([Problem(f"cannot read the run's preprocessing: {exc}", (),
                                   SourcePos(str(path)))]) from None


def raw_inputs(model, preprocessing: Preprocessing | None):
    """What the input-file readers need of a model (``input_names``, ``graph.inputs`` with
    ``shape``/``name``/``dtype``), with the shapes of the raw data the preprocessing takes."""
    if not preprocessing or not preprocessing.x_shapes:
        return model
    tensors = [SimpleNamespace(name=t.name, shape=(None, *shape), dtype=t.dtype if not any(
        s.key == "x" and s.index == i for s in preprocessing.steps) else "float32")
        for i, (t, shape) in enumerate(zip(model.graph.inputs, preprocessing.x_shapes))]
    return SimpleNamespace(input_names=model.input_names, graph=SimpleNamespace(inputs=tensors))


def warn_for(file: Path | str):
    """How applying a run's preprocessing to a data file warns (an unknown category, under
    ``unknown: warn``): a ``DataWarning`` naming the file."""
    import warnings

    from kconf.data.problem import DataWarning

    def warn(message: str, path) -> None:
        warnings.warn(DataWarning(f"{file}: {message}"), stacklevel=3)

    return warn


class NotExpressible(ValueError):
    """A fitted step that has no Keras preprocessing layer (a one-hot input)."""


def keras_layers(preprocessing: Preprocessing) -> dict[int, list[dict[str, Any]]]:
    """The numeric steps on each input as Keras preprocessing layers, in order:
    ``{input index: [{"Rescaling": {...}} | {"Normalization": {...}} | {"Reshape": {...}}]}``.

    ``scale`` is a ``Rescaling`` (one statistic) or a ``Normalization`` with mean
    ``low - offset / factor`` and variance ``1 / factor²`` (per feature); ``standardize`` a
    ``Normalization``; per-feature statistics of samples of several axes are applied between
    two ``Reshape`` layers (flat, then back). A table's encoding happens before the inputs
    (the model takes the encoded columns) and is not a layer.

    Raises:
        NotExpressible: a ``one_hot`` step on an input.
    """
    out: dict[int, list[dict[str, Any]]] = {}
    shapes = {i: list(s) for i, s in enumerate(preprocessing.x_shapes)}
    for step in preprocessing.steps:
        if step.key != "x" or step.kind == "table":
            continue
        layers = out.setdefault(step.index, [])
        shape = shapes.get(step.index, [])
        if step.kind == "reshape":
            target = list(step.params["shape"])
            size = math.prod(shape)
            known = math.prod(d for d in target if d != -1)
            shapes[step.index] = [size // known if d == -1 else d for d in target]
            layers.append({"Reshape": {"target_shape": shapes[step.index]}})
            continue
        if step.kind == "one_hot":
            raise NotExpressible(f"input {step.index}: one_hot on an input has no Keras "
                                 "preprocessing layer")
        if step.kind == "scale":
            low, factor = step.stat("low"), step.stat("factor")
            offset = step.params["offset"]
            if low.ndim == 0:
                layers.append({"Rescaling": {"scale": float(factor),
                                             "offset": float(offset - low * factor)}})
                continue
            mean, variance = low - offset / factor, 1.0 / factor ** 2
        else:
            mean, variance = step.stat("mean"), step.stat("std") ** 2
        layers += _normalization(mean, variance, shape)
    return out


def _normalization(mean: np.ndarray, variance: np.ndarray,
                   shape: list[int]) -> list[dict[str, Any]]:
    """A ``Normalization`` by these statistics (flattened around it for several axes)."""
    if mean.ndim == 0:
        return [{"Normalization": {"axis": None, "mean": float(mean),
                                   "variance": float(variance)}}]
    norm = {"Normalization": {"axis": -1, "mean": mean.reshape(-1).tolist(),
                              "variance": variance.reshape(-1).tolist()}}
    if mean.ndim == 1:
        return [norm]
    return [{"Reshape": {"target_shape": [int(mean.size)]}}, norm,
            {"Reshape": {"target_shape": list(shape)}}]


TABLE_SUFFIXES = (".csv", ".parquet")


def reads_table(file: Path, preprocessing: Preprocessing | None) -> bool:
    """Whether a data file is a table to read by the run's column names: a ``.csv`` or
    ``.parquet`` file, for a run whose inputs came from a table source with named columns
    (else a CSV file is rows of the encoded numbers)."""
    tables = preprocessing.tables("x") if preprocessing is not None else {}
    return (Path(file).suffix.lower() in TABLE_SUFFIXES and bool(tables)
            and all(s.params.get("named", True) for s in tables.values()))


def read_table_file(file: Path, preprocessing: Preprocessing, targets: bool = True
                    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """The raw columns a run's table encoding takes, read by name from a CSV (with a header,
    comma-separated) or Parquet file: one structured array per input (and output).

    Raises:
        ConfigError: an unreadable file, a column the run needs that the file lacks, a cell
            that is not a number in a numeric column; located at the file.
    """
    from kconf.data.problem import DataProblem
    from kconf.data.tables import open_table

    file = Path(file)
    kind = "parquet" if file.suffix.lower() == ".parquet" else "csv"
    args = SimpleNamespace(header=True, delimiter=",", skip_rows=0)
    try:
        table = open_table(kind, args, file, ())
        out = {key: [_columns(table, step.params["columns"]) for _, step in
                     sorted(preprocessing.tables(key).items())]
               for key in (("x", "y") if targets else ("x",))}
    except DataProblem as exc:
        raise ConfigError([Problem(m, (), SourcePos(str(file))) for m, _ in exc.items]) from None
    return out["x"], out.get("y")


def _columns(table, columns: list[dict[str, Any]]) -> np.ndarray:
    """The named columns of a table as a structured array (text for categories)."""
    from kconf.data.problem import DataProblem

    names = table.names or []
    lacking = [c["name"] for c in columns if c["name"] not in names]
    if lacking:
        raise DataProblem(f"has no column {', '.join(map(repr, lacking))}, which the run's "
                          f"model takes; it has {', '.join(names)}", ())
    out = np.empty(table.rows, dtype=[(c["name"], object if "vocabulary" in c else np.float64)
                                      for c in columns])
    for column in columns:
        j = names.index(column["name"])
        if "vocabulary" in column:
            out[column["name"]] = table.texts(j)
            continue
        values, bad = table.numbers(j)
        if bad is not None:
            raise DataProblem(f"{table.where(bad[0])}: {table.label(j)}: {bad[1]}", ())
        out[column["name"]] = values
    return out
