"""Experiment tracking where users already look: TensorBoard event files and MLflow runs.

The config's ``TensorBoard`` and ``MLflow`` callbacks (``fit.callbacks``), and the
``--tensorboard`` / ``--mlflow`` flags of ``kconf train`` (the same callbacks with their
defaults, TensorBoard's writing into ``<run>/tensorboard/``), become fit callbacks here.
Their writers are optional extras, imported only when a run asks for them; a missing one is
one located line naming the extra to install, before any run folder is made.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from kconf.errors import ConfigError, Problem
from kconf.train.tracking.common import EXTRAS, flatten, import_extra, install_hint

#: callback name -> (module to import, extra that installs it, what the module is called).
#: Where ``kconf train --tensorboard`` writes, inside the run folder.
TENSORBOARD_DIR = "tensorboard"


def requested(cfg, tensorboard: bool = False, mlflow: bool = False) -> list[str]:
    """The tracking callbacks a run uses: the config's, and those its flags add."""
    names = [s.class_name for s in cfg.fit.callbacks if s.class_name in EXTRAS]
    for flag, name in ((tensorboard, "TensorBoard"), (mlflow, "MLflow")):
        if flag and name not in names:
            names.append(name)
    return names


def check_extras(cfg, tensorboard: bool = False, mlflow: bool = False) -> None:
    """Every tracking writer a run needs is installed; else one line per missing extra, at
    the callback that asks for it (or naming the flag).

    Raises:
        ConfigError: an extra is missing.
    """
    problems = []
    flags = {"TensorBoard": tensorboard, "MLflow": mlflow}
    for i, spec in enumerate(cfg.fit.callbacks):
        if spec.class_name in EXTRAS and not _importable(spec.class_name):
            path = ("fit", "callbacks", i, spec.class_name)
            problems.append(Problem(install_hint(spec.class_name), path, cfg.source.locate(path)))
            flags[spec.class_name] = False
    for name, flag in flags.items():
        if flag and not _importable(name):
            problems.append(Problem(f"--{name.lower()}: {install_hint(name)}"))
            flags[name] = False
    if not problems:
        problems = _check_stores(cfg, flags["MLflow"])
    if problems:
        raise ConfigError(problems, cfg.source.file)


def _check_stores(cfg, flag: bool) -> list[Problem]:
    """Each MLflow store a run logs to opens (before its folder is made), else why not, at
    the callback's ``tracking_uri`` (or naming ``--mlflow``)."""
    from kconf.train.tracking.mlflow import open_client

    wanted = [(("fit", "callbacks", i, "MLflow", "tracking_uri"), s.args.tracking_uri)
              for i, s in enumerate(cfg.fit.callbacks) if s.class_name == "MLflow"]
    if flag and not wanted:
        wanted.append(((), None))
    problems = []
    for path, uri in wanted:
        try:
            open_client(uri)
        except ConfigError as exc:
            pos = cfg.source.locate(path) if path else None
            problems += [Problem(p.message if path else f"--mlflow: {p.message}", path, pos)
                         for p in exc.problems]
    return problems


def _importable(name: str) -> bool:
    try:
        import_extra(name)
    except ConfigError:
        return False
    return True


def make_tracking(spec_name: str, kwargs: dict[str, Any], cfg, run_dir: Path):
    """The fit callback of one tracking spec (``TensorBoard``, ``MLflow``)."""
    if spec_name == "TensorBoard":
        from kconf.train.tracking.tensorboard import TensorBoard

        log_dir = Path(kwargs.pop("log_dir"))
        return TensorBoard(run_dir / log_dir, cfg=cfg, **kwargs)
    from kconf.train.tracking.mlflow import MLflow

    return MLflow(cfg=cfg, run_dir=run_dir, **kwargs)


def attach(run, tensorboard: bool = False, mlflow: bool = False) -> None:
    """Add the flags' callbacks to a prepared run whose config does not have them already:
    ``--tensorboard`` writes into ``<run>/tensorboard/``, ``--mlflow`` logs with MLflow's
    defaults (``MLFLOW_TRACKING_URI``)."""
    have = {type(cb).__name__ for cb in run.callbacks}
    if tensorboard and "TensorBoard" not in have:
        run.callbacks.append(make_tracking("TensorBoard", {"log_dir": TENSORBOARD_DIR},
                                           run.cfg, run.run_dir))
    if mlflow and "MLflow" not in have:
        run.callbacks.append(make_tracking("MLflow", {}, run.cfg, run.run_dir))


