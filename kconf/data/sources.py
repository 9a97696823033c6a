"""Data sources named in a config: the docs' seeded dummy data, and arrays from .npz/.npy files.

Each split (train / validation / test) draws from its own random stream derived from the
config's seed, so adding a test split never changes the training data.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kconf.engine.backend import floatx
from kconf.errors import ConfigError, Problem

SPLITS = ("train", "validation", "test")


@dataclass
class Split:
    """Arrays of one split, with the config path they came from (for error messages)."""

    x: np.ndarray
    y: np.ndarray
    path: tuple


def to_categorical(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Keras's ``to_categorical``: integer labels (N,) or (N, 1) -> one-hot (N, num_classes)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    out = np.zeros((*labels.shape, num_classes), dtype=floatx)
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


def split_rng(seed: int, split: str) -> np.random.Generator:
    """The random stream of one split's dummy data."""
    return np.random.default_rng([seed, 2, SPLITS.index(split)])


def load_splits(cfg) -> dict[str, Split]:
    """Every split the config names, loaded; all data errors of the file reported at once.

    Raises:
        ConfigError: a missing file, a missing array name, an unreadable file.
    """
    out, problems = {}, []
    for split in SPLITS:
        spec = getattr(cfg.data, split)
        if spec is None:
            continue
        path = ("data", split, spec.kind)
        try:
            x, y = _load(spec.kind, spec.args, cfg, split, path)
        except _DataProblem as exc:
            problems.append(Problem(exc.message, exc.path, cfg.source.locate(exc.path)))
            continue
        if len(x) != len(y):
            problems.append(Problem(f"x has {len(x)} samples but y has {len(y)}", path,
                                    cfg.source.locate(path)))
            continue
        out[split] = Split(x, y, path)
    if problems:
        raise ConfigError(problems, cfg.source.file)
    return out


class _DataProblem(Exception):
    def __init__(self, message: str, path: tuple):
        super().__init__(message)
        self.message, self.path = message, path


def _load(kind: str, args, cfg, split: str, path: tuple):
    if kind == "random":
        return _random(args, split_rng(cfg.seed, split))
    base = cfg.source.base_dir
    if kind == "npz":
        arrays = _read(base, args.path, (*path, "path"))
        found = {}
        for key in ("x", "y"):
            name = getattr(args, key)
            if name not in arrays:
                raise _DataProblem(f"{args.path} has no array {name!r}; it has "
                                   f"{sorted(arrays)}", (*path, key))
            found[key] = arrays[name]
        return _floats(found["x"]), found["y"]
    if kind == "npy":
        return (_floats(_read(base, args.x, (*path, "x"))), _read(base, args.y, (*path, "y")))
    raise AssertionError(f"unhandled data source {kind!r}")  # the schema admits no other kind


def _random(args, rng: np.random.Generator):
    x = rng.random((args.samples, *args.x), dtype=floatx)
    if args.classes is not None:
        labels = rng.integers(args.classes, size=(args.samples, 1))
        y = to_categorical(labels, args.classes) if args.one_hot else labels
    else:
        y = rng.random((args.samples, *args.y), dtype=floatx)
    return x, y


def _read(base: Path, name: str, path: tuple):
    """Load a .npy array or a .npz archive (as a dict) relative to the config's folder."""
    file = Path(name) if Path(name).is_absolute() else base / name
    if not file.is_file():
        raise _DataProblem(f"data file not found: {file}", path)
    try:
        loaded = np.load(file, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise _DataProblem(f"cannot read {file}: {exc}", path) from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    return loaded


def _floats(x: np.ndarray) -> np.ndarray:
    return x.astype(floatx, copy=False) if x.dtype.kind == "f" else x


def check_shapes(splits: dict[str, Split], graph, cfg) -> None:
    """Every split's arrays fit the model's input and output; all mismatches at once.

    Raises:
        ConfigError: located at the data source in the YAML, naming both shapes.
    """
    problems = []
    (x_tensor,) = graph.inputs
    (y_tensor,) = graph.outputs
    sparse = cfg.compile.loss.startswith("sparse")
    for split in splits.values():
        want_x = x_tensor.shape[1:]
        if not _fits(split.x.shape[1:], want_x):
            problems.append(Problem(
                f"x has samples of shape {tuple(split.x.shape[1:])} but the model's input "
                f"takes {want_x}", split.path, cfg.source.locate(split.path)))
        out = y_tensor.shape[1:]
        label = tuple(split.y.shape[1:])
        if sparse:
            ok = label in (tuple(out[:-1]), (*out[:-1], 1))
            want = f"integer labels of shape {(*out[:-1], 1)}"
        else:
            ok = _fits(label, out) or (out[-1] == 1 and _fits(label, out[:-1]))
            want = f"targets of shape {tuple(out)}"
            if not ok and out[-1] not in (None, 1) and label[-1:] == (1,):
                want += " (integer labels: use one_hot: true, or a sparse_ loss)"
        if not ok:
            problems.append(Problem(
                f"y has samples of shape {label} but the model's output needs {want}",
                split.path, cfg.source.locate(split.path)))
    if problems:
        raise ConfigError(problems, cfg.source.file)


def _fits(shape, want) -> bool:
    return len(shape) == len(want) and all(w is None or s == w for s, w in zip(shape, want))
