"""Array files given on the command line (``--data``, ``--input``): which array feeds which
model input or output, and readers that go through a file batch by batch.

Naming: an ``.npz`` holds one array per model input, named like the input (``main_input``),
and for ``evaluate`` one per output, named like the output (its layer, ``aux_output``, or its
tensor in the graph, ``auxiliary_output``). A model with one input may call it ``x``, one with
one output ``y``. A ``.npy`` file holds one array (in ``evaluate``: ``--data x.npy --data
y.npy``, inputs then outputs in model order). A CSV file holds one row per sample: every
column a number, an optional header row, the values of a sample in row-major order of the
input's shape (64 columns feed an (8, 8, 1) input).
"""
from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from kconf.errors import ConfigError, Problem, SourcePos
from kconf.model import Model



def _error(file: Path | str, message: str) -> ConfigError:
    return ConfigError([Problem(message, (), SourcePos(str(file)))])


def input_keys(model: Model) -> list[list[str]]:
    """For each model input, the array names that may feed it (``x`` for a single input)."""
    names = model.input_names
    return [[n, "x"] if len(names) == 1 else [n] for n in names]


def output_keys(model: Model) -> list[list[str]]:
    """For each model output, the array names that may hold its targets (``y`` for one)."""
    layers = model.output_names
    tensors = [t.name for t in model.graph.outputs]
    keys = [list(dict.fromkeys([a, b])) for a, b in zip(layers, tensors)]
    return [k + ["y"] for k in keys] if len(keys) == 1 else keys


def _pick(available: Sequence[str], candidates: list[list[str]], what: str,
          file: Path) -> list[str]:
    """The array name chosen for each input/output; every missing one reported at once."""
    chosen, missing = [], []
    for keys in candidates:
        found = next((k for k in keys if k in available), None)
        if found is None:
            missing.append(" or ".join(repr(k) for k in keys))
        chosen.append(found)
    if missing:
        raise _error(file, f"has no array for the model's {what} {', '.join(missing)}; it has "
                           f"{sorted(available) or 'no arrays'}")
    return chosen


