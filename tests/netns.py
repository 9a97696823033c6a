"""Network namespaces for the tests that play several machines on one (the Ray backend's and
the MPI ranks' two-host tests): what they need, the process that holds one, and clean-up.

A namespace of a test module is named ``PREFIX + pid of the test process + "-" + number``, so
that namespaces left by a killed test run (its process gone) can be found and removed.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

TOOLS = ("ip", "unshare", "nsenter")
#: ``ip netns exec NAME`` mounts the files in ``/etc/netns/NAME/`` over those in ``/etc/``.
NETNS_ETC = Path("/etc/netns")

#: A namespace's holder runs this: it reaps whatever ends in there.
REAPER = """
import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""


def needs_namespaces(what: str):
    """The skip mark of a module whose tests run inside namespaces: root and the tools."""
    return pytest.mark.skipif(
        os.geteuid() != 0 or any(shutil.which(t) is None for t in TOOLS),
        reason=f"{what} run inside network namespaces: they need root and ip (iproute2), "
               "unshare and nsenter (util-linux)")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def remove_namespace(name: str) -> None:
    """Kill the processes in a namespace (by their ids) and delete it."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                          text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


def remove_stale_namespaces(prefix: str) -> None:
    """The namespaces named ``prefix<pid>-…`` whose test process is gone."""
    etc = [p.name for p in NETNS_ETC.iterdir()] if NETNS_ETC.is_dir() else []
    for name in set(namespaces()) | set(etc):
        owner = name[len(prefix):].split("-")[0]
        if name.startswith(prefix) and owner.isdigit() and not pid_alive(int(owner)):
            remove_namespace(name)
