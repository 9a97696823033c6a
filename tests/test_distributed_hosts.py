"""A data-parallel run over two "machines": two network namespaces joined by a veth pair, each
with a host name of its own (a UTS namespace), as the Ray backend's tests do it. ``mpiexec``
runs in the first and starts the second rank's proxy in the other through its ``ssh``
launcher, here a script that enters that namespace instead of logging in. MPICH then talks
between the ranks over the veth pair, as it would between two machines.

Needs root, ``ip`` (iproute2), ``unshare`` and ``nsenter`` (util-linux): skipped, saying so,
without them; CI has them (``.ci/run``).
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kconf.distributed.launch import find_mpiexec
from tests.netns import (NETNS_ETC, REAPER, needs_namespaces, remove_namespace,
                         remove_stale_namespaces)
from tests.test_distributed import DENSE, ENV, KCONF, one_process, the_run, weights, write

pytestmark = needs_namespaces("the two-machine test's ranks")

PREFIX = f"kconf-m{os.getpid()}"
SUBNET = f"10.231.{os.getpid() % 250}"
_numbers = itertools.count()


class Machine:
    """A network namespace with its own host name, held by one process (``pid``)."""

    def __init__(self, host: str, hosts_file: str):
        self.name = f"{PREFIX}-{next(_numbers)}"
        self.host = host
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        etc = NETNS_ETC / self.name  # `ip netns exec` mounts it over /etc
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts_file)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        # ip netns exec, unshare (no fork) and sh each exec the next: the pid is the reaper's
        self.holder = subprocess.Popen(
            ["ip", "netns", "exec", self.name, "unshare", "--uts", "sh", "-c",
             f"hostname {host} && exec {sys.executable} -c '{REAPER}'"])

    def enter(self) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "--net", "--mount", "--uts", "--"]

    def close(self) -> None:
        remove_namespace(self.name)
        self.holder.kill()
        self.holder.wait()


@pytest.fixture
def machines():
    """Two machines, ``node-a`` (10.231.x.1) and ``node-b`` (.2), joined by a veth pair."""
    remove_stale_namespaces("kconf-m")
    hosts = f"127.0.0.1 localhost\n{SUBNET}.1 kconf-node-a\n{SUBNET}.2 kconf-node-b\n"
    made = []
    try:
        for host in ("kconf-node-a", "kconf-node-b"):
            made.append(Machine(host, hosts))
        ends = (f"km{os.getpid() % 100000}a", f"km{os.getpid() % 100000}b")
        subprocess.run(["ip", "link", "add", ends[0], "type", "veth", "peer", "name", ends[1]],
                       check=True)
        for i, (machine, end) in enumerate(zip(made, ends), start=1):
            subprocess.run(["ip", "link", "set", end, "netns", machine.name], check=True)
            subprocess.run(["ip", "-n", machine.name, "addr", "add", f"{SUBNET}.{i}/24", "dev",
                            end], check=True)
            subprocess.run(["ip", "-n", machine.name, "link", "set", end, "up"], check=True)
        yield made
    finally:
        for machine in made:
            machine.close()


def test_ranks_on_two_machines_train_as_one_process_and_record_their_hosts(machines, tmp_path):
    a, b = machines
    launcher = tmp_path / "enter-node.sh"  # what mpiexec runs instead of ssh: HOST COMMAND
    launcher.write_text("#!/bin/sh\n"
                        'while [ "${1#-}" != "$1" ]; do shift; done\n'  # ssh's options
                        "shift\n"  # the host: there is one other
                        f'exec {" ".join(b.enter())} sh -c "$*"\n')
    launcher.chmod(0o755)
    config = write(tmp_path, "dense.yaml", DENSE)
    done = subprocess.run(
        [*a.enter(), find_mpiexec(), "-hosts", f"{SUBNET}.1,{SUBNET}.2", "-n", "2", "-ppn", "1",
         "-launcher", "ssh", "-launcher-exec", str(launcher), *KCONF, "train", str(config),
         "--output-dir", str(tmp_path / "two"), "-q"],
        capture_output=True, text=True, env=ENV, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    run = the_run(tmp_path / "two")
    info = json.loads((run / "status.json").read_text())
    assert info["status"] == "finished"
    assert info["hosts"] == ["kconf-node-a", "kconf-node-b"]
    one_process("train", config, "--output-dir", tmp_path / "one", "-q")
    one, two = weights(the_run(tmp_path / "one")), weights(run)
    for key in one:
        np.testing.assert_allclose(one[key], two[key], rtol=0, atol=1e-6, err_msg=key)
