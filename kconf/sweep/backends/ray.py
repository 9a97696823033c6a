"""The Ray backend: a sweep's trials as Ray Tune trials, on a local Ray instance or a cluster.

    kconf sweep configs/sweep_mlp.yaml --backend ray                        # a local Ray
    kconf sweep configs/sweep_mlp.yaml --backend ray --address HEAD:6379    # a cluster

The driver hands Tune the trials kconf expanded, as a grid over their specs (so
``--dry-run``, the local backend and Tune see the same trials), each asking for
``resources.cpus`` CPUs, which is also its BLAS thread count. Tune runs them where the
cluster has room; a sweep with ``scheduler: asha`` is scheduled by Tune's ``ASHAScheduler``.
A trial runs ``kconf.sweep.backends.ray_worker.train`` on its node and reports every event
through ``tune.report`` (see that module); this driver's Tune callback passes the reports to
the sweep driver's ``Reporter`` and writes the files that come with them into the driver's
run folder. Nodes need not share a filesystem with the driver.

ASHA's decisions are Tune's, but a trial it stops is stopped by the trial itself after that
epoch (Tune is told to let it go on), so that it is evaluated and its files come back, as a
stopped trial of the local backend.

No address: a Ray instance of this process, on this machine only (no dashboard, usage
statistics off), shut down at the end. Ray 2.x cannot be made to listen on the loopback
interface alone: its servers accept connections on every interface, under its node address
(the one it routes outwards with; ``ray.init`` turns a given 127.0.0.1 into that too), with
Ray's token authentication on by default for such an instance. An address: connect to that
cluster's head (this machine must be one of its nodes) and leave it running.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import ray
from ray import tune
from ray.tune.progress_reporter import TrialProgressCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from kconf.engine.threads import THREAD_VARIABLES, available_cpus
from kconf.sweep.backends.base import BackendError, Reporter, RunOptions
from kconf.sweep.backends.ray_worker import KEY, Decisions, Files, train, write_files
from kconf.sweep.folders import TRIAL_FILE
from kconf.sweep.trial import TrialResult, TrialSpec

#: Where Tune keeps its own records of a run, inside the sweep folder.
TUNE_FOLDER = "ray"
#: Seconds to wait for a cluster's head to accept a connection.
CONNECT_TIMEOUT = 10.0


class RayBackend:
    """Runs trials with Ray Tune (see the module's docstring).

    Args:
        address: ``HOST:PORT`` of a running cluster's head (``ray start --head``); None
            starts a Ray instance on this machine for the sweep.
    """

    name: ClassVar[str] = "ray"
    shared_filesystem: ClassVar[bool] = False
    schedules: ClassVar[bool] = True

    def __init__(self, address: str | None = None):
        self.address = address

    def run(self, trials: Sequence[TrialSpec], reporter: Reporter, options: RunOptions) -> None:
        """Run every trial as a Tune trial; see ``TrialRunner.run``."""
        if not trials:
            return
        with _environment(), _connected(self.address, options.cpus):
            _check_room(options.cpus, self.address)
            bridge = _Bridge(trials, reporter)
            decisions = Decisions.remote() if options.asha else None
            tuner = _tuner(trials, options, bridge, decisions)
            with _signals_restored():
                try:
                    tuner.fit()
                except KeyboardInterrupt:
                    bridge.interrupt()
                    raise
                except Exception as exc:  # Tune itself stopped (say, the head was lost)
                    bridge.interrupt()
                    raise BackendError(f"Ray Tune stopped: {exc}; run the sweep again to "
                                       "carry on") from exc
            if bridge.unfinished():  # Tune ends early only when interrupted (Ctrl-C)
                bridge.interrupt()
                raise KeyboardInterrupt


#: The driver's environment while it runs a sweep: no usage statistics from a Ray started
#: here; Tune's older output engine, which prints nothing at verbosity 0 (the newer one
#: prints a header whatever the verbosity), so that only kconf's table shows.
_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AIR_NEW_OUTPUT": "0"}


@contextmanager
def _environment() -> Iterator[None]:
    """Set ``_ENVIRONMENT`` for the block, then put back what was there."""
    saved = {name: os.environ.get(name) for name in _ENVIRONMENT}
    os.environ.update(_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _connected(address: str | None, cpus: int) -> Iterator[None]:
    """Connect to the cluster at ``address`` (or start a Ray on this machine) for the block.

    A connection this process already has is used as it is: its ``runtime_env``, and so the
    trials' BLAS thread counts, are its own.
    """
    if ray.is_initialized():
        yield
        return
    common = {"log_to_driver": False, "logging_level": logging.WARNING,
              # BLAS reads these when NumPy loads in a trial's worker process
              "runtime_env": {"env_vars": {name: str(cpus) for name in THREAD_VARIABLES}}}
    if address is not None:
        _check_reachable(address)
    try:
        if address is None:
            ray.init(address="local", num_cpus=available_cpus(), include_dashboard=False,
                     **common)
        else:
            ray.init(address=address, **common)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
        ray.shutdown()  # whatever it set up before it failed
        if address is None:
            raise BackendError(f"cannot start Ray on this machine: {exc}") from None
        raise BackendError(
            f"cannot connect to the Ray cluster at {address}: {exc}. Start its head with "
            "'ray start --head --port 6379 --disable-usage-stats', run the sweep on one of "
            "the cluster's machines, and give the head's HOST:PORT") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Refuse an address that is not a head's ``HOST:PORT`` (``auto``, a cluster started on
    this machine, is let through), or where nothing answers: Ray itself would retry for
    minutes.

    Raises:
        BackendError: saying what to do.
    """
    if address == "auto":
        return
    if address.startswith("ray://"):
        raise BackendError(
            f"--address {address}: Ray Client addresses are not supported; run the sweep on a "
            "machine of the cluster and give the head's HOST:PORT (e.g. HEAD:6379)")
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise BackendError(f"--address {address}: expected the head's HOST:PORT, e.g. "
                           "10.0.0.5:6379 (the port given to 'ray start --head --port')")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise BackendError(
            f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc}. Start its "
            "head with 'ray start --head --port 6379 --disable-usage-stats' (README: Sweeps "
            "on Ray Tune) and give its HOST:PORT") from None


