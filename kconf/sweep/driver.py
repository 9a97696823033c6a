"""The sweep driver: validate, find or make the sweep folder, run what is left on a backend,
record every report, rank.

    from kconf.sweep import run_sweep
    rows = run_sweep("configs/sweep_mlp.yaml", workers=2)
    rows[0].trial_id, rows[0].value, rows[0].params

Re-running a sweep carries on in its folder (``kconf.sweep.folders``): trials that finished,
were stopped or failed are kept as they are; a trial whose run folder has a checkpoint is
resumed from it; one without (it never completed an epoch) starts again. Only the driver
writes ``trial.json``, ``sweep.json`` and the leaderboard, from what the backend reports.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kconf.errors import ConfigError, Problem, SourcePos
from kconf.sweep.asha import Asha
from kconf.sweep.backends import RunOptions, TrialRunner, get_backend
from kconf.sweep.folders import (
    clear_run_dir,
    create_sweep_folder,
    find_sweep_folder,
    has_checkpoint,
    read_record,
    read_sweep_json,
    record_run_files,
    write_leaderboard,
    write_record,
    write_sweep_json,
)
from kconf.sweep.leaderboard import LeaderboardRow, TrialRecord, leaderboard
from kconf.sweep.plan import SweepPlan, plan_sweep
from kconf.sweep.trial import DONE, TrialResult, TrialSpec, result_from_folder

#: Called after every change with the trials' records, in trial order.
OnUpdate = Callable[[list[TrialRecord]], None]


@dataclass
class SweepRun:
    """A sweep ready to run in its folder.

    Attributes:
        plan: the validated sweep and its trials.
        folder: the sweep folder.
        resumed: whether the folder existed (a re-run).
        records: trial id -> the driver's record, in trial order.
    """

    plan: SweepPlan
    folder: Path
    resumed: bool
    records: dict[str, TrialRecord] = field(default_factory=dict)

    def run_dir(self, trial_id: str) -> Path:
        return self.folder / trial_id

    def remaining(self) -> list[str]:
        """The trials that have not ended (they run when the sweep runs)."""
        return [t for t, r in self.records.items() if r.status not in DONE]

    def pending(self) -> list[TrialSpec]:
        """The trials to run now: new ones, and interrupted ones (resumed from their
        checkpoint; a folder without one holds no complete epoch and is cleared)."""
        specs = []
        base = str(self.plan.sweep.base_path.resolve())
        for planned in self.plan.trials:
            record = self.records[planned.trial_id]
            if record.status in DONE:
                continue
            run_dir = self.run_dir(planned.trial_id)
            resume = has_checkpoint(run_dir)
            if not resume:
                clear_run_dir(run_dir)
            specs.append(TrialSpec(planned.trial_id, planned.trial.params, base,
                                   str(run_dir.resolve()), resume))
        return specs

    def leaderboard(self) -> list[LeaderboardRow]:
        """Every trial ranked by the sweep's metric (see ``leaderboard.leaderboard``)."""
        sweep = self.plan.sweep
        return leaderboard(list(self.records.values()), sweep.metric, sweep.mode, sweep.scope)

    def run(self, backend: str | TrialRunner = "local", workers: int | None = None,
            on_update: OnUpdate | None = None) -> list[LeaderboardRow]:
        """Run the pending trials, then write the leaderboard.

        Args:
            backend: a backend or its name (``"local"``).
            workers: trials at once (default: available CPUs // ``resources.cpus``).
            on_update: called with the records after every report (a live display).

        Returns:
            The leaderboard rows, best first.

        Raises:
            KeyboardInterrupt: after the running trials were interrupted and recorded, and
                the leaderboard so far written; the sweep folder says ``interrupted``.
            BackendError: the backend cannot run.
        """
        runner = get_backend(backend) if isinstance(backend, str) else backend
        sweep = self.plan.sweep
        asha = self._asha_args()
        scheduler = None
        if asha is not None and not runner.schedules:
            scheduler = Asha(sweep.metric, sweep.mode, **asha)
            for record in self.records.values():
                scheduler.restore(record.trial_id, record.history)
        options = RunOptions(sweep.name, self.folder, workers, sweep.resources.cpus,
                             sweep.metric, sweep.mode, asha)
        recorder = _Recorder(self, scheduler, runner.shared_filesystem, on_update)
        status = "interrupted"
        try:
            runner.run(self.pending(), recorder, options)
            done = all(r.status in DONE for r in self.records.values())
            status = "finished" if done else "interrupted"
        finally:
            rows = self.leaderboard()
            write_leaderboard(self.folder, rows, self.plan)
            write_sweep_json(self.folder, self.plan, status)
        return rows

    def _asha_args(self) -> dict | None:
        args = self.plan.sweep.asha
        if args is None:
            return None
        epochs = [t.epochs for t in self.plan.trials if t.epochs is not None]
        max_t = args.max_t if args.max_t is not None else max(epochs, default=1)
        return {"grace_period": args.grace_period, "reduction_factor": args.reduction_factor,
                "max_t": max_t}


