"""A local sweep worker: ``python -m kconf.sweep.worker``, started by the local backend.

It runs the trials its driver sends, one at a time, talking over its standard streams, one
JSON object per line:

    driver -> worker (stdin)    {"trial": <TrialSpec>}           run this trial
                                {"decision": null | "<reason>"}  the answer to an epoch report
    worker -> driver (stdout)   {"started": <trial_id>, "initial_epoch": k, "node": {...}}
                                {"epoch": n, "trial_id": ..., "metrics": {...}}  (then waits)
                                {"result": <TrialResult>}

Whatever else the process prints goes to stderr (the driver's log file). Its BLAS thread
count comes from the environment the driver gives it. It ends at the end of its input, after
an interrupted trial (SIGINT), and as soon as its driver dies: on Linux at once (the kernel
sends SIGKILL, ``PR_SET_PDEATHSIG``), elsewhere at its next report, so no orphan keeps
writing a trial's folder that a re-run of the sweep resumes.
"""
from __future__ import annotations

import json
import os
import signal
import sys

#: The environment variable holding the driver's pid.
DRIVER_VARIABLE = "KCONF_SWEEP_DRIVER"


def _die_with(driver: int) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux); exit if it has."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != driver:
        os._exit(1)


def main() -> None:
    """Serve trials until the input ends."""
    driver = int(os.environ.get(DRIVER_VARIABLE, os.getppid()))
    _die_with(driver)
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # stray prints go to stderr, never into the protocol

    from kconf.sweep.trial import TrialSpec, run_trial

    def send(message: dict) -> None:
        try:
            channel.write(json.dumps(message) + "\n")
            channel.flush()
        except (BrokenPipeError, OSError):
            os._exit(1)  # the driver is gone; the trial's folder resumes from its checkpoint

    def receive() -> dict | None:
        line = sys.stdin.readline()
        if not line:
            return None
        return json.loads(line)

    try:
        while (message := receive()) is not None:
            spec = TrialSpec.from_json(message["trial"])

            def report(epoch: int, metrics: dict) -> str | None:
                send({"epoch": epoch, "trial_id": spec.trial_id, "metrics": metrics})
                if os.getppid() != driver:
                    os._exit(1)
                answer = receive()
                if answer is None:
                    os._exit(1)
                return answer.get("decision")

            def started(initial_epoch: int, node: dict) -> None:
                send({"started": spec.trial_id, "initial_epoch": initial_epoch, "node": node})

            result = run_trial(spec, report, started)
            send({"result": result.to_json()})
            if result.status == "interrupted":
                break
    except KeyboardInterrupt:  # while waiting for a trial
        pass


if __name__ == "__main__":
    main()
