"""Data that stays on disk and is read batch by batch (``stream: true``).

A ``RowSource`` stands where a split holds an array: it has the array's ``shape``, ``dtype``
and ``len``, and ``read(rows)`` gives the rows asked for (a slice or an index array) as an
in-memory array. Indexing it (``source[rows]``) gives another ``RowSource`` over those rows,
so a seeded split (``Split.take``) or ``fit``'s ``validation_split`` stay lazy. The training
loop reads through ``rows_of`` and ``row_nbytes``, which take arrays and sources alike.

What a run's memory holds for a stream is one gathered chunk (``kconf.train.loop``'s
``_GATHER_BYTES``) and the pages of the file it has just read: ``MmapRows`` gives those back
to the system after every read, so peak RSS does not grow with the file.

The files behind a source are fingerprinted (size and modification time) when it is opened;
``check_unchanged`` compares them at every epoch and on resume, so a file rewritten under a
running stream stops the run with ``DataChanged`` instead of mixing two data sets.
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np

from kconf.engine.backend import floatx, xp
from kconf.errors import ConfigError, Problem, SourcePos

#: Rows per read when a whole source is scanned (NaN checks, statistics).
SCAN_BYTES = 16 << 20
#: Scattered rows read between two releases of the mapped pages (``MmapRows``).
RELEASE_ROWS = 64


def _positions(n: int, rows) -> np.ndarray:
    """Row numbers (int64) of a slice or an index array over ``n`` rows."""
    if isinstance(rows, slice):
        picked = range(n)[rows]
        return np.arange(picked.start, picked.stop, picked.step, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < -n or rows.max() >= n):
        raise IndexError(f"row index out of range for {n} rows")
    return np.where(rows < 0, rows + n, rows)


class DataChanged(ConfigError):
    """A streamed file changed (size or modification time) since the run opened it."""


def fingerprint(file: Path) -> dict:
    """Size and modification time (ns) of a file: what ``check_unchanged`` compares."""
    st = os.stat(file)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


class RowSource:
    """Rows of an array read on demand (see the module's docstring).

    Subclasses implement ``_read(index)`` for an index array of the whole source (sorted or
    not) and set ``shape``, ``dtype`` and ``files`` (path -> fingerprint).

    Attributes:
        shape: the shape of the whole source (samples first).
        dtype: the dtype of the rows ``read`` returns.
        files: the files read, with their fingerprints when opened.
        shuffle_buffer: samples per shuffled block (None: a full permutation).
        where: ``(config path, position)`` of the source, for messages; None until
            ``locate_streams`` sets it (a read error is then a ``DataProblem`` for
            ``load_splits``, after it a located ``ConfigError``).
    """

    shape: tuple
    dtype: np.dtype
    files: dict
    shuffle_buffer: int | None = None
    where: tuple | None = None

    def __init__(self):
        self.index: np.ndarray | None = None  # rows of the base source this view shows

    # -- what an array has
    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def row_nbytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __getitem__(self, rows) -> RowSource:
        """A view of some rows (a slice or an index array), still on disk."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        picked = _positions(len(self), rows)
        view.index = picked if self.index is None else self.index[picked]
        view.shape = (len(picked), *self.shape[1:])
        return view

    def read(self, rows) -> np.ndarray:
        """The rows asked for (a slice or an index array of this view), in memory."""
        from kconf.data.problem import DataProblem

        picked = _positions(len(self), rows)
        base = picked if self.index is None else self.index[picked]
        try:
            return self._read(base)
        except DataProblem as exc:
            if self.where is None:  # still loading: load_splits locates it
                raise
            pos = self.where[1]
            raise ConfigError([Problem(m, p, pos) for m, p in exc.items],
                              _file_of(pos)) from None

    def materialize(self) -> np.ndarray:
        """Every row, in memory (read a few MiB at a time into one array)."""
        out = np.empty(self.shape, dtype=self.dtype)
        start = 0
        for chunk in self.scan():
            out[start:start + len(chunk)] = chunk
            start += len(chunk)
        return out

    def _read(self, index: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def scan(self):
        """Yield the whole source in order, a few MiB at a time."""
        step = max(1, SCAN_BYTES // max(1, self.row_nbytes))
        for start in range(0, len(self), step):
            yield self.read(slice(start, start + step))

    def nonfinite(self) -> tuple[int, int | None]:
        """How many values are NaN or infinite, and the first sample holding one."""
        count, first, seen = 0, None, 0
        if self.dtype.kind != "f":
            return 0, None
        for chunk in self.scan():
            bad = ~np.isfinite(chunk.reshape(len(chunk), -1))
            rows = bad.any(axis=1)
            if first is None and rows.any():
                first = seen + int(np.argmax(rows))
            count += int(bad.sum())
            seen += len(chunk)
        return count, first

    def changed(self) -> list[str]:
        """What changed in the source's files since they were opened (empty: nothing)."""
        out = []
        for file, was in self.files.items():
            try:
                now = fingerprint(Path(file))
            except OSError:
                out.append(f"{_shown(file)} is gone")
                continue
            if now != was:
                out.append(_change(file, was, now))
        return out


def _shown(file: str) -> str:
    from kconf.data.problem import shown_path

    return shown_path(Path(file))


def _change(file: str, was: dict, now: dict) -> str:
    return (f"{_shown(file)} changed (size {was['size']:,} -> {now['size']:,} bytes, "
            f"modified {_when(was)} -> {_when(now)})")


def _when(fp: dict) -> str:
    import datetime

    t = datetime.datetime.fromtimestamp(fp["mtime_ns"] / 1e9)
    return t.strftime("%H:%M:%S.%f")[:-3]


class MmapRows(RowSource):
    """A memory-mapped ``.npy`` file; rows are converted to ``dtype`` as they are read, and
    the pages read are given back to the system right after (``MADV_DONTNEED``)."""

    def __init__(self, file: Path):
        super().__init__()
        self.file = Path(file)
        try:
            mapped = np.load(self.file, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc) or "object" in str(exc):
                raise ValueError("it holds Python objects (saved with pickle); kconf reads "
                                 "arrays of numbers only") from None
            raise
        if not isinstance(mapped, np.memmap):
            raise ValueError("it is not an .npy array")
        shape, dtype, offset = mapped.shape, mapped.dtype, mapped.offset
        fortran = not mapped.flags.c_contiguous
        del mapped  # the header read; rows are mapped on first use (and per process)
        if fortran and len(shape) > 1:
            raise ValueError("it is saved in Fortran (column) order: rows are not contiguous "
                             "on disk; save it with np.save(np.ascontiguousarray(x)) to stream")
        self.file_dtype = dtype
        self.dtype = np.dtype(floatx) if dtype.kind == "f" else dtype
        self.shape = self.file_shape = tuple(shape)  # a view's shape is its own
        self.offset = offset
        self.files = {str(self.file): fingerprint(self.file)}
        self._map = None

    def _array(self) -> np.ndarray:
        if self._map is None:
            count = int(np.prod(self.file_shape, dtype=np.int64))
            with open(self.file, "rb") as f:
                self._map = (mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if count
                             else bytes(self.offset))
            self._rows = np.frombuffer(self._map, dtype=self.file_dtype, count=count,
                                       offset=self.offset).reshape(self.file_shape)
        return self._rows

    def _read(self, index: np.ndarray) -> np.ndarray:
        rows = self._array()
        if not len(index):
            return np.empty((0, *self.file_shape[1:]), dtype=self.dtype)
        if index[-1] - index[0] + 1 == len(index) and (
                len(index) == 1 or bool(np.all(np.diff(index) == 1))):
            out = np.array(rows[index[0]:index[-1] + 1], dtype=self.dtype)  # one sequential read
            self._release()
            return out
        # Scattered rows: in file order, a block at a time, each block's pages given back
        # right after (the kernel maps up to 64 KiB around each fault: without the release a
        # chunk of random rows would map a cluster of pages per row).
        order = np.argsort(index, kind="stable")
        ordered = index[order]
        out = np.empty((len(index), *self.file_shape[1:]), dtype=self.dtype)
        for start in range(0, len(index), RELEASE_ROWS):
            part = ordered[start:start + RELEASE_ROWS]
            out[order[start:start + RELEASE_ROWS]] = rows[part]
            self._release()
        return out

    def _release(self) -> None:
        """Drop the mapped pages from this process's memory (they stay in the page cache).
        The whole mapping: the kernel maps more than the rows read (fault-around, large
        folios), and advising a mostly unmapped range costs microseconds."""
        if isinstance(self._map, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def __getstate__(self):  # a view copied for another process maps the file again
        state = dict(self.__dict__)
        state["_map"] = None
        state.pop("_rows", None)
        return state


def is_stream(array) -> bool:
    """True for a ``RowSource`` (data on disk), False for an in-memory array."""
    return isinstance(array, RowSource)


def rows_of(array, rows):
    """Rows of an array or a ``RowSource`` (a slice or index array) as an in-memory array."""
    if isinstance(array, RowSource):
        return array.read(rows)
    if isinstance(rows, slice):
        return array[rows]
    return xp.take(array, rows, axis=0)


def row_nbytes(array) -> int:
    """Bytes of one sample."""
    if isinstance(array, RowSource):
        return array.row_nbytes
    return array[:1].nbytes


def epoch_order(rng: np.random.Generator, n: int, arrays) -> np.ndarray:
    """The training order of one epoch: a permutation of ``n`` from ``rng``.

    With a streamed array that has a ``shuffle_buffer`` B, the samples are cut into blocks of
    B neighbours; the blocks come in a random order and each block's samples in a random
    order (one draw of n keys), so every read touches one block of the file at a time.
    """
    buffer = next((a.shuffle_buffer for a in arrays
                   if isinstance(a, RowSource) and a.shuffle_buffer), None)
    if buffer is None or buffer >= n:
        return rng.permutation(n)
    blocks = -(-n // buffer)
    block_rank = np.empty(blocks, dtype=np.int64)
    block_rank[rng.permutation(blocks)] = np.arange(blocks)
    within = rng.random(n)
    return np.lexsort((within, block_rank[np.arange(n) // buffer]))


def streams_of(*array_lists) -> list[RowSource]:
    """The ``RowSource`` objects among lists of arrays."""
    return [a for arrays in array_lists for a in arrays if isinstance(a, RowSource)]


def check_unchanged(sources, when: str) -> None:
    """Raise ``DataChanged`` when a streamed file changed since it was opened.

    Args:
        sources: ``RowSource`` objects (each file is checked once).
        when: what was about to happen (``"before epoch 3"``), for the message.
    """
    problems, seen = [], set()
    for source in sources:
        key = tuple(source.files)
        if key in seen:
            continue
        seen.add(key)
        for change in source.changed():
            path, pos = source.where or ((), None)
            problems.append(Problem(f"{change} {when}: a streamed data set must not change "
                                    "while a run reads it; the run stopped, its folder keeps "
                                    "the epochs done", path, pos))
    if problems:
        raise DataChanged(problems, _file_of(problems[0].pos))


def _file_of(pos: SourcePos | None) -> str | None:
    return getattr(pos, "file", None)


def fingerprints(sources) -> dict:
    """Every file of the sources with its fingerprint when opened (saved in checkpoints)."""
    out: dict = {}
    for source in sources:
        out.update(source.files)
    return out


def open_npy_stream(file: Path, path: tuple, shuffle_buffer: int | None) -> MmapRows:
    """A streamed ``.npy`` input (``npy: {stream: true}``).

    Raises:
        DataProblem: a missing or unreadable file, one that cannot be streamed.
    """
    from kconf.data.problem import DataProblem, shown_path

    if not file.is_file():
        raise DataProblem(f"data file not found: {shown_path(file)}", path)
    try:
        rows = MmapRows(file)
    except (ValueError, OSError, EOFError) as exc:
        raise DataProblem(f"cannot stream {shown_path(file)}: {exc}", path) from None
    rows.shuffle_buffer = shuffle_buffer
    return rows


def locate_streams(splits: dict, steps, cfg) -> list[Problem]:
    """Give every streamed array of the splits its place in the YAML (for the messages of
    reads during training); the preprocessing steps that cannot run on a stream.

    Args:
        splits: the loaded splits.
        steps: ``data.preprocess``.
        cfg: the config (positions).

    Returns:
        One problem per step that changes a streamed input (its statistics, a reshape or a
        one-hot would need the whole data in memory; a model layer does the same per batch).
    """
    streamed = False
    for split in splits.values():
        for a in split.x:
            if isinstance(a, RowSource):
                a.where = (split.path, cfg.source.locate(split.path))
                streamed = True
    if not streamed:
        return []
    problems = []
    for i, step in enumerate(steps):
        if getattr(step.args, "x", None) is not None:
            at = ("data", "preprocess", i, step.tag, "x")
            problems.append(Problem(
                f"{step.tag} changes x, which is streamed from disk (stream: true) and never "
                "all in memory: do it in the model instead (Rescaling, Normalization, Reshape "
                "layers work batch by batch)", at, cfg.source.locate(at)))
    return problems


#: Up to this many stream files, a checkpoint names each with its fingerprint; beyond (an
#: image folder of many files), it keeps their count and one digest of them all.
NAMED_FILES = 1000


def split_fingerprints(splits: dict) -> dict:
    """The files of every streamed array of the splits, with their fingerprints (or, for
    more than ``NAMED_FILES``, ``{"digest": ..., "count": ...}``), as checkpoints save them."""
    files = fingerprints(streams_of(*(s.x for s in splits.values()),
                                    *(s.y for s in splits.values())))
    if len(files) <= NAMED_FILES:
        return files
    import hashlib

    text = "\n".join(f"{f}\t{v['size']}\t{v['mtime_ns']}" for f, v in sorted(files.items()))
    return {"digest": hashlib.sha256(text.encode()).hexdigest(), "count": len(files)}


def changed_since(saved: dict, now: dict) -> list[str]:
    """What differs between the stream files a checkpoint saw and those found now (both as
    ``split_fingerprints`` gives them)."""
    if "digest" in saved or "digest" in now:
        if saved.get("digest") == now.get("digest"):
            return []
        return [f"the {saved.get('count', len(saved)):,} streamed files changed (a file's size "
                f"or modification time, or which files there are; {now.get('count', len(now)):,} "
                "now)"]
    out = []
    for file, was in saved.items():
        current = now.get(file)
        if current is None:
            out.append(f"{_shown(file)} is no longer read by the config")
        elif current != was:
            out.append(_change(file, was, current))
    out += [f"{_shown(file)} is streamed now but was not when the run started"
            for file in now if file not in saved and saved]
    return out
