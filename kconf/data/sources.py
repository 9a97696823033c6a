"""Data sources named in a config: the docs' seeded dummy data, arrays from .npz/.npy files,
columns of CSV and Parquet files and scikit-learn's digits; the seeded split of one source;
the encoding of table columns and the ``preprocess`` steps, fitted on the training split.

Each split given as its own ``random`` source draws from its own random stream derived from
the config's seed, so adding a test split never changes the training data.
"""
from __future__ import annotations

import math
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kconf.data.checks import content_problems
from kconf.config.objectives import loss_class_name
from kconf.data.digits import load_digits
from kconf.data.preprocess import (
    FittedStep,
    Preprocessing,
    apply_steps,
    fit_tables,
    to_categorical,
)
from kconf.data.problem import DataProblem, DataWarning
from kconf.data.tables import class_codes, is_table, load_table
from kconf.data.split import Split, split_indices
from kconf.data.stream import locate_streams, open_npy_stream
from kconf.data.table_stream import fit_streamed
from kconf.engine.backend import floatx
from kconf.errors import ConfigError, Problem
from kconf.shapes import format_shape

SPLITS = ("train", "validation", "test")

__all__ = ["SPLITS", "Prepared", "Split", "check_shapes", "load_prepared", "load_splits",
           "split_rng", "to_categorical"]


def split_rng(seed: int, split: str) -> np.random.Generator:
    """The random stream of one split's dummy data."""
    return np.random.default_rng([seed, 2, SPLITS.index(split)])


def shuffle_rng(seed: int) -> np.random.Generator:
    """The stream ``data.split`` shuffles the samples of ``data.source`` with.

    Args:
        seed: ``data.split.seed``, else the config's seed.

    Returns:
        A generator independent of the weights', training's and dummy data's streams.
    """
    return np.random.default_rng([seed, 3])


def load_splits(cfg) -> dict[str, Split]:
    """Every split the config names, loaded and preprocessed; all data errors at once.

    Args:
        cfg: a config from ``load_config``.

    Returns:
        ``"train"`` and, when the config has them, ``"validation"`` and ``"test"``.

    Raises:
        ConfigError: as ``load_prepared``.
    """
    return load_prepared(cfg).splits


@dataclass
class Prepared:
    """A config's splits as the model sees them, and the fitted preprocessing that made them
    from the raw data (what a run saves as ``preprocess.json``)."""

    splits: dict[str, Split]
    preprocessing: Preprocessing


def load_prepared(cfg) -> Prepared:
    """Every split the config names, loaded, encoded and preprocessed (each step fitted on the
    training split); all data errors at once. A warning (a category the training split never
    had, under ``unknown: warn``) is issued as a located ``DataWarning``.

    Args:
        cfg: a config from ``load_config``.

    Returns:
        The ``Prepared`` splits (``"train"`` and, when the config has them, ``"validation"``
        and ``"test"``) and their fitted ``Preprocessing``.

    Raises:
        ConfigError: a missing file, a missing array name or column, a cell that is not a
            number, arrays whose sample counts differ, scikit-learn (pyarrow) missing for the
            digits (a Parquet file), a preprocessing step that does not fit its data; each
            located in the YAML.
    """
    problems: list[Problem] = []

    def report(exc: DataProblem) -> None:
        problems.extend(Problem(m, p, cfg.source.locate(p)) for m, p in exc.items)

    def warn(message: str, path: tuple) -> None:
        warnings.warn(DataWarning(Problem(message, path, cfg.source.locate(path)).format()),
                      stacklevel=2)

    data = cfg.data
    out: dict[str, Split] = {}
    if data.source is not None:
        try:
            out = _split_source(cfg)
        except DataProblem as exc:
            report(exc)
    for split, spec in data.splits().items():
        path = ("data", split, spec.kind)
        try:
            out[split] = _counted(*_load(spec.kind, spec.args, cfg, split, path), path=path)
        except DataProblem as exc:
            report(exc)
    fitted, shapes = [], {"x": [], "y": []}
    if not problems:
        problems += locate_streams(out, data.preprocess, cfg)
    if not problems:
        key = "source" if data.source is not None else "train"
        spec = getattr(data, key)
        fit_samples = _fit_samples(cfg, len(out["train"].x[0]))
        try:
            fitted = [FittedStep("table", "x", k, params, at)
                      for k, params, at in fit_streamed(out, fit_samples)]
            fitted += fit_tables(out, spec.args, ("data", key, spec.kind), fit_samples, warn)
            shapes = {k: [list(a.shape[1:]) for a in getattr(out["train"], k)]
                      for k in ("x", "y")}
            if data.preprocess:
                fitted += apply_steps(out, data.preprocess, cfg.input_names(),
                                      cfg.output_names(), cfg.output_aliases(), fit_samples)
        except DataProblem as exc:
            report(exc)
    if problems:
        raise ConfigError(sorted(problems, key=_position), cfg.source.file)
    return Prepared(out, Preprocessing(fitted, x_shapes=shapes["x"], y_shapes=shapes["y"]))


