"""Runs logged to MLflow (the ``mlflow`` extra): the ``MLflow`` callback of one run, and the
sweep tracker that logs a sweep as a parent run with one child run per trial.

What a run logs: its params (the resolved config flattened to dotted keys,
``model.sequential.0.Dense.units``), its metrics every epoch (step = epoch from 0, as
Keras's autologging; plus ``learning_rate``) and the test split's as ``test_<name>``, then
the whole run folder as artifacts and the final model (``model/weights.npz`` and
``model/resolved.yaml``, what ``kconf evaluate``/``predict`` read). The MLflow run's id is
kept in ``<run>/mlflow.json``, so ``kconf train --resume`` continues the same MLflow run.

The writer is ``MlflowClient`` (no global active run is left behind). MLflow 3 refuses the
file store (``file:`` URIs, ``./mlruns``) unless ``MLFLOW_ALLOW_FILE_STORE`` is set; a config
that names a ``file:`` URI has chosen it, so kconf sets that variable for it.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from kconf.errors import ConfigError, Problem
from kconf.files import write_atomic
from kconf.train.callbacks import Callback
from kconf.train.lock import LOCK_FILE
from kconf.train.tracking.common import flatten, import_extra

ID_FILE = "mlflow.json"
#: kconf's end statuses -> MLflow's.
END_STATUS = {"finished": "FINISHED", "stopped": "FINISHED", "failed": "FAILED",
              "interrupted": "KILLED"}
MAX_PARAM_LENGTH = 6000
BATCH = 100  # MLflow's limit of params per log_batch call


def open_client(tracking_uri: str | None):
    """An ``MlflowClient`` for ``tracking_uri`` (None: ``MLFLOW_TRACKING_URI`` or MLflow's
    default), its store opened now.

    Raises:
        ConfigError: mlflow is not installed, or the store cannot be opened (its reason).
    """
    import_extra("MLflow")
    from mlflow.tracking import MlflowClient

    if tracking_uri is not None and _is_file_store(tracking_uri):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        client.search_experiments(max_results=1)
    except Exception as exc:  # any store failure (missing driver, server down) is one line
        reason = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() \
            else type(exc).__name__
        where = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        hint = "" if where else ("; name one with MLFLOW_TRACKING_URI or tracking_uri (a server "
                                 "http://HOST:5000, or a folder file:///PATH/mlruns)")
        raise ConfigError([Problem(f"MLflow cannot use the tracking store "
                                   f"{where or 'of its default'}: {reason}{hint}")]) from None
    return client


def _is_file_store(uri: str) -> bool:
    """A ``file:`` URI or a plain path (``./mlruns``, ``C:\\mlruns``)."""
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    return scheme in ("", "file") or len(scheme) == 1


def experiment_id(client, name: str) -> str:
    """The id of the experiment called ``name``, created if missing."""
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def log_params(client, run_id: str, params: dict[str, Any]) -> None:
    """Log params in batches of MLflow's size, values as text cut to its limit."""
    from mlflow.entities import Param

    items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
    for start in range(0, len(items), BATCH):
        client.log_batch(run_id, params=items[start:start + BATCH])


