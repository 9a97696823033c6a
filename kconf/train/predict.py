"""``kconf predict``: a trained model's outputs for the inputs in a file, batch by batch.

Memory stays bounded by the batch size: inputs are read a batch at a time (``.npy`` memory-
mapped, ``.npz`` arrays streamed from the archive, CSV parsed row by row), and outputs are
written as each batch is computed — CSV rows appended, ``.npz`` arrays appended to temporary
files that are then copied into the archive. The output file appears (atomically) only once
every batch is done.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from kconf.data.preprocess import Preprocessing
from kconf.data.problem import DataProblem
from kconf.data.tables import is_table
from kconf.engine.backend import floatx
from kconf.errors import ConfigError, Problem, SourcePos
from kconf.model import Model
from kconf.train.arrays import open_inputs
from kconf.train.preprocessing import raw_inputs, read_table_file, reads_table, warn_for
from kconf.train.trained import Trained, load_trained

OUTPUT_SUFFIXES = (".npz", ".csv")


@dataclass
class Prediction:
    """What ``predict`` wrote: the file, the number of samples, each output's array shape."""

    output: Path
    samples: int
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    trained: Trained | None = None


def predict(target: str | os.PathLike, input: str | os.PathLike, output: str | os.PathLike,
            weights: str | os.PathLike | None = None, batch_size: int | None = None,
            overrides: Sequence[str] = (), prepared: bool = False) -> Prediction:
    """Run a trained model on the inputs of a file and write its outputs to another.

    Args:
        target: a run folder, or a config file (then ``weights`` is required).
        input: ``.npz`` (one array per model input, named like it; ``x`` for one input),
            ``.npy`` (a single-input model) or ``.csv`` (one numeric row per sample, optional
            header).
        output: ``.npz`` (one array per model output, named like the output) or ``.csv``
            (columns ``<output>_<i>``, a sample's values flattened).
        weights: a ``weights.npz`` written by kconf (required for a config).
        batch_size: samples per forward pass (default: the config's ``fit.batch_size``).
        overrides: ``path=value`` overrides applied to the config.
        prepared: the inputs are preprocessed already; without it a run's saved
            preprocessing is applied to each batch first (and a ``.csv``/``.parquet`` input
            of a run trained on a table is read by the run's column names).

    Returns:
        A ``Prediction`` describing what was written.

    Raises:
        ConfigError: a bad target, weights, input file or output name.
    """
    output = Path(output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError([Problem("--output takes an .npz or .csv file", (),
                                   SourcePos(str(output)))])
    if not output.parent.is_dir():
        raise ConfigError([Problem("the output's folder does not exist", (),
                                   SourcePos(str(output)))])
    trained = load_trained(target, weights, overrides, preprocessing=not prepared)
    try:
        result = predict_to_file(trained.model, input, output,
                                 batch_size or trained.cfg.fit.batch_size,
                                 None if prepared else trained.preprocessing)
    except OSError as exc:  # disk full, no permission: nothing half-written is left behind
        raise ConfigError([Problem(f"predicting stopped, nothing was written: {exc}", (),
                                   SourcePos(str(output)))]) from None
    result.trained = trained
    return result


def predict_to_file(model: Model, input: str | os.PathLike, output: str | os.PathLike,
                    batch_size: int, preprocessing: Preprocessing | None = None) -> Prediction:
    """``model.predict`` over a file's inputs, written batch by batch.

    Args:
        model: a built model with its weights.
        input: an ``.npz``, ``.npy`` or ``.csv`` file of inputs (``.parquet`` too for a
            table's preprocessing).
        output: an ``.npz`` or ``.csv`` file to write (replaced atomically at the end).
        batch_size: samples per forward pass.
        preprocessing: applied to each batch of raw inputs first (a run's).

    Returns:
        A ``Prediction``.

    Raises:
        ConfigError: an unreadable input, or an output of an unknown kind.
    """
    output = Path(output)
    names = model.output_names
    if reads_table(Path(input), preprocessing):
        reader = _TableReader(Path(input), preprocessing)
    else:
        reader = open_inputs(input, raw_inputs(model, preprocessing))
    writer_cls = _NpzWriter if output.suffix.lower() == ".npz" else _CsvWriter
    writer = writer_cls(output, names)
    try:
        for xs in reader.batches(batch_size):
            if preprocessing:
                xs = _prepared(preprocessing, xs, Path(input))
            outs = model.predict(xs, batch_size=len(xs[0]))
            writer.add(outs if isinstance(outs, list) else [outs])
        if not writer.sample_shapes:  # no samples at all: empty arrays of the right shapes
            writer.add([np.zeros((0, *(d or 0 for d in t.shape[1:])), dtype=floatx)
                        for t in model.graph.outputs])
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        reader.close()
    return Prediction(output, writer.samples, writer.shapes())


def _prepared(preprocessing: Preprocessing, xs: list, file: Path) -> list:
    """A batch of raw inputs preprocessed; a problem is the input file's."""
    try:
        return preprocessing.apply(xs, tables=any(is_table(a) for a in xs),
                                   warn=warn_for(file))[0]
    except DataProblem as exc:
        raise ConfigError([Problem(m, (), SourcePos(str(file))) for m, _ in exc.items],
                          str(file)) from None


class _TableReader:
    """A table's columns for a run trained on one, read whole (tables are in memory), given
    out a batch at a time."""

    def __init__(self, file: Path, preprocessing: Preprocessing):
        self.file = file
        self.xs, _ = read_table_file(file, preprocessing, targets=False)
        self.samples = len(self.xs[0])

    def batches(self, batch_size):
        for start in range(0, self.samples, batch_size):
            yield [x[start:start + batch_size] for x in self.xs]

    def close(self):
        self.xs = []


class _Writer:
    """Writes outputs batch by batch to a temporary sibling that replaces ``path`` at the end."""

    def __init__(self, path: Path, names: list[str]):
        self.path = path
        self.names = names
        self.samples = 0
        self.sample_shapes: list[tuple[int, ...]] = []
        self.dtypes: list[np.dtype] = []
        self.tmp = path.with_name(f".{path.name}.tmp")

    def add(self, outs: list[np.ndarray]) -> None:
        outs = [np.asarray(o) for o in outs]
        if not self.sample_shapes:
            self.sample_shapes = [tuple(o.shape[1:]) for o in outs]
            self.dtypes = [o.dtype for o in outs]
            self.begin()
        self.write(outs)
        self.samples += len(outs[0])

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: (self.samples, *s) for n, s in zip(self.names, self.sample_shapes)}

    def begin(self) -> None: ...
    def write(self, outs: list[np.ndarray]) -> None: ...
    def finish(self) -> None: ...

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


