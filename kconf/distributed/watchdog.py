"""The watchdog of a data-parallel run's rank 0: ``python -m kconf.distributed.watchdog RUN``.

Rank 0 starts it in a session of its own with a pipe as its standard input. When rank 0's
process ends, however it ends, the pipe closes; if ``status.json`` still says ``running``
then, rank 0 died without recording an outcome: killed, or killed by ``mpiexec`` because
another rank was (``mpiexec`` ends every rank when one dies). The watchdog marks the run
``failed`` with that reason, keeping everything written so far.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from kconf.files import write_atomic

REASON = ("the run's processes ended without recording an outcome: rank 0 (pid {pid} on "
          "{host}) was killed, or another rank was killed or died and mpiexec ended the rest "
          "(mpiexec's output names the rank)")


def mark_failed(run_dir: Path) -> bool:
    """Mark a run whose status still says ``running`` as ``failed``; whether it did."""
    path = run_dir / "status.json"
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if status.get("status") != "running":
        return False
    status.update(status="failed", updated=time.time(),
                  error=REASON.format(pid=status.get("pid"), host=status.get("host")))
    write_atomic(path, json.dumps(status, indent=2) + "\n")
    return True


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0])
    while sys.stdin.buffer.read(4096):  # until rank 0's end closes the pipe
        pass
    mark_failed(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