class _Recorder:
    """The driver's ``Reporter``: keeps the records and their files up to date, ranks epoch
    reports with ASHA when the backend does not schedule."""

    def __init__(self, run: SweepRun, scheduler: Asha | None, shared_filesystem: bool,
                 on_update: OnUpdate | None):
        self.sweep_run = run
        self.scheduler = scheduler
        self.shared_filesystem = shared_filesystem
        self.on_update = on_update

    def _save(self, record: TrialRecord) -> None:
        write_record(self.sweep_run.run_dir(record.trial_id), record)
        if self.on_update is not None:
            self.on_update(list(self.sweep_run.records.values()))

    def started(self, trial_id: str, node: dict[str, str], initial_epoch: int) -> None:
        record = self.sweep_run.records[trial_id]
        record.status, record.node, record.initial_epoch = "running", dict(node), initial_epoch
        record.started, record.ended, record.error = time.time(), None, None
        record.history = [r for r in record.history if r.get("epoch", 0) <= initial_epoch]
        self._save(record)

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> str | None:
        record = self.sweep_run.records[trial_id]
        record.report(epoch, metrics)
        reason = None
        if self.scheduler is not None:
            reason = self.scheduler.on_result(trial_id, epoch, metrics.get(self.scheduler.metric))
        self._save(record)
        return reason

    def finished(self, result: TrialResult) -> None:
        record = self.sweep_run.records[result.trial_id]
        if result.status == "interrupted" and not result.history:
            result.history = record.history  # a killed worker sent nothing back
        record.apply(result)
        if not self.shared_filesystem:
            record_run_files(self.sweep_run.run_dir(result.trial_id), result)
        self._save(record)


def open_sweep(path: str | os.PathLike, output_dir: str | os.PathLike = "runs",
               fresh: bool = False) -> SweepRun:
    """Validate a sweep and open its folder: the one of an earlier run of the same sweep
    (see ``kconf.sweep.folders``), or a new one.

    Trials with problems are recorded ``failed`` with their located messages and do not run.
    A trial that ended while no driver was listening is taken from its run folder.

    Args:
        path: the sweep file.
        output_dir: the runs root.
        fresh: always make a new folder.

    Raises:
        ConfigError: a problem of the sweep file, one every trial has, no valid trial at all,
            or the sweep running in another live process.
    """
    plan = plan_sweep(path)
    if not plan.valid():
        raise ConfigError(plan.all_problems(), plan.sweep.source.file)
    folder = None if fresh else find_sweep_folder(output_dir, plan.sweep.name, plan.key)
    resumed = folder is not None
    if folder is not None:
        _refuse_if_running(folder)
        write_sweep_json(folder, plan, "running")
    else:
        folder = create_sweep_folder(output_dir, plan)
    run = SweepRun(plan, folder, resumed)
    for planned in plan.trials:
        run_dir = run.run_dir(planned.trial_id)
        record = read_record(run_dir) if resumed else None
        if record is None:
            record = TrialRecord(planned.trial_id, planned.trial.index, planned.trial.params,
                                 planned=planned.epochs)
        if planned.problems and record.status != "failed":
            record.status = "failed"
            record.error = "\n".join(p.format() for p in planned.problems)
            write_record(run_dir, record)
        elif record.status not in DONE:
            ended = result_from_folder(run_dir, planned.trial_id)
            if ended is not None:
                record.apply(ended)
                write_record(run_dir, record)
        run.records[planned.trial_id] = record
    return run


def _refuse_if_running(folder: Path) -> None:
    """A sweep folder another live driver works in cannot be opened."""
    from kconf.train.listing import process_alive

    info = read_sweep_json(folder)
    pid = info.get("pid")
    if (info.get("status") == "running" and pid != os.getpid()
            and process_alive(pid, info.get("host"))):
        raise ConfigError([Problem(
            f"this sweep is running in process {pid} on {info.get('host')}; wait for it to "
            "end or stop it (Ctrl-C), then run the sweep again to carry on",
            (), SourcePos(str(folder)))])


def run_sweep(path: str | os.PathLike, *, workers: int | None = None,
              backend: str | TrialRunner = "local", output_dir: str | os.PathLike = "runs",
              fresh: bool = False, on_update: OnUpdate | None = None) -> list[LeaderboardRow]:
    """Run a sweep (or carry on with it) and rank its trials.

    Args:
        path: the sweep file.
        workers: trials at once (default: available CPUs // ``resources.cpus``).
        backend: ``"local"`` (processes on this machine) or a ``TrialRunner``.
        output_dir: the runs root; the sweep folder is ``<output_dir>/<name>/<time>/``.
        fresh: start a new sweep folder even if this sweep ran before.
        on_update: called with the trials' records after every report.

    Returns:
        The leaderboard, best first (also in the sweep folder as CSV and Markdown).

    Raises:
        ConfigError: problems in the sweep file, or in every trial, located.
        KeyboardInterrupt: interrupted (the sweep carries on when run again).
    """
    return open_sweep(path, output_dir, fresh).run(backend, workers, on_update)
