"""One writer per run folder: ``run.lock`` holds the writer's pid, host and start time.

``kconf train`` takes the lock of the folder it creates, ``kconf train --resume`` the lock of
the folder it continues; a second writer is refused with the holder named. A lock whose
process is gone (same host, pid not alive) is stale: it is taken over, and the caller is
told so. A lock written on another host cannot be checked and is never taken over.

    lock = RunLock.acquire(run_dir)     # raises RunLocked
    ...                                 # lock.note: a message about a stale lock, or None
    lock.release()
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

LOCK_FILE = "run.lock"


class RunLocked(Exception):
    """Another live process writes this run folder."""


def _alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def read_lock(run_dir: Path) -> dict | None:
    """The holder recorded in a folder's lock.

    Args:
        run_dir: a run folder.

    Returns:
        ``{"pid": ..., "host": ..., "started": ...}``; None when there is no readable lock.
    """
    try:
        info = json.loads((Path(run_dir) / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _describe(info: dict) -> str:
    started = info.get("started")
    when = (datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(started, (int, float)) else "an unknown time")
    return f"process {info.get('pid')} on host {info.get('host')!r} (since {when})"


@dataclass
class RunLock:
    """A held lock of one run folder.

    Attributes:
        path: the lock file.
        note: what was said about a stale lock taken over, else None.
    """

    path: Path
    note: str | None = None

    @classmethod
    def acquire(cls, run_dir: Path | str) -> "RunLock":
        """Take the lock of ``run_dir``.

        Args:
            run_dir: an existing run folder.

        Returns:
            The held lock.

        Raises:
            RunLocked: a live process (or one on another host) holds it.
        """
        path = Path(run_dir) / LOCK_FILE
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        note = None
        for _ in range(3):  # a lost race with another taker: look again
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = read_lock(path.parent)
                if holder is None:  # being written right now, or damaged: give it a moment
                    time.sleep(0.05)
                    holder = read_lock(path.parent) or {}
                same_host = holder.get("host") == me["host"]
                pid = holder.get("pid")
                if same_host and pid == me["pid"]:
                    note = None  # this process's own lock (a sweep worker's earlier trial)
                elif same_host and isinstance(pid, int) and not _alive(pid):
                    note = (f"took over the lock of {_describe(holder)}, which is no longer "
                            "running")
                elif not holder:
                    note = "took over an unreadable lock file"
                else:
                    raise RunLocked(f"this run folder is being written by {_describe(holder)}; "
                                    f"wait for it to end, or stop it (if that process is "
                                    f"gone, delete {path})")
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me) + "\n")
            return cls(path, note)
        raise RunLocked(f"could not take the lock {path}: another process keeps taking it")

    def release(self) -> None:
        """Give the lock back (only if this process still holds it)."""
        holder = read_lock(self.path.parent)
        if holder is not None and holder.get("pid") == os.getpid() \
                and holder.get("host") == socket.gethostname():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
