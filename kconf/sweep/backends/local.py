"""The local backend: trials in parallel worker processes on this machine.

``workers`` processes (default: available CPUs // ``resources.cpus``), each started as
``python -m kconf.sweep.worker`` with its BLAS thread count set to ``resources.cpus`` before
NumPy loads, in a session of its own (a Ctrl-C reaches the driver, which interrupts the
workers in order). A worker runs one trial at a time and gets the next pending one when it
is free. Its stderr goes to ``<sweep folder>/logs/worker-<n>.log``. A worker that dies fails
its trial with the exit status and the log's path, and is replaced.
"""
from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

from kconf.engine.threads import THREAD_VARIABLES, available_cpus
from kconf.sweep.backends.base import Reporter, RunOptions
from kconf.sweep.trial import TrialResult, TrialSpec
from kconf.sweep.worker import DRIVER_VARIABLE

#: Seconds interrupted workers get to save their runs before they are killed.
INTERRUPT_GRACE = 30.0


@dataclass(eq=False)
class _Worker:
    """One worker process and the trial it runs."""

    number: int
    proc: subprocess.Popen
    log: Path
    trial: TrialSpec | None = None
    closed: bool = field(default=False)

    def send(self, message: dict) -> None:
        """Write one line to the worker (a dead one reports its end by itself)."""
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def close(self) -> None:
        """End its input: an idle worker exits."""
        if not self.closed:
            self.closed = True
            try:
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass


class LocalBackend:
    """Runs trials in worker processes on this machine (see the module's docstring)."""

    name: ClassVar[str] = "local"
    shared_filesystem: ClassVar[bool] = True
    schedules: ClassVar[bool] = False

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable

    def run(self, trials: Sequence[TrialSpec], reporter: Reporter, options: RunOptions) -> None:
        """Run every trial in worker processes; see ``TrialRunner.run``."""
        if not trials:
            return
        count = options.workers or max(1, available_cpus() // options.cpus)
        pending = deque(trials)
        events: queue.Queue = queue.Queue()
        log_dir = Path(options.sweep_dir) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        workers: list[_Worker] = []
        numbers = itertools.count()

        def start() -> _Worker:
            worker = self._start(next(numbers), log_dir, options.cpus, events)
            workers.append(worker)
            return worker

        def assign(worker: _Worker) -> None:
            if pending:
                worker.trial = pending.popleft()
                worker.send({"trial": worker.trial.to_json()})
            else:
                worker.close()

        try:
            for _ in range(min(count, len(trials))):
                assign(start())
            while any(w.trial is not None for w in workers):
                worker, message = self._next(events)
                if message is None:
                    continue
                self._handle(worker, message, reporter)
                if worker.trial is None and worker in workers:
                    if worker.proc.poll() is not None or message.get("end"):
                        workers.remove(worker)
                        if pending:
                            assign(start())
                    else:
                        assign(worker)
        except KeyboardInterrupt:
            self._interrupt(workers, events, reporter)
            raise
        finally:
            for worker in workers:
                worker.close()
            for worker in workers:
                try:
                    worker.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.proc.kill()
                    worker.proc.wait()

    def _start(self, number: int, log_dir: Path, cpus: int, events: queue.Queue) -> _Worker:
        env = dict(os.environ)
        env.update({name: str(cpus) for name in THREAD_VARIABLES})
        env[DRIVER_VARIABLE] = str(os.getpid())
        root = str(Path(__file__).resolve().parents[3])  # the folder holding the kconf package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        log = log_dir / f"worker-{number}.log"
        with open(log, "ab") as stderr:
            proc = subprocess.Popen(
                [self.python, "-m", "kconf.sweep.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, encoding="utf-8",
                bufsize=1, start_new_session=True)
        worker = _Worker(number, proc, log)
        threading.Thread(target=_read, args=(worker, events), daemon=True,
                         name=f"kconf-sweep-worker-{number}").start()
        return worker

    @staticmethod
    def _next(events: queue.Queue) -> tuple[_Worker | None, dict | None]:
        """The next message of any worker (a short wait keeps Ctrl-C responsive)."""
        try:
            return events.get(timeout=0.5)
        except queue.Empty:
            return None, None

    @staticmethod
    def _handle(worker: _Worker, message: dict, reporter: Reporter,
                interrupting: bool = False) -> None:
        """Pass one message on to the reporter; answer epoch reports."""
        if "started" in message:
            reporter.started(message["started"], message.get("node", {}),
                             message.get("initial_epoch", 0))
        elif "epoch" in message:
            reason = reporter.epoch(message["trial_id"], message["epoch"], message["metrics"])
            worker.send({"decision": None if interrupting else reason})
        elif "result" in message:
            reporter.finished(TrialResult.from_json(message["result"]))
            worker.trial = None
        elif "end" in message:  # the process ended
            code = worker.proc.wait()
            if worker.trial is not None:
                status = "interrupted" if interrupting else "failed"
                reporter.finished(TrialResult(
                    worker.trial.trial_id, status,
                    error=None if interrupting else
                    f"the worker process died (exit status {code}) during the trial; its "
                    f"log: {worker.log}"))
                worker.trial = None

    def _interrupt(self, workers: list[_Worker], events: queue.Queue,
                   reporter: Reporter) -> None:
        """Interrupt the running trials (SIGINT: each saves its run and reports
        ``interrupted``); kill those that do not end within ``INTERRUPT_GRACE`` seconds."""
        busy = [w for w in workers if w.trial is not None]
        for worker in busy:
            try:
                os.kill(worker.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + INTERRUPT_GRACE
        while any(w.trial is not None for w in busy) and time.monotonic() < deadline:
            worker, message = self._next(events)
            if message is not None:
                self._handle(worker, message, reporter, interrupting=True)
        for worker in busy:
            if worker.trial is not None:
                worker.proc.kill()
                reporter.finished(TrialResult(worker.trial.trial_id, "interrupted"))
                worker.trial = None


def _read(worker: _Worker, events: queue.Queue) -> None:
    """Forward a worker's lines as messages, then ``{"end": true}`` when its output ends."""
    for line in worker.proc.stdout:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        events.put((worker, message))
    events.put((worker, {"end": True}))