class _CsvWriter(_Writer):
    """One row per sample, columns ``<output>_<i>``; rows are appended as batches come."""

    def begin(self):
        self.file = open(self.tmp, "w", newline="")
        columns = [f"{name}_{i}" for name, shape in zip(self.names, self.sample_shapes)
                   for i in range(math.prod(shape))]
        self.file.write(",".join(columns) + "\n")
        self.fmt = ",".join(
            ("%d" if d.kind in "iub" else "%.9g")  # 9 digits: float32 reads back exactly
            for d, shape in zip(self.dtypes, self.sample_shapes) for _ in range(math.prod(shape)))

    def write(self, outs):
        flat = np.concatenate([o.reshape(len(o), -1).astype(np.float64) for o in outs], axis=1)
        np.savetxt(self.file, flat, fmt=self.fmt)

    def finish(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        if hasattr(self, "file"):
            self.file.close()
        super().abort()


class _NpzWriter(_Writer):
    """Each output's raw rows go to a temporary file; ``finish`` puts a ``.npy`` header in
    front of each and copies them into the archive, so no output is ever held whole."""

    def begin(self):
        self.dir = tempfile.TemporaryDirectory(prefix=".kconf-predict-", dir=self.path.parent)
        self.parts = [open(Path(self.dir.name) / f"{i}.raw", "wb")
                      for i in range(len(self.names))]

    def write(self, outs):
        for part, out, dtype in zip(self.parts, outs, self.dtypes):
            part.write(np.ascontiguousarray(out, dtype=dtype).tobytes())

    def finish(self):
        with zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, part, dtype, shape in zip(self.names, self.parts, self.dtypes,
                                                self.sample_shapes):
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                          "shape": (self.samples, *shape)}
                part.close()
                with zf.open(f"{name}.npy", "w", force_zip64=True) as dst, \
                        open(part.name, "rb") as src:
                    np.lib.format.write_array_header_1_0(dst, header)
                    shutil.copyfileobj(src, dst, 1 << 20)
        self._cleanup()
        os.replace(self.tmp, self.path)

    def abort(self):
        self._cleanup()
        super().abort()

    def _cleanup(self):
        for part in getattr(self, "parts", []):
            part.close()
        if hasattr(self, "dir"):
            self.dir.cleanup()
