"""A trained model from a run folder, or from a config plus a weights file.

    trained = load_trained("runs/mlp_softmax/20240101-120000")        # resolved.yaml + weights.npz
    trained = load_trained("configs/mlp_softmax.yaml", weights="w.npz")

Weights are matched by name (``layer/weight``, as ``weights.npz`` stores them), never by
position, so a weights file of another model is refused with the layer that does not fit.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kconf.api import build_model
from kconf.data.preprocess import Preprocessing
from kconf.errors import ConfigError, Problem, SourcePos
from kconf.model import Model
from kconf.train.resolve import resolve_config
from kconf.train.preprocessing import read_preprocessing, warn_for
from kconf.train.runs import read_source_info

RESOLVED = "resolved.yaml"
WEIGHTS = "weights.npz"


@dataclass
class Trained:
    """A compiled model with trained weights, the config it came from, where from, and the
    preprocessing its run fitted (``preprocess.json``; None without one).

        run = kconf.load_run("runs/digits_mlp/20240101-120000")
        run.predict(raw_pixels)                 # scaled as in training, then the model
        run.evaluate(raw_pixels, raw_labels)    # {"loss": ..., "accuracy": ...}
        run.predict(prepared, prepared=True)    # inputs already preprocessed
    """

    cfg: Any
    model: Model
    weights: Path
    run_dir: Path | None = None
    preprocessing: Preprocessing | None = None

    def prepare(self, x, y=None, prepared: bool = False, source: str = "the data"
                ) -> tuple[list, list | None]:
        """Raw inputs (and targets) as the model takes them: the run's preprocessing applied
        (its table encoding too, when ``x`` holds a table's raw columns).

        Args:
            x: an array (one input) or a list of arrays, in model order.
            y: the targets (an array or a list), or None.
            prepared: the data is preprocessed already; it is only put in lists.
            source: how warnings name the data (an unknown category).

        Raises:
            ConfigError: data the preprocessing cannot take (a shape that does not reshape,
                a label outside the classes), located in the run's ``preprocess.json``.
        """
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        ys = None if y is None else (list(y) if isinstance(y, (list, tuple)) else [y])
        if prepared or not self.preprocessing:
            return xs, ys
        from kconf.data.problem import DataProblem
        from kconf.data.tables import is_table

        try:
            return self.preprocessing.apply(xs, ys, tables=any(is_table(a) for a in xs),
                                            warn=warn_for(source))
        except DataProblem as exc:
            where = SourcePos(str((self.run_dir or Path()) / "preprocess.json"))
            raise ConfigError([Problem(m, (), where) for m, _ in exc.items]) from None

    def predict(self, x, batch_size: int | None = None, prepared: bool = False):
        """``model.predict`` on raw inputs (``prepared``: on preprocessed ones)."""
        xs, _ = self.prepare(x, prepared=prepared)
        return self.model.predict(xs if len(xs) > 1 else xs[0],
                                  batch_size=batch_size or self.cfg.fit.batch_size)

    def evaluate(self, x, y, batch_size: int | None = None, prepared: bool = False) -> dict:
        """``model.evaluate`` on raw data (``prepared``: preprocessed), as a dict."""
        xs, ys = self.prepare(x, y, prepared=prepared)
        return self.model.evaluate(xs if len(xs) > 1 else xs[0], ys if len(ys) > 1 else ys[0],
                                   batch_size=batch_size or self.cfg.fit.batch_size,
                                   return_dict=True)


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder (a directory holding ``resolved.yaml``)."""
    return Path(path).is_dir() and (Path(path) / RESOLVED).is_file()


def load_trained(target: str | os.PathLike, weights: str | os.PathLike | None = None,
                 overrides: Sequence[str] = (), preprocessing: bool = True) -> Trained:
    """Build the model of a run folder or a config and load trained weights into it.

    Args:
        target: a run folder (its ``resolved.yaml`` and ``weights.npz`` are used) or a config
            file (then ``weights`` is required).
        weights: a ``.npz`` written by kconf (arrays named ``layer/weight``); for a run folder
            it replaces the folder's ``weights.npz``.
        overrides: command-line ``path=value`` overrides applied to the config.
        preprocessing: also get the preprocessing the weights were trained with: a run
            folder's ``preprocess.json``; for a config with ``data.preprocess`` steps or a
            table source, fitted again on its training split (the same, as it is seeded).

    Returns:
        A ``Trained`` with the compiled model holding the weights.

    Raises:
        ConfigError: a target that is neither, a missing weights file, a config problem, or
            weights that do not fit the model (naming the layer).
    """
    target = Path(target)
    run_dir = None
    if target.is_dir():
        if not is_run_dir(target):
            raise ConfigError([Problem(f"is a folder but not a run folder (it has no {RESOLVED})",
                                       (), SourcePos(str(target)))])
        run_dir = target
        base = read_source_info(run_dir).get("base_dir")
        config_file = target / RESOLVED
        if weights is None:
            weights = target / WEIGHTS
    else:
        base = None
        config_file = target
        if weights is None and target.is_file():
            raise ConfigError([Problem("a config needs --weights FILE (a weights.npz written by "
                                       "kconf train); or give a run folder instead",
                                       (), SourcePos(str(target)))])
    if base is not None and not Path(base).is_dir():
        base = None  # the original folder is gone: paths resolve against the run folder
    cfg, _ = resolve_config(config_file, overrides, base_dir=base)
    model = build_model(cfg)
    weights = Path(weights)
    set_named_weights(model, read_weights(weights), str(weights))
    fitted = None
    if preprocessing and run_dir is not None:
        fitted = read_preprocessing(run_dir)
    elif preprocessing and _preprocesses(cfg):
        from kconf.data.sources import load_prepared

        fitted = load_prepared(cfg).preprocessing
    return Trained(cfg, model, weights, run_dir, fitted)


def _preprocesses(cfg) -> bool:
    """Whether a config's data is preprocessed: ``data.preprocess`` steps, or a table."""
    return bool(cfg.data.preprocess) or any(
        spec.kind in ("csv", "parquet") for spec in cfg.data.sources().values())


def load_run(run_dir: str | os.PathLike) -> Trained:
    """A run folder's trained model with the preprocessing it was trained with.

    Args:
        run_dir: a folder ``kconf train`` wrote (``runs/<name>/<time>``).

    Returns:
        A ``Trained``: ``predict`` and ``evaluate`` take raw data, preprocessed as the run's
        training data was; ``model`` is the bare model.

    Raises:
        ConfigError: not a run folder, or weights that no longer fit its config.
    """
    if not is_run_dir(run_dir):
        raise ConfigError([Problem(f"not a run folder (it has no {RESOLVED})", (),
                                   SourcePos(str(run_dir)))])
    return load_trained(run_dir)


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` weights file, by name.

    Args:
        path: a ``.npz`` file written by kconf (``weights.npz``).

    Returns:
        ``{"dense/kernel": array, ...}``.

    Raises:
        ConfigError: a missing or unreadable file, or one that is not an ``.npz`` archive.
    """
    path = Path(path)
    pos = SourcePos(str(path))
    if not path.is_file():
        raise ConfigError([Problem("weights file not found", (), pos)])
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError([Problem(f"cannot read the weights: {exc}", (), pos)]) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ConfigError([Problem("is not a weights file: expected an .npz archive of arrays "
                                   "named layer/weight, as kconf train writes", (), pos)])
    try:
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError([Problem(f"cannot read the weights: {exc}", (), pos)]) from None


def set_named_weights(model: Model, named: Mapping[str, np.ndarray], file: str) -> None:
    """Load weights by name into a built model; every mismatch reported at once.

    Args:
        model: a built model.
        named: ``layer/weight`` -> array (what ``Model.named_weights`` gives).
        file: the weights file's name, for messages.

    Raises:
        ConfigError: a layer's weight missing from ``named`` or of the wrong shape, or arrays
            in ``named`` that no layer has; each problem names the layer and its type.
    """
    problems, pos, used = [], SourcePos(file), set()
    plan = []
    for layer in model.graph.layers:
        kind = getattr(layer, "kind", None) or type(layer).__name__
        for key, current in layer.weights.items():
            name = f"{layer.name}/{key}"
            used.add(name)
            if name not in named:
                problems.append(Problem(f"layer {layer.name!r} ({kind}): the file has no array "
                                        f"{name!r} (is it the weights of another model?)",
                                        (), pos))
                continue
            value = named[name]
            if tuple(value.shape) != tuple(current.shape):
                problems.append(Problem(f"layer {layer.name!r} ({kind}): weight {key!r} has shape "
                                        f"{tuple(current.shape)} in the model but "
                                        f"{tuple(value.shape)} in the file", (), pos))
                continue
            plan.append((current, value))
    extra = sorted(set(named) - used)
    if extra:
        problems.append(Problem(f"arrays that no layer of model {model.name!r} has: "
                                f"{', '.join(extra)}", (), pos))
    if problems:
        raise ConfigError(problems, file)
    for current, value in plan:
        current[...] = value  # in place: the optimizer keeps referring to the same arrays


def read_initial_weights(path: str | os.PathLike, cfg) -> dict[str, np.ndarray]:
    """The weights ``kconf train --init-weights`` starts from, checked against the config's
    model before any run folder is made.

    Args:
        path: a ``weights.npz`` written by kconf (``kconf train``, ``kconf import-keras``) or
            a checkpoint (``checkpoints/last.npz``, ``best.npz``), whose weights are used.
        cfg: the run's validated config.

    Returns:
        ``layer/weight`` -> array, every one of the model's weights.

    Raises:
        ConfigError: an unreadable file, or weights that do not fit the model (each layer
            named).
    """
    named = read_weight_file(path)
    set_named_weights(build_model(cfg), named, str(path))
    return named


def read_weight_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The weights of a ``weights.npz`` or of a checkpoint (``checkpoints/last.npz``).

    Raises:
        ConfigError: a missing, unreadable or corrupted file.
    """
    from kconf.train.checkpoint import CheckpointError, load_checkpoint

    named = read_weights(path)
    if "header" in named:  # a checkpoint: its weights are stored as weights/<layer>/<name>
        try:
            return load_checkpoint(Path(path)).weights
        except CheckpointError as exc:
            raise ConfigError([Problem(str(exc), (), SourcePos(str(path)))]) from None
    return named


def start_from_weights(run, named: Mapping[str, np.ndarray], path: str | os.PathLike) -> None:
    """Put initial weights into a prepared run's model (fine-tuning) and record where they
    came from in the run's ``source.json`` (``init_weights``).

    Args:
        run: a ``Run`` from ``prepare_run``.
        named: what ``read_initial_weights`` returned.
        path: the weights file, recorded as an absolute path.
    """
    import json

    from kconf.files import write_atomic
    from kconf.train.runs import SOURCE_FILE, read_source_info

    set_named_weights(run.model, named, str(path))
    info = dict(read_source_info(run.run_dir))
    info["init_weights"] = str(Path(path).resolve())
    write_atomic(run.run_dir / SOURCE_FILE, json.dumps(info, indent=2) + "\n")