def _position(problem: Problem) -> tuple[int, int]:
    """Problems of a file in the order of their lines (those without a line last)."""
    pos = problem.pos
    if pos is None or pos.line is None:
        return (1 << 30, 0)
    return (pos.line, pos.col or 0)


def _fit_samples(cfg, n: int) -> int:
    """The training samples that ``fit`` trains on (what ``validation_split`` leaves)."""
    fraction = cfg.fit.validation_split
    return int(math.floor(n * (1.0 - fraction))) if fraction else n


def _counted(x: list[np.ndarray], y: list[np.ndarray], sample_weight=None, *,
             path: tuple) -> Split:
    """A split of arrays with one sample count (the sample weights' too; they must be
    numbers >= 0, one per sample)."""
    counts = {len(a) for a in (*x, *y)}
    if len(counts) > 1:
        raise DataProblem(f"the arrays have different sample counts: x {[len(a) for a in x]}, "
                          f"y {[len(a) for a in y]}", path)
    if sample_weight is not None:
        w = np.asarray(sample_weight)
        if w.dtype.kind not in "iuf" or w.ndim != 1 or len(w) not in counts:
            raise DataProblem(f"sample_weight must be one number per sample: {len(x[0])} "
                              f"numbers, got shape {w.shape} of {w.dtype}",
                              (*path, "sample_weight"))
        w = w.astype(floatx)
        if not (np.isfinite(w).all() and (w >= 0).all()):
            raise DataProblem("sample_weight must be finite numbers >= 0",
                              (*path, "sample_weight"))
        sample_weight = w
    return Split(x, y, path, sample_weight)


def _split_source(cfg) -> dict[str, Split]:
    """``data.source`` loaded and divided as ``data.split`` says (all training data without
    ``split``)."""
    spec, split = cfg.data.source, cfg.data.split
    path = ("data", "source", spec.kind)
    if spec.kind == "images" and spec.args.subset == "both":
        if split is not None:
            raise DataProblem("the images' subset: both already splits data.source into "
                              "training and validation: leave out data.split (or use it "
                              "instead of validation_split)", ("data", "split"))
        parts = _images(spec.args, cfg, path)
        return {SPLITS[i]: _counted(*parts[p], path=path)
                for i, p in enumerate(("training", "validation"))}
    whole = _counted(*_load(spec.kind, spec.args, cfg, "train", path), path=path)
    if split is None:
        return {"train": whole}
    if split.validation > 0 and cfg.fit.validation_split > 0:
        raise DataProblem("give data.split.validation or fit.validation_split, not both",
                          ("fit", "validation_split"))
    labels = None
    if split.stratify:
        labels = _class_labels(whole.y, ("data", "split", "stratify"))
    seed = cfg.seed if split.seed is None else split.seed
    try:
        parts = split_indices(len(whole.x[0]), split.validation, split.test,
                              shuffle_rng(seed), labels)
    except ValueError as exc:
        raise DataProblem(str(exc), ("data", "split")) from None
    return {name: whole.take(indices) for name, indices in parts.items()}


def _class_labels(ys: list[np.ndarray], path: tuple) -> np.ndarray:
    """One class per sample, to stratify by: integer labels, or the index of one-hot rows."""
    if len(ys) != 1:
        raise DataProblem(f"stratify needs one output's class labels; the data has {len(ys)} "
                          "targets", path)
    y = ys[0]
    if is_table(y):
        try:
            return class_codes(y)
        except ValueError as exc:
            raise DataProblem(str(exc), path) from None
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    if y.dtype.kind in "iub" or (y.dtype.kind == "f" and np.array_equal(y, np.round(y))):
        return y.reshape(len(y), -1)[:, 0].astype(np.int64)
    raise DataProblem("stratify needs class labels (integers or one-hot rows); the targets "
                      "are not whole numbers", path)


