"""The trial-runner interface: what a backend (local processes, Ray Tune) implements.

A driver (``kconf.sweep.driver``) validates the sweep, decides which trials run (new ones,
and interrupted ones to resume), and hands them to a backend:

    backend = get_backend("local")                   # or "ray", address=...
    backend.run(specs, reporter, options)             # returns when every trial has ended

The backend runs each ``TrialSpec`` somewhere, by calling ``kconf.sweep.trial.run_trial`` in a
worker, and tells the driver what happens through the ``Reporter``: ``started`` once per
trial, ``epoch`` after every epoch, ``finished`` with the ``TrialResult``. Everything that
crosses is plain JSON-ready data, so a worker may run on another machine. The driver writes
``trial.json`` (and, when ``shared_filesystem`` is False, the run folder's ``metrics.jsonl``,
``metrics.csv``, ``evaluation.json`` and ``status.json``) from those reports; the leaderboard
is computed from them alone.

Early stopping: when ``schedules`` is False the driver ranks each epoch report with kconf's
ASHA and ``Reporter.epoch`` returns the reason to stop (the backend then stops the trial after
that epoch: ``run_trial``'s ``report`` returns it). A backend with its own scheduler (Ray
Tune's ASHAScheduler, from ``options.asha``) sets ``schedules`` True; the driver then only
records, and ``Reporter.epoch`` returns None.

Errors: a trial's failure is its result (status ``failed``), never an exception out of
``run``. ``run`` raises ``KeyboardInterrupt`` after stopping its trials when interrupted (each
reported ``finished`` with status ``interrupted``), and ``BackendError`` when it cannot run at
all (say, a cluster that cannot be reached).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Sequence

from kconf.errors import KconfError
from kconf.sweep.trial import TrialResult, TrialSpec


class BackendError(KconfError):
    """A backend cannot run trials (the message says why and what to do)."""


@dataclass(frozen=True)
class RunOptions:
    """What a backend needs besides the trials.

    Attributes:
        sweep_name: the sweep's name.
        sweep_dir: the sweep folder (on the driver's machine; the local backend puts its
            workers' logs in ``logs/``).
        workers: how many trials run at once; None: as many as the CPUs allow
            (``available CPUs // cpus``).
        cpus: CPU cores per trial (``resources.cpus``): each worker's BLAS thread count.
        metric, mode: what trials are ranked by (``val_accuracy``, ``max``).
        asha: the sweep's ``scheduler.asha`` arguments (``grace_period``,
            ``reduction_factor``, ``max_t`` with ``max_t`` filled in) or None; for a backend
            that schedules itself.
    """

    sweep_name: str
    sweep_dir: Path
    workers: int | None
    cpus: int
    metric: str
    mode: str
    asha: dict[str, Any] | None = None


class Reporter(Protocol):
    """What the driver hears from a backend; called from the thread that called ``run``."""

    def started(self, trial_id: str, node: dict[str, str], initial_epoch: int) -> None:
        """A trial's run folder is open; ``initial_epoch`` epochs come from a checkpoint."""

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> str | None:
        """Epoch ``epoch`` (from 1) ended with these logs. Returns None to continue, or the
        reason to stop the trial now (only when the backend does not schedule itself)."""

    def finished(self, result: TrialResult) -> None:
        """A trial ended (``result.status`` says how)."""


class TrialRunner(Protocol):
    """A backend."""

    #: Its name, as ``kconf sweep --backend`` takes it.
    name: ClassVar[str]
    #: True when workers write the trial run folders on the driver's filesystem.
    shared_filesystem: ClassVar[bool]
    #: True when the backend applies ``options.asha`` itself.
    schedules: ClassVar[bool]

    def run(self, trials: Sequence[TrialSpec], reporter: Reporter, options: RunOptions) -> None:
        """Run every trial; return when all have ended.

        Raises:
            KeyboardInterrupt: interrupted; every trial that was running was reported
                ``interrupted`` first.
            BackendError: the backend cannot run at all.
        """