def log_metrics(client, run_id: str, values: dict[str, Any], step: int) -> None:
    """Log one step's numeric values."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, step) for k, v in values.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if metrics:
        client.log_batch(run_id, metrics=metrics)


def log_run_folder(client, run_id: str, run_dir: Path, evaluation: dict | None,
                   status: str) -> None:
    """The end of a run: test metrics, the folder as artifacts, the model, the status."""
    if evaluation:
        log_metrics(client, run_id, {f"test_{k}": v for k, v in evaluation.items()}, 0)
    run_dir = Path(run_dir)
    if run_dir.is_dir():
        for entry in sorted(run_dir.iterdir()):  # the folder, less its lock and temporaries
            if entry.name == LOCK_FILE or entry.name.startswith("."):
                continue
            if entry.is_dir():
                client.log_artifacts(run_id, str(entry), entry.name)
            else:
                client.log_artifact(run_id, str(entry))
        for name in ("weights.npz", "resolved.yaml"):
            if (run_dir / name).is_file():
                client.log_artifact(run_id, str(run_dir / name), "model")
    client.set_terminated(run_id, END_STATUS.get(status, "FINISHED"))


class MLflow(Callback):
    """Log a run to MLflow: params at the start, metrics every epoch, the folder at the end.

    Args:
        tracking_uri: the store (None: ``MLFLOW_TRACKING_URI``, else MLflow's default).
        experiment_name: default the config's name.
        run_name: default ``<name>/<time>`` of the run folder.
        cfg: the resolved config (its params).
        run_dir: the run folder (its artifacts; ``mlflow.json`` keeps the run's id).

    Raises:
        ConfigError: mlflow is not installed or the store cannot be opened.
    """

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None,
                 run_name: str | None = None, cfg=None, run_dir=None):
        super().__init__()
        self.client = open_client(tracking_uri)
        self.tracking_uri = tracking_uri
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.experiment_name = experiment_name or (cfg.name if cfg is not None else "kconf")
        if run_name is None and self.run_dir is not None:
            run_name = f"{self.run_dir.parent.name}/{self.run_dir.name}"
        self.run_name = run_name
        self.run_id: str | None = None

    def on_train_begin(self, logs=None):
        previous = self._previous_run()
        if previous is not None:  # a resumed run continues its MLflow run
            self.run_id = previous
            self.client.update_run(previous, status="RUNNING")
            return
        exp = experiment_id(self.client, self.experiment_name)
        tags = {"kconf.run_dir": str(self.run_dir.resolve())} if self.run_dir else {}
        self.run_id = self.client.create_run(exp, run_name=self.run_name, tags=tags).info.run_id
        if self.run_dir is not None:
            write_atomic(self.run_dir / ID_FILE, json.dumps(
                {"tracking_uri": self.client.tracking_uri, "run_id": self.run_id,
                 "experiment_id": exp}, indent=2) + "\n")
        if self.cfg is not None:
            log_params(self.client, self.run_id, flatten(self.cfg.to_data()))

    def _previous_run(self) -> str | None:
        if self.run_dir is None or not getattr(self.model, "resumed", False):
            return None
        try:
            info = json.loads((self.run_dir / ID_FILE).read_text())
        except (OSError, ValueError):
            return None
        if isinstance(info, dict) and info.get("tracking_uri") == self.client.tracking_uri:
            return info.get("run_id")
        return None

    def on_epoch_end(self, epoch, logs=None):
        values = dict(logs or {})
        optimizer = getattr(self.model, "optimizer", None)
        if "learning_rate" not in values and hasattr(optimizer, "current_learning_rate"):
            values["learning_rate"] = optimizer.current_learning_rate()
        log_metrics(self.client, self.run_id, values, epoch)

    def on_run_end(self, run, status: str) -> None:
        if self.run_id is None:
            return
        log_run_folder(self.client, self.run_id, self.run_dir or run.run_dir,
                       run.evaluation if status in ("finished", "stopped") else None, status)
        self.run_id = None


class SweepTracker:
    """Logs a sweep to MLflow from the driver's records: a parent run for the sweep, a child
    run per trial (tagged ``mlflow.parentRunId``) with its params, epochs, test metrics and
    run folder. It follows ``on_update`` (every backend reports there), so trials logged by
    any backend, local or Ray, end up in the same store.

    Args:
        sweep_run: the ``SweepRun`` (its plan and folder).
        client: an ``MlflowClient`` (``open_client``).
    """

    def __init__(self, sweep_run, client, done: tuple[str, ...]):

        self.done = done
        self.sweep_run = sweep_run
        self.client = client
        sweep = sweep_run.plan.sweep
        self.experiment = experiment_id(self.client, sweep.name)
        folder = Path(sweep_run.folder)
        self.parent = self.client.create_run(
            self.experiment, run_name=f"{sweep.name}/{folder.name}",
            tags={"kconf.sweep_folder": str(folder.resolve())}).info.run_id
        log_params(self.client, self.parent, {"sweep.metric": sweep.metric,
                                              "sweep.mode": sweep.mode,
                                              "sweep.base": str(sweep.base_path),
                                              "sweep.trials": len(sweep_run.plan.trials)})
        self.children: dict[str, str] = {}
        self.logged: dict[str, int] = {}
        self.closed: set[str] = set()

    def follow(self, on_update=None):
        """An ``on_update`` that logs, then calls ``on_update``."""
        def update(records):
            self.update(records)
            if on_update is not None:
                on_update(records)
        return update

    def update(self, records) -> None:
        for record in records:
            if record.trial_id in self.closed or (record.status == "pending"
                                                  and not record.history):
                continue
            child = self._child(record)
            rows = record.history
            for row in rows[self.logged.get(record.trial_id, 0):]:
                log_metrics(self.client, child, {k: v for k, v in row.items() if k != "epoch"},
                            int(row["epoch"]) - 1)
            self.logged[record.trial_id] = len(rows)
            if record.status in self.done:
                self.closed.add(record.trial_id)
                log_run_folder(self.client, child, self.sweep_run.run_dir(record.trial_id),
                               record.evaluation, record.status)

    def _child(self, record) -> str:
        if record.trial_id not in self.children:
            run = self.client.create_run(self.experiment, run_name=record.trial_id,
                                         tags={"mlflow.parentRunId": self.parent})
            params = dict(record.params)
            resolved = self.sweep_run.run_dir(record.trial_id) / "resolved.yaml"
            try:
                params = {**flatten(yaml.safe_load(resolved.read_text())), **params}
            except (OSError, ValueError, yaml.YAMLError):
                pass  # not written yet: the trial's own params are known
            log_params(self.client, run.info.run_id, params)
            self.children[record.trial_id] = run.info.run_id
        return self.children[record.trial_id]

    def close(self, status: str = "finished", records=()) -> None:
        """Log what the records hold last, end the trials still open as killed, and the
        parent run with ``status``."""
        self.update(list(records))
        for trial_id, child in self.children.items():
            if trial_id not in self.closed:
                self.client.set_terminated(child, "KILLED")
        self.client.set_terminated(self.parent, END_STATUS.get(status, "FINISHED"))
