"""One trial, where it runs: open its run folder, train with per-epoch reports, evaluate.

This is what every backend's worker calls (a local worker process, a Ray Tune trainable), and
what it hands back is plain data: ``TrialSpec`` in, ``TrialResult`` out, both JSON-ready, so
that a driver on another machine can record them.

Statuses: ``finished`` (all epochs, or the config's EarlyStopping), ``stopped`` (the
scheduler stopped a poor trial; it is still evaluated and ranked), ``failed`` (a config or
data problem, a NaN loss, an exception: the message says which) and ``interrupted`` (Ctrl-C
or a lost worker; a re-run resumes it from its checkpoint).
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from kconf.errors import ConfigError, TrainingError
from kconf.sweep.node import node_info
from kconf.train.callbacks import Callback

#: Statuses a trial keeps: a re-run of the sweep leaves such a trial alone.
DONE = ("finished", "stopped", "failed")

#: ``report(epoch, metrics)`` -> None to continue, or the reason to stop the trial now.
Report = Callable[[int, dict[str, float]], "str | None"]


@dataclass(frozen=True)
class TrialSpec:
    """What a worker needs to run one trial (JSON-ready: ``to_json`` / ``from_json``).

    Attributes:
        trial_id: names the trial and its run folder.
        params: dotted path -> value, applied as overrides to the base config.
        config_file: the base config's absolute path.
        run_dir: the trial's run folder (absolute, on the driver's machine; a backend whose
            workers do not share its filesystem runs the trial in a folder of its own and the
            driver records the result here).
        resume: continue the run folder from its last checkpoint instead of starting it.
    """

    trial_id: str
    params: dict[str, Any]
    config_file: str
    run_dir: str
    resume: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrialSpec":
        return cls(**data)


@dataclass(kw_only=True)
class TrialOutcome:
    """How a trial ended, as a trial reports it (``TrialResult``) and the driver records it
    (``sweep.leaderboard.TrialRecord``); keyword-only, after each class's own fields.

    Attributes:
        history: one row per completed epoch, as ``metrics.jsonl`` holds them:
            ``{"epoch": 1, "loss": ..., "val_accuracy": ...}``.
        evaluation: loss and metrics on the test split (None without one, or when the trial
            did not get that far).
        error: why it failed.
        stop_reason: why the scheduler stopped it.
        node: ``{"hostname": ..., "ip": ...}`` of the machine it ran on.
        started, ended: wall-clock times (seconds since the epoch).
        initial_epoch: the epochs restored from a checkpoint (0 for a fresh start).
        threads: the BLAS threads the worker ran with.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    evaluation: dict[str, float] | None = None
    error: str | None = None
    stop_reason: str | None = None
    node: dict[str, str] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    initial_epoch: int = 0
    threads: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrialResult(TrialOutcome):
    """What a trial sends back when it ends (JSON-ready: ``to_json`` / ``from_json``): its id
    and ``status`` (``finished``, ``stopped``, ``failed`` or ``interrupted``), then the
    ``TrialOutcome`` fields."""

    trial_id: str
    status: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrialResult":
        return cls(**data)


class _Reports(Callback):
    """Reports each epoch's logs; stops training when the answer says so (not after the last
    epoch: a trial that ran all its epochs has finished)."""

    def __init__(self, report: Report):
        super().__init__()
        self.report = report
        self.stop_reason: str | None = None

    def on_epoch_end(self, epoch, logs=None):
        reason = self.report(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})
        if reason is not None and epoch + 1 < self.params["epochs"]:
            self.stop_reason = reason
            self.model.stop_training = True


def run_trial(spec: TrialSpec, report: Report,
              on_start: Callable[[int, dict[str, str]], None] | None = None) -> TrialResult:
    """Run one trial in its run folder: a normal kconf run (``kconf evaluate``, ``plot`` and
    ``train --resume`` work on it).

    Args:
        spec: the trial.
        report: called after every epoch with ``(epoch, logs)``; returns None to go on or the
            reason to stop. A resumed trial first re-reports the epochs its checkpoint holds
            (a scheduler ignores those it has ranked already).
        on_start: called once the run folder is open, with ``(initial_epoch, node)``.

    Returns:
        The result; this never raises for a problem of the trial (it is the result's
        ``error``), only ``KeyboardInterrupt`` is turned into status ``interrupted``.
    """
    from kconf.engine.threads import blas_threads
    from kconf.config import load_config
    from kconf.train.run import prepare_run, resume_run
    from kconf.files import write_atomic
    from kconf.train.runs import read_metrics_rows, save_weights

    node = node_info()
    result = TrialResult(spec.trial_id, "failed", node=node, started=time.time(),
                         threads=blas_threads())
    run_dir = Path(spec.run_dir)
    run = None
    try:
        if spec.resume:
            run = resume_run(run_dir)
        else:
            cfg = load_config(spec.config_file, overrides=spec.params)
            run = prepare_run(cfg, overrides=spec.params, run_dir=run_dir)
        result.initial_epoch = run.initial_epoch
        if on_start is not None:
            on_start(run.initial_epoch, node)
        reports = _Reports(report)
        planned = run.cfg.fit.epochs
        stop = None
        for row in run.recorder.rows:  # a resumed trial's epochs so far
            reason = report(row["epoch"], {k: v for k, v in row.items() if k != "epoch"})
            if reason is not None and row["epoch"] < planned:
                stop = reason
                break
        if stop is None:
            run.fit(callbacks=[reports])
            stop = reports.stop_reason
        else:  # stopped at a rung it had already reached: its checkpoint's weights
            save_weights(run_dir / "weights.npz", run.model.named_weights())
        if stop is None:
            run.evaluate()
            result.status = "finished"
        else:
            run.evaluate(status="stopped", reason=stop)
            result.status, result.stop_reason = "stopped", stop
        result.evaluation = run.evaluation
    except ConfigError as exc:
        result.error = exc.format()
        if run is not None:
            run.recorder.write_status("failed", error=result.error)
    except TrainingError as exc:  # the run folder says 'failed' already
        result.error = f"training stopped: {exc}"
    except KeyboardInterrupt:
        result.status = "interrupted"
    except Exception as exc:  # a trial's failure never stops the sweep
        result.error = f"{type(exc).__name__}: {exc}"
        if run_dir.is_dir():
            write_atomic(run_dir / "error.txt", traceback.format_exc())
            result.error += f" (traceback in {run_dir / 'error.txt'})"
        if run is not None:
            run.recorder.write_status("failed", error=result.error)
    finally:
        if run is not None:
            run.close()  # the run folder's lock
    result.history = read_metrics_rows(run_dir)
    result.ended = time.time()
    return result


def result_from_folder(run_dir: Path, trial_id: str) -> TrialResult | None:
    """The result of a trial that ended while no driver was listening, read back from its
    run folder (None when its ``status.json`` does not say it ended)."""
    from kconf.train.runs import read_metrics_rows

    try:
        status = json.loads((Path(run_dir) / "status.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict) or status.get("status") not in DONE:
        return None
    try:
        evaluation = json.loads((Path(run_dir) / "evaluation.json").read_text())
    except (OSError, ValueError):
        evaluation = None
    return TrialResult(trial_id, status["status"], history=read_metrics_rows(run_dir),
                       evaluation=evaluation, error=status.get("error"), stop_reason=status.get("reason"),
                       node={"hostname": status.get("host", "")},
                       started=status.get("started"), ended=status.get("updated"))