def _check_room(cpus: int, address: str | None) -> None:
    """Refuse trials that no node of the cluster can hold (Tune would wait forever)."""
    sizes = [node.get("Resources", {}).get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    largest = max(sizes, default=0)
    if cpus > largest:
        where = f"the Ray cluster at {address}" if address else "this machine"
        raise BackendError(f"each trial asks for {cpus} CPUs (resources.cpus) but the largest "
                           f"node of {where} has {largest:g}; lower resources.cpus")


@contextmanager
def _signals_restored() -> Iterator[None]:
    """Put back the SIGINT and SIGUSR1 handlers that Tune replaces while it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGUSR1)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


def _trial_id(trial) -> str:
    """The kconf trial a Tune trial runs (also its Tune name and folder)."""
    return trial.config["trial"]["trial_id"]


def _tuner(trials: Sequence[TrialSpec], options: RunOptions, bridge: "_Bridge",
           decisions) -> tune.Tuner:
    """The Tune experiment: one Tune trial per kconf trial, in order."""
    job = {"decisions": decisions,
           "resume": {spec.trial_id: _run_files(Path(spec.run_dir)) for spec in trials
                      if spec.resume}}
    trainable = tune.with_resources(tune.with_parameters(train, job=job),
                                    {"cpu": options.cpus})
    scheduler = (_AshaStops(options, decisions) if options.asha is not None
                 else FIFOScheduler())
    return tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([spec.to_json() for spec in trials])},
        tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=options.workers,
                                    trial_name_creator=_trial_id,
                                    trial_dirname_creator=_trial_id),
        run_config=tune.RunConfig(
            name=time.strftime("%Y%m%d-%H%M%S"),
            storage_path=str((Path(options.sweep_dir) / TUNE_FOLDER).resolve()),
            callbacks=[bridge, _NoProgress()], verbose=0,
            failure_config=tune.FailureConfig(max_failures=0)))


def _run_files(run_dir: Path) -> Files:
    """A run folder's files (not the driver's ``trial.json``), to continue it elsewhere."""
    return [(p.relative_to(run_dir).as_posix(), p.read_bytes())
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != TRIAL_FILE]


class _Bridge(tune.Callback):
    """Tune's events to the sweep driver's ``Reporter``; the files that come with a report
    into the driver's run folder. Runs in the thread that called ``Tuner.fit``."""

    def __init__(self, trials: Sequence[TrialSpec], reporter: Reporter):
        self.run_dirs = {spec.trial_id: Path(spec.run_dir) for spec in trials}
        self.reporter = reporter
        self.nodes: dict[str, dict[str, str]] = {}  # trials started, and where
        self.done: set[str] = set()

    def __getstate__(self) -> dict:
        """Tune saves its callbacks with the experiment; the driver's reporter stays here."""
        return {**self.__dict__, "reporter": None}

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict,
                        **info) -> None:
        message = result.pop(KEY, None)  # Tune keeps the rest
        if message is None:
            return
        trial_id = _trial_id(trial)
        write_files(self.run_dirs[trial_id], message.get("files", []))
        event = message["event"]
        if event == "started":
            self.nodes[trial_id] = message["node"]
            self.reporter.started(trial_id, message["node"], message["initial_epoch"])
        elif event == "epoch":
            self.reporter.epoch(trial_id, message["epoch"], message["metrics"])
        elif event == "result":
            self.done.add(trial_id)
            self.reporter.finished(TrialResult.from_json(message["result"]))

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        trial_id = _trial_id(trial)
        if trial_id in self.done:
            return
        self.done.add(trial_id)
        error = trial.get_error()
        self.reporter.finished(TrialResult(
            trial_id, "failed", node=self.nodes.get(trial_id, {}),
            error=f"the Ray trial failed: {type(error).__name__}: {error}" if error else
            "the Ray trial failed (see Ray's logs)"))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        trial_id = _trial_id(trial)
        if trial_id not in self.done:
            self.done.add(trial_id)
            self.reporter.finished(TrialResult(
                trial_id, "failed", node=self.nodes.get(trial_id, {}),
                error="the Ray trial ended without sending its result (see Ray's logs)"))

    def unfinished(self) -> list[str]:
        """The trials without a final result."""
        return [t for t in self.run_dirs if t not in self.done]

    def interrupt(self) -> None:
        """Report the trials that started and did not end as interrupted (their run folders
        here hold their last checkpoints: a re-run resumes them)."""
        for trial_id in self.unfinished():
            if trial_id in self.nodes:
                self.done.add(trial_id)
                self.reporter.finished(TrialResult(trial_id, "interrupted",
                                                   node=self.nodes[trial_id]))


