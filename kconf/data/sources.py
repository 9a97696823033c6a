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
from kconf.engine.layers.base import format_shape
from kconf.errors import ConfigError, Problem

SPLITS = ("train", "validation", "test")


@dataclass
class Split:
    """Arrays of one split — one per model input and output, in model order — with the config
    path they came from (for error messages)."""

    x: list[np.ndarray]
    y: list[np.ndarray]
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
        ConfigError: a missing file, a missing array name, an unreadable file, arrays whose
            sample counts differ.
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
        counts = {len(a) for a in (*x, *y)}
        if len(counts) > 1:
            problems.append(Problem(
                f"the arrays have different sample counts: x {[len(a) for a in x]}, "
                f"y {[len(a) for a in y]}", path, cfg.source.locate(path)))
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
    inputs, outputs, aliases = cfg.input_names(), cfg.output_names(), cfg.output_aliases()
    if kind == "random":
        rng = split_rng(cfg.seed, split)
        samples = args.samples
        xs = [_random_array(spec, samples, rng) for spec in args.x_for(inputs)]
        ys = [_random_target(spec, samples, rng) for spec in args.y_for(outputs, aliases)]
        return xs, ys
    base = cfg.source.base_dir
    if kind == "npz":
        arrays = _read(base, args.path, (*path, "path"))
        if not isinstance(arrays, dict):
            raise _DataProblem(f"{args.path} is not an .npz archive", (*path, "path"))

        def pick(name: str, key: str):
            if name not in arrays:
                raise _DataProblem(f"{args.path} has no array {name!r}; it has "
                                   f"{sorted(arrays)}", (*path, key))
            return arrays[name]

        return ([_floats(pick(n, "x")) for n in args.x_for(inputs)],
                [pick(n, "y") for n in args.y_for(outputs, aliases)])
    if kind == "npy":
        return ([_floats(_read(base, f, (*path, "x"))) for f in args.x_for(inputs)],
                [_read(base, f, (*path, "y")) for f in args.y_for(outputs, aliases)])
    raise AssertionError(f"unhandled data source {kind!r}")  # the schema admits no other kind


def _random_array(spec, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform values in [low, high): floats, or integers (token ids) for an integer dtype."""
    low, high = spec.bounds()
    shape = (samples, *spec.shape)
    if np.dtype(spec.dtype).kind in "iu":
        return rng.integers(low, high, size=shape).astype(spec.dtype)
    x = rng.random(shape, dtype=floatx)
    return x if (low, high) == (0, 1) else (low + (high - low) * x).astype(floatx)


def _random_target(spec, samples: int, rng: np.random.Generator) -> np.ndarray:
    """The docs' dummy targets: labels of shape (N, 1) (one-hot if asked), or uniform floats."""
    if spec.classes is not None:
        labels = rng.integers(spec.classes, size=(samples, 1))
        return to_categorical(labels, spec.classes) if spec.one_hot else labels
    return rng.random((samples, *spec.shape), dtype=floatx)


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
    """Every split's arrays fit the model's inputs and outputs; all mismatches at once.

    Raises:
        ConfigError: located at the data source in the YAML, naming both shapes.
    """
    problems = []
    losses = cfg.compile.loss_for([t.name for t in graph.outputs])
    for split in splits.values():
        where = (split.path, cfg.source.locate(split.path))
        for t, x in zip(graph.inputs, split.x):
            if not _fits(x.shape[1:], t.shape[1:]):
                problems.append(Problem(
                    f"x{_named(t, graph.inputs)} has samples of shape {tuple(x.shape[1:])} but "
                    f"the model's input takes {format_shape(t.shape[1:])}", *where))
        for t, y, loss in zip(graph.outputs, split.y, losses):
            out = tuple(t.shape[1:])
            label = tuple(y.shape[1:])
            if loss.startswith("sparse"):
                ok = _fits(label, out[:-1]) or _fits(label, (*out[:-1], 1))
                want = f"integer labels of shape {format_shape((*out[:-1], 1))}"
            else:
                ok = _fits(label, out) or (out[-1] == 1 and _fits(label, out[:-1]))
                want = f"targets of shape {format_shape(out)}"
                if not ok and out[-1] not in (None, 1) and label[-1:] == (1,):
                    want += " (integer labels: use one_hot: true, or a sparse_ loss)"
            if not ok:
                problems.append(Problem(
                    f"y{_named(t, graph.outputs)} has samples of shape {label} but the model's "
                    f"output needs {want}", *where))
    if problems:
        raise ConfigError(problems, cfg.source.file)


def _named(tensor, tensors) -> str:
    return f" ({tensor.name})" if len(tensors) > 1 else ""


def _fits(shape, want) -> bool:
    return len(shape) == len(want) and all(w is None or s == w for s, w in zip(shape, want))