def _load(kind: str, args, cfg, split: str, path: tuple):
    inputs, outputs, aliases = cfg.input_names(), cfg.output_names(), cfg.output_aliases()
    if kind == "random":
        rng = split_rng(cfg.seed, split)
        samples = args.samples
        xs = [_random_array(spec, samples, rng) for spec in args.x_for(inputs)]
        ys = [_random_target(spec, samples, rng) for spec in args.y_for(outputs, aliases)]
        return xs, ys
    if kind == "digits":
        x, y = load_digits(path)
        return [x], [y]
    if kind == "images":
        if args.subset == "both":
            raise DataProblem("subset: both makes the training and validation splits of "
                              "data.source; under data.train give subset: training (and "
                              "subset: validation under data.validation)", (*path, "subset"))
        return next(iter(_images(args, cfg, path).values()))
    base = cfg.source.base_dir
    if kind in ("csv", "parquet"):
        if args.stream:
            from kconf.data.table_stream import load_table_stream

            if args.sample_weight is not None:
                raise DataProblem("sample_weight is read into memory: not with stream: true "
                                  "(give the weights as a .npz or .npy source, or leave "
                                  "stream out)", (*path, "sample_weight"))
            return load_table_stream(kind, args, _file(base, args.path), inputs, outputs,
                                     aliases, path)
        return load_table(kind, args, _file(base, args.path), inputs, outputs, aliases, path)
    weights = None
    if kind == "npz":
        arrays = _read(base, args.path, (*path, "path"))
        if not isinstance(arrays, dict):
            raise DataProblem(f"{args.path} is not an .npz archive", (*path, "path"))

        def pick(name: str, key: str):
            if name not in arrays:
                raise DataProblem(f"{args.path} has no array {name!r}; it has "
                                  f"{sorted(arrays)}", (*path, key))
            return arrays[name]

        if args.sample_weight is not None:
            weights = pick(args.sample_weight, "sample_weight")
        return ([_floats(pick(n, "x")) for n in args.x_for(inputs)],
                [pick(n, "y") for n in args.y_for(outputs, aliases)], weights)
    if kind == "npy":
        if args.sample_weight is not None:
            weights = _read(base, args.sample_weight, (*path, "sample_weight"))
        ys = [_read(base, f, (*path, "y")) for f in args.y_for(outputs, aliases)]
        if args.stream:
            xs = [open_npy_stream(_file(base, f), (*path, "x"), args.shuffle_buffer)
                  for f in args.x_for(inputs)]
            return xs, ys, weights
        return [_floats(_read(base, f, (*path, "x"))) for f in args.x_for(inputs)], ys, weights
    raise AssertionError(f"unhandled data source {kind!r}")  # the schema admits no other kind


def _images(args, cfg, path: tuple) -> dict:
    """The parts of an ``images`` source (``kconf.data.images.load_images``)."""
    from kconf.data.images import load_images

    folder = _file(cfg.source.base_dir, args.path)
    seed = cfg.seed if args.seed is None else args.seed
    return load_images(args.model_copy(update={"path": str(folder)}), seed, path)


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


def _file(base: Path, name: str) -> Path:
    """A data path as written, relative to the config's folder."""
    return Path(name) if Path(name).is_absolute() else base / name


def _read(base: Path, name: str, path: tuple):
    """Load a .npy array or a .npz archive (as a dict) relative to the config's folder."""
    file = _file(base, name)
    if not file.is_file():
        raise DataProblem(f"data file not found: {file}", path)
    try:
        loaded = np.load(file, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataProblem(f"{file} holds an array of Python objects (saved with pickle); "
                              "kconf reads arrays of numbers only", path) from None
        raise DataProblem(f"cannot read {file}: {exc}", path) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataProblem(f"cannot read {file}: {exc}", path) from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:  # an archive reads its arrays lazily: their errors come here
            try:
                return {k: loaded[k] for k in loaded.files}
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    raise DataProblem(f"{file} holds an array of Python objects (saved with "
                                      "pickle); kconf reads arrays of numbers only", path) from None
                raise DataProblem(f"cannot read {file}: {exc}", path) from None
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                raise DataProblem(f"cannot read {file}: {exc}", path) from None
    return loaded


def _floats(x: np.ndarray) -> np.ndarray:
    return x.astype(floatx, copy=False) if x.dtype.kind == "f" else x


def check_shapes(splits: dict[str, Split], graph, cfg) -> None:
    """Every split's arrays fit the model's inputs and outputs; all mismatches at once. When
    they do, what they hold is checked too (``kconf.data.checks``): samples in every split,
    numbers only, no NaN/inf unless ``data.allow_nan``, sparse labels inside the classes.

    Raises:
        ConfigError: located at the data source in the YAML, naming both shapes (or the
            file and array whose values are wrong).
    """
    problems = []
    losses = cfg.compile.loss_for([t.name for t in graph.outputs], cfg.output_aliases())
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
            if loss_class_name(loss) == "SparseCategoricalCrossentropy":
                ok = _fits(label, out[:-1]) or _fits(label, (*out[:-1], 1))
                want = f"integer labels of shape {format_shape((*out[:-1], 1))}"
            else:
                ok = _fits(label, out) or (out[-1] == 1 and _fits(label, out[:-1]))
                want = f"targets of shape {format_shape(out)}"
                if not ok and out[-1] not in (None, 1) and label[-1:] == (1,):
                    want += (" (integer labels: add the preprocess step {one_hot: {y: "
                             f"{out[-1]}}}}} (one_hot: true for random data), or use a "
                             "sparse_ loss)")
            if not ok:
                problems.append(Problem(
                    f"y{_named(t, graph.outputs)} has samples of shape {label} but the model's "
                    f"output needs {want}", *where))
    if not problems:  # shapes fit: now what the arrays hold (empty, NaN, labels, dtypes)
        problems = content_problems(splits, graph, cfg, losses)
    problems = list(dict.fromkeys(problems))  # the splits of one source repeat its problems
    if problems:
        raise ConfigError(problems, cfg.source.file)


def _named(tensor, tensors) -> str:
    return f" ({tensor.name})" if len(tensors) > 1 else ""


def _fits(shape, want) -> bool:
    return len(shape) == len(want) and all(w is None or s == w for s, w in zip(shape, want))
