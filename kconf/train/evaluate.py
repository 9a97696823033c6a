"""``kconf evaluate``: a trained model's loss and metrics on the config's test data or a file."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from kconf.data.sources import Split, check_shapes, load_splits
from kconf.errors import ConfigError, Problem, SourcePos
from kconf.train.arrays import read_labelled
from kconf.train.preprocessing import read_table_file, reads_table
from kconf.train.trained import Trained, load_trained


@dataclass
class Evaluation:
    """Loss and metrics (Keras's names), what they were computed on, and the model."""

    logs: dict[str, float]
    data: str
    samples: int
    trained: Trained


def evaluate(target: str | os.PathLike, weights: str | os.PathLike | None = None,
             data: Sequence[str | os.PathLike] = (), overrides: Sequence[str] = (),
             batch_size: int | None = None, prepared: bool = False) -> Evaluation:
    """Evaluate a trained model, as ``model.evaluate`` does.

    Args:
        target: a run folder (its ``resolved.yaml`` and ``weights.npz``), or a config file
            (then ``weights`` is required).
        weights: a ``weights.npz`` written by kconf.
        data: empty for the config's test split; else one ``.npz`` (arrays named like the
            model's inputs and outputs, or ``x`` and ``y`` for a model with one of each), or
            ``.npy`` files, one per input then one per output.
        overrides: ``path=value`` overrides applied to the config.
        batch_size: samples per forward pass (default: the config's ``fit.batch_size``, the
            one ``kconf train`` evaluated with).
        prepared: the ``data`` files hold preprocessed arrays; without it a run's saved
            preprocessing (``preprocess.json``) is applied to them first, as to the run's
            own data. A ``.csv``/``.parquet`` file for a run trained on a table is read by
            the run's column names and encoded as its training data was.

    Returns:
        An ``Evaluation``; ``logs`` is ``{"loss": ..., "accuracy": ...}``.

    Raises:
        ConfigError: a bad target, weights or data; a config without test data and no file.
    """
    trained = load_trained(target, weights, overrides, preprocessing=bool(data) and not prepared)
    cfg, model = trained.cfg, trained.model
    if data:
        files = [Path(f) for f in data]
        pre = None if prepared else trained.preprocessing
        if len(files) == 1 and reads_table(files[0], pre):
            xs, ys = read_table_file(files[0], pre)
        else:
            xs, ys = read_labelled(files, model)
        if pre:
            xs, ys = _prepare(trained, xs, ys, files[0])
        weights = None
        try:
            check_shapes({"file": Split(xs, ys, ())}, model.graph, cfg)
        except ConfigError as exc:  # the problems are in the file, not in the config
            raise ConfigError([Problem(p.message, (), SourcePos(str(files[0])))
                               for p in exc.problems], str(files[0])) from None
        counts = {len(a) for a in (*xs, *ys)}
        if len(counts) > 1:
            raise ConfigError([Problem(f"the arrays have different sample counts: x "
                                       f"{[len(a) for a in xs]}, y {[len(a) for a in ys]}",
                                       (), SourcePos(str(files[0])))])
        label = ", ".join(str(f) for f in files)
    else:
        splits = load_splits(cfg)
        test = splits.get("test")
        if test is None:
            raise ConfigError([Problem("the config has no test data (data.test); give a file "
                                       "with --data", ("data",), cfg.source.locate(("data",)))],
                              cfg.source.file)
        check_shapes({"test": test}, model.graph, cfg)
        xs, ys, weights = test.x, test.y, test.sample_weight
        label = "the config's test data"
    logs = model.evaluate(xs, ys, batch_size=batch_size or cfg.fit.batch_size, return_dict=True,
                          sample_weight=weights)
    return Evaluation(logs, label, len(xs[0]), trained)


def _prepare(trained: Trained, xs: list, ys: list, file: Path) -> tuple[list, list]:
    """Raw data preprocessed as the run's was; a problem is the data file's."""
    try:
        return trained.prepare(xs, ys, source=str(file))
    except ConfigError as exc:
        raise ConfigError([Problem(p.message, (), SourcePos(str(file)))
                           for p in exc.problems], str(file)) from None