def _load_file(file: Path):
    """An ``.npy`` array or the arrays of an ``.npz`` (as a dict), fully read."""
    if not file.is_file():
        raise _error(file, "file not found")
    try:
        loaded = np.load(file, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {k: loaded[k] for k in loaded.files}
        return loaded
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise _error(file, f"cannot read the arrays: {exc}") from None


def read_labelled(files: Sequence[str | Path], model: Model) -> tuple[list, list]:
    """Inputs and targets for ``evaluate`` from one ``.npz`` or ``.npy`` files.

    Args:
        files: one ``.npz`` (arrays named like the model's inputs and outputs, or ``x``/``y``
            for a model with one of each), or one ``.npy`` per input then per output.
        model: the model the data is for.

    Returns:
        ``(xs, ys)``: one array per input and per output, in model order.

    Raises:
        ConfigError: a missing file or array, a file that is not arrays, a wrong count.
    """
    files = [Path(f) for f in files]
    n_in, n_out = len(model.graph.inputs), len(model.graph.outputs)
    if len(files) == 1 and files[0].suffix.lower() == ".npz":
        arrays = _load_file(files[0])
        if not isinstance(arrays, dict):
            raise _error(files[0], "is not an .npz archive")
        xs = [arrays[k] for k in _pick(list(arrays), input_keys(model), "inputs", files[0])]
        ys = [arrays[k] for k in _pick(list(arrays), output_keys(model), "outputs", files[0])]
        return xs, ys
    bad = [f for f in files if f.suffix.lower() != ".npy"]
    if bad:
        raise _error(bad[0], "--data takes one .npz file, or .npy files (one per input, then "
                             "one per output)")
    if len(files) != n_in + n_out:
        names = model.input_names + model.output_names
        raise _error(files[0], f"{len(files)} .npy files for a model with {n_in} input(s) and "
                               f"{n_out} output(s): give one each, in the order {names}")
    arrays = []
    for f in files:
        a = _load_file(f)
        if isinstance(a, dict):
            raise _error(f, "is an .npz archive, not an .npy array")
        arrays.append(a)
    return arrays[:n_in], arrays[n_in:]


def check_inputs(arrays: Sequence, names: Sequence[str], model: Model, file: Path) -> None:
    """Every input array has a sample axis, the model input's sample shape and the same
    number of samples; all problems at once.

    Raises:
        ConfigError: naming the array, its shape and the shape the model takes.
    """
    problems = []
    for a, name, t in zip(arrays, names, model.graph.inputs):
        want = tuple(t.shape[1:])
        got = tuple(a.shape[1:]) if a.ndim else None
        if got is None or len(got) != len(want) or any(
                w is not None and g != w for g, w in zip(got, want)):
            shape = tuple(a.shape)
            problems.append(Problem(f"array {name!r} has shape {shape}, but the model's input "
                                    f"{t.name!r} takes samples of shape {want}",
                                    (), SourcePos(str(file))))
    counts = {len(a) for a in arrays if a.ndim}
    if not problems and len(counts) > 1:
        problems.append(Problem(f"the arrays have different sample counts "
                                f"{[len(a) for a in arrays]}", (), SourcePos(str(file))))
    if problems:
        raise ConfigError(problems, str(file))


class InputReader:
    """One file's model inputs, read a batch at a time.

    Attributes:
        file: the input file.
        samples: how many samples it holds (None for CSV, known only at the end).
    """

    file: Path
    samples: int | None = None

    def batches(self, batch_size: int) -> Iterator[list[np.ndarray]]:
        """Yield one list of arrays (one per model input) per batch."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""


def open_inputs(file: str | Path, model: Model) -> InputReader:
    """A reader for the model's inputs in ``file`` (``.npz``, ``.npy`` or ``.csv``).

    Args:
        file: the input file; see the module's docstring for the naming.
        model: the model to feed.

    Returns:
        An ``InputReader``; shapes and names are checked before the first batch.

    Raises:
        ConfigError: an unknown extension, a missing file or array, a shape that does not fit.
    """
    file = Path(file)
    suffix = file.suffix.lower()
    if suffix not in (".npz", ".npy", ".csv"):
        raise _error(file, "--input takes an .npz, .npy or .csv file")
    if not file.is_file():
        raise _error(file, "file not found")
    if suffix == ".npy":
        if len(model.graph.inputs) != 1:
            raise _error(file, f"the model has {len(model.graph.inputs)} inputs "
                               f"{model.input_names}: give them in one .npz, one array each")
        return _NpyReader(file, model)
    if suffix == ".npz":
        return _NpzReader(file, model)
    return _CsvReader(file, model)


class _NpyReader(InputReader):
    """A memory-mapped ``.npy``: batches are read from disk as they are needed."""

    def __init__(self, file: Path, model: Model):
        self.file = file
        try:
            self.array = np.load(file, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise _error(file, f"cannot read the array: {exc}") from None
        check_inputs([self.array], ["x"], model, file)
        self.samples = len(self.array)

    def batches(self, batch_size):
        for start in range(0, self.samples, batch_size):
            yield [np.asarray(self.array[start:start + batch_size])]

    def close(self):
        self.array = None


class _NpyMember:
    """One array of an ``.npz``, read sequentially a few rows at a time (no full load)."""

    def __init__(self, zf: zipfile.ZipFile, member: str):
        self.stream = zf.open(member)
        fmt = np.lib.format
        version = fmt.read_magic(self.stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(self.stream)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(self.stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        if dtype.hasobject:
            raise ValueError("it holds Python objects, not numbers")
        self.shape, self.dtype = tuple(shape), dtype
        self.fortran = fortran and len(shape) > 1
        self.full = None
        if self.fortran:  # column-major on disk: rows are not contiguous, read it whole
            self.full = np.asfortranarray(np.frombuffer(
                self._read(math.prod(shape) * dtype.itemsize), dtype).reshape(shape, order="F"))
        self.row_bytes = math.prod(self.shape[1:]) * dtype.itemsize
        self.offset = 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = self.stream.read(left)
            if not chunk:
                raise ValueError("the array is truncated")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def rows(self, n: int) -> np.ndarray:
        n = min(n, self.shape[0] - self.offset)
        if self.full is not None:
            out = self.full[self.offset:self.offset + n]
        else:
            out = np.frombuffer(self._read(n * self.row_bytes), self.dtype).reshape(
                (n, *self.shape[1:]))
        self.offset += n
        return out


class _NpzReader(InputReader):
    """The inputs of an ``.npz``, each array streamed from the archive."""

    def __init__(self, file: Path, model: Model):
        self.file = file
        try:
            self.zip = zipfile.ZipFile(file)
        except (OSError, zipfile.BadZipFile) as exc:
            raise _error(file, f"is not an .npz archive: {exc}") from None
        members = {Path(m).stem: m for m in self.zip.namelist() if m.endswith(".npy")}
        names = _pick(list(members), input_keys(model), "inputs", file)
        try:
            self.members = [_NpyMember(self.zip, members[n]) for n in names]
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            self.zip.close()
            raise _error(file, f"cannot read the arrays: {exc}") from None
        check_inputs(self.members, names, model, file)
        self.samples = len(self.members[0])

    def batches(self, batch_size):
        for _ in range(0, self.samples, batch_size):
            try:
                yield [m.rows(batch_size) for m in self.members]
            except (ValueError, OSError, zipfile.BadZipFile) as exc:
                raise _error(self.file, f"cannot read the arrays: {exc}") from None

    def close(self):
        self.zip.close()


class _CsvReader(InputReader):
    """Rows of numbers, parsed a chunk at a time; an optional header row is skipped."""

    def __init__(self, file: Path, model: Model):
        self.file = file
        if len(model.graph.inputs) != 1:
            raise _error(file, f"a CSV file feeds one input, the model has "
                               f"{len(model.graph.inputs)} {model.input_names}: use an .npz")
        t = model.graph.inputs[0]
        self.shape = tuple(t.shape[1:])
        if any(d is None for d in self.shape):
            raise _error(file, f"the model's input takes samples of shape {self.shape}; CSV rows "
                               "need a fixed shape: use an .npz or .npy")
        self.width = math.prod(self.shape)
        self.dtype = np.dtype(t.dtype)

    def batches(self, batch_size):
        rows: list[tuple[int, list[str]]] = []  # (line number, cells)
        seen_first = False
        with open(self.file, newline="", encoding="utf-8-sig") as f:
            for number, row in enumerate(csv.reader(f), start=1):
                if not row or all(not cell.strip() for cell in row):
                    continue
                if not seen_first:
                    seen_first = True
                    if not all(_is_number(cell) for cell in row):
                        continue  # the header
                rows.append((number, row))
                if len(rows) == batch_size:
                    yield [self._parse(rows)]
                    rows = []
        if rows:
            yield [self._parse(rows)]

    def _parse(self, rows: list[tuple[int, list[str]]]) -> np.ndarray:
        """The rows as an array of the input's shape; a bad cell named by row and column."""
        out = np.empty((len(rows), self.width), dtype=np.float64)
        for i, (number, row) in enumerate(rows):
            if len(row) != self.width:
                raise _error(self.file, f"row {number} has {len(row)} values, the model's input "
                                        f"takes {self.width} per sample (shape {self.shape})")
            try:
                out[i] = [float(cell) for cell in row]
            except ValueError:
                col, cell = next((c, v) for c, v in enumerate(row, 1) if not _is_number(v))
                raise _error(self.file, f"row {number}, column {col}: {cell!r} is not a "
                                        "number") from None
        return out.reshape((len(rows), *self.shape)).astype(self.dtype, copy=False)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True