class _NoProgress(TrialProgressCallback):
    """In place of Tune's progress printer, which prints completed trials at any verbosity:
    kconf shows its own table."""

    def on_trial_result(self, *args, **info) -> None:
        pass

    def on_trial_error(self, *args, **info) -> None:
        pass

    def on_trial_complete(self, *args, **info) -> None:
        pass


class _AshaStops(FIFOScheduler):
    """Ray Tune's ``ASHAScheduler`` on the trials' epoch reports (``time_attr`` ``epoch``);
    when it says stop, the trial is told why and stops itself after that epoch."""

    def __init__(self, options: RunOptions, decisions):
        super().__init__()
        asha = options.asha
        self.asha = ASHAScheduler(time_attr="epoch", metric=options.metric, mode=options.mode,
                                  max_t=asha["max_t"], grace_period=asha["grace_period"],
                                  reduction_factor=asha["reduction_factor"])
        self.metric_name = options.metric
        self.reduction_factor = asha["reduction_factor"]
        self.max_t = asha["max_t"]
        self.decisions = decisions

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # the sweep's metric and mode are set already

    def on_trial_add(self, tune_controller, trial) -> None:
        self.asha.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if result.get(f"{KEY}/event") != "epoch":  # Tune flattens nested results
            return TrialScheduler.CONTINUE
        if self.asha.on_trial_result(tune_controller, trial, result) == TrialScheduler.STOP:
            epoch, value = int(result["epoch"]), result.get(self.metric_name)
            reason = (f"ASHA: reached max_t={self.max_t} epochs" if epoch >= self.max_t else
                      f"ASHA: {self.metric_name} {value:.4g} at epoch {epoch} is not in the "
                      f"best 1/{self.reduction_factor:g} at its rung (Ray Tune's "
                      "ASHAScheduler)")
            # set before Tune lets the trial's report return, so the trial finds it
            ray.get(self.decisions.put.remote(_trial_id(trial), epoch, reason))
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self.asha.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self.asha.on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return self.asha.debug_string()
