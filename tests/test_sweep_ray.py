"""The Ray backend (``kconf sweep --backend ray``) against real Ray, never on the machine's
network: every Ray process runs inside network namespaces this module creates and removes, a
loopback-only one for a single-node cluster, two joined by a veth pair for a two-node one.

Each namespace is held by a process that is PID 1 of a PID namespace of its own, so a
``ray stop`` inside sees (and stops) only the Ray processes of that namespace, and ending the
holder ends whatever is left in it. The tests that start Ray need root, ``ip`` (iproute2),
``unshare`` and ``nsenter`` (util-linux) and are skipped, saying so, without them; CI has them
(``.ci/run``). Inside a namespace this machine's name resolves to 127.0.0.1 (``/etc/netns``),
so that Ray's fallback for a node's address is the same on every machine.
"""
from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kconf.cli import app
from tests.netns import (NETNS_ETC, REAPER, needs_namespaces, remove_namespace,
                         remove_stale_namespaces)
from tests.test_sweep import (ASHA_SWEEP, GRID, rows_of, status_of, the_folder, tiny_config,
                              trial_json, write, write_slow_sweep)

namespaces = needs_namespaces("the Ray backend's tests")

#: Names of this module's namespaces start with this, then the pid of the test process.
PREFIX = "kconf-t"
# Ray's token authentication off: a token that an earlier ray.init left in ~/.ray would
# turn it on for a head but not for the nodes joining it (HOME is a folder of the tests').
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
       "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
KCONF = [sys.executable, "-m", "kconf.cli"]
_numbers = itertools.count()
runner = CliRunner()

# The command lines of the processes that /proc shows, one a line.
_COMMAND_LINES = """
from pathlib import Path
for p in Path("/proc").glob("[0-9]*/cmdline"):
    try:
        print(p.read_bytes().replace(b"\\0", b" ").decode(errors="replace").strip())
    except OSError:
        pass
"""


def _child_of(pid: int, timeout: float = 10) -> int:
    """The pid of ``pid``'s child (the holder's PID 1), as this machine numbers it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                return int(stat.parent.name)
        time.sleep(0.05)
    raise RuntimeError(f"process {pid} started no child")


class Namespace:
    """A network namespace, loopback only (``Namespace.join`` links two), with a PID and a
    mount namespace of its own, held by one process.

    Args:
        tag: the end of its name.
    """

    def __init__(self, tag: str):
        self.name = f"{PREFIX}{os.getpid()}-{next(_numbers)}-{tag}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.holder = None
        try:
            # This machine's name is a loopback address in there, whatever /etc/hosts says
            # outside: Ray falls back to it for the node address when nothing routes out.
            etc = NETNS_ETC / self.name
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost {socket.gethostname()}\n"
                                       "::1 localhost\n")
            subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
            self.holder = subprocess.Popen(
                ["ip", "netns", "exec", self.name, "unshare", "--pid", "--fork", "--kill-child",
                 "--mount-proc", sys.executable, "-c", REAPER])
            self.init = _child_of(self.holder.pid)
        except BaseException:
            self.close()
            raise

    def command(self, args: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.init), "--net", "--pid", "--mount", "--",
                *map(str, args)]

    def run(self, args: list, timeout: float = 180, check: bool = True,
            env: dict | None = None) -> subprocess.CompletedProcess:
        """Run a command in the namespace; its output is returned as text."""
        done = subprocess.run(self.command(args), capture_output=True, text=True,
                              timeout=timeout, env=env or ENV)
        if check and done.returncode != 0:
            raise AssertionError(f"{args} exited with {done.returncode}:\n{done.stdout}\n"
                                 f"{done.stderr}")
        return done

    def popen(self, args: list, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(args), env=ENV, **kwargs)

    def ray_processes(self) -> list[str]:
        """The command lines of Ray's processes in its PID namespace."""
        out = self.run([sys.executable, "-c", _COMMAND_LINES]).stdout.splitlines()
        return [line for line in out if line.startswith("ray::") or "/ray/" in line]

    def close(self) -> None:
        """End every process in it (its PID 1 takes them along) and delete it."""
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
        remove_namespace(self.name)

    @staticmethod
    def join(a: "Namespace", a_ip: str, b: "Namespace", b_ip: str) -> None:
        """Connect two namespaces by a veth pair, ``a_ip/24`` and ``b_ip/24``."""
        tag = f"kc{os.getpid() % 100000}{next(_numbers)}"
        ends = (f"{tag}a", f"{tag}b")
        subprocess.run(["ip", "link", "add", ends[0], "type", "veth", "peer", "name", ends[1]],
                       check=True)
        for ns, end, ip in ((a, ends[0], a_ip), (b, ends[1], b_ip)):
            subprocess.run(["ip", "link", "set", end, "netns", ns.name], check=True)
            subprocess.run(["ip", "-n", ns.name, "addr", "add", f"{ip}/24", "dev", end],
                           check=True)
            subprocess.run(["ip", "-n", ns.name, "link", "set", end, "up"], check=True)


def start_ray(ns: Namespace, temp_dir: Path, cpus: int, ip: str, head: str | None = None):
    """``ray start`` in a namespace: a head (``head`` None) or a node joining ``head``."""
    where = (["--head", "--port", "6379", "--include-dashboard", "false"] if head is None
             else ["--address", head])
    ns.run([*RAY, "start", *where, "--disable-usage-stats", "--node-ip-address", ip,
            "--num-cpus", cpus, "--temp-dir", temp_dir])


def stop_ray(ns: Namespace) -> None:
    ns.run([*RAY, "stop", "--grace-period", "10"], check=False, timeout=60)


def short_dir() -> Path:
    """A folder with a short path (Ray's socket paths must stay under 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix="kr", dir="/tmp"))


def sweep_args(path: Path, output: Path, *extra, address: str | None = "127.0.0.1:6379"):
    where = [] if address is None else ["--address", address]
    return [*KCONF, "sweep", path, "--backend", "ray", *where, "--output-dir", output, *extra]


def ray_sweep(ns: Namespace, path: Path, output: Path, *extra, address="127.0.0.1:6379",
              timeout: float = 240) -> subprocess.CompletedProcess:
    return ns.run(sweep_args(path, output, *extra, address=address), check=False,
                  timeout=timeout)


def leaderboard(folder: Path) -> list[dict]:
    with open(folder / "leaderboard.csv") as f:
        return list(csv.DictReader(f))


def tune_results(folder: Path, trial_id: str) -> list[dict]:
    """What Tune itself recorded of a trial's reports (its JSON logger's result.json)."""
    (path,) = (folder / "ray").glob(f"*/{trial_id}/result.json")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module", autouse=True)
def own_home(tmp_path_factory):
    """Ray's commands here keep what they write in ~/.ray out of the real home folder."""
    ENV["HOME"] = str(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def head():
    """A single-node Ray cluster (2 CPUs) in a loopback-only namespace, for the module."""
    remove_stale_namespaces(PREFIX)
    ns = Namespace("lo")
    base = short_dir()
    try:
        start_ray(ns, base / "h", 2, "127.0.0.1")
        assert ns.ray_processes()  # what the check after `ray stop` looks for
        yield ns
        stop_ray(ns)
        assert ns.ray_processes() == []  # `ray stop` stopped them all
    finally:
        ns.close()
        shutil.rmtree(base, ignore_errors=True)


# --- without a cluster ----------------------------------------------------------------------------

def test_missing_ray_is_a_clear_message_not_a_traceback(tmp_path, monkeypatch):
    write(tmp_path, "tiny.yaml", tiny_config())
    path = write(tmp_path, "grid.yaml", GRID)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as when not installed
    for module in ("kconf.sweep.backends.ray", "kconf.sweep.backends.ray_worker"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    result = runner.invoke(app, ["sweep", str(path), "--backend", "ray", "--output-dir",
                                 str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "the ray sweep backend needs packages that are not installed" in result.output
    assert "pip install 'kconf[ray]'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "runs").exists()


def test_address_is_an_option_of_the_ray_backend_only(tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())
    path = write(tmp_path, "grid.yaml", GRID)
    result = runner.invoke(app, ["sweep", str(path), "--address", "127.0.0.1:6379",
                                 "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "the local sweep backend takes no option 'address'" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_trials_files_travel_as_changes_and_stay_inside_its_run_folder(tmp_path):
    from kconf.sweep.backends.ray_worker import FolderSync, write_files

    trial = tmp_path / "trial"
    (trial / "checkpoints").mkdir(parents=True)
    (trial / "a.txt").write_text("one")
    (trial / "checkpoints" / "last.npz").write_bytes(b"\x00\x01")
    (trial / ".b.txt.tmp").write_text("a write in progress")
    sync = FolderSync(trial)
    first = sync.changed()
    assert first == [("a.txt", b"one"), ("checkpoints/last.npz", b"\x00\x01")]
    assert sync.changed() == []
    (trial / "a.txt").write_text("two")  # same size: told apart by content
    (trial / "b.txt").write_text("new")
    changed = sync.changed()
    assert changed == [("a.txt", b"two"), ("b.txt", b"new")]
    copy = tmp_path / "copy"
    write_files(copy, first + changed)
    assert {p.relative_to(copy).as_posix(): p.read_bytes() for p in copy.rglob("*")
            if p.is_file()} == {"a.txt": b"two", "b.txt": b"new",
                                "checkpoints/last.npz": b"\x00\x01"}
    for bad in ("../escape.txt", "/tmp/escape.txt", "checkpoints/../../escape.txt"):
        with pytest.raises(ValueError, match="refusing to write"):
            write_files(copy, [(bad, b"x")])
    assert not (tmp_path / "escape.txt").exists()


# --- a single-node cluster ------------------------------------------------------------------------

@namespaces
def test_ray_backend_gives_the_local_backends_leaderboard(head, tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())
    path = write(tmp_path, "grid.yaml", GRID)
    local = runner.invoke(app, ["sweep", str(path), "--workers", "2", "--quiet",
                                "--output-dir", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    done = ray_sweep(head, path, tmp_path / "on_ray")  # not --quiet: progress lines
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert "trial_000 running (SGD.lr=0.3, fit.batch_size=16)" in lines
    assert any(line.startswith("trial_003 finished after 2 epochs: val_loss ") for line in lines)
    assert not any("Trial trial_" in line or "Tune" in line for line in lines)  # only kconf's
    local_folder = the_folder(tmp_path / "local", "grid")
    folder = the_folder(tmp_path / "on_ray", "grid")
    # same trials, same order, same values (fixed seeds: kconf is deterministic); only the
    # node's address differs
    expected = [{k: v for k, v in row.items() if k != "ip"} for row in leaderboard(local_folder)]
    table = leaderboard(folder)
    assert [{k: v for k, v in row.items() if k != "ip"} for row in table] == expected
    assert [row["status"] for row in table] == ["finished"] * 4
    assert all(row["ip"].startswith("127.") for row in table)  # the loopback-only node
    assert json.loads((folder / "sweep.json").read_text())["status"] == "finished"
    for trial in ("trial_000", "trial_001", "trial_002", "trial_003"):
        run_dir, twin = folder / trial, local_folder / trial
        files = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
        assert {"config.yaml", "resolved.yaml", "overrides.yaml", "versions.json",
                "source.json", "summary.txt", "metrics.jsonl", "metrics.csv", "weights.npz",
                "evaluation.json", "status.json", "trial.json", "checkpoints/last.npz"} <= files
        assert rows_of(run_dir) == rows_of(twin)
        assert (run_dir / "weights.npz").read_bytes() == (twin / "weights.npz").read_bytes()
        record = trial_json(run_dir)
        assert record["status"] == "finished" and record["history"] == rows_of(run_dir)
        assert record["node"]["ip"] == table[0]["ip"] and record["node"]["hostname"]
        assert record["threads"] == 1  # resources.cpus
        status = status_of(run_dir)
        assert (status["status"], status["ip"]) == ("finished", record["node"]["ip"])
        # Tune received every epoch's metrics, and none of the files that came with them
        reports = [r for r in tune_results(folder, trial) if "epoch" in r]
        assert [(r["epoch"], r["val_loss"]) for r in reports] == [
            (row["epoch"], row["val_loss"]) for row in rows_of(twin)]
        assert all("kconf" not in r for r in tune_results(folder, trial))
    # a Ray trial's folder is a run folder for the other commands
    result = runner.invoke(app, ["evaluate", str(folder / "trial_001"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(
        (folder / "trial_001" / "evaluation.json").read_text())


@namespaces
def test_asha_in_ray_tune_stops_a_clearly_bad_trial(head, tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config(samples=400, epochs=3))
    path = write(tmp_path, "asha.yaml", ASHA_SWEEP)
    done = ray_sweep(head, path, tmp_path / "runs", "--workers", "1", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = the_folder(tmp_path / "runs", "asha")
    good, bad = folder / "trial_000", folder / "trial_001"
    assert [r["epoch"] for r in rows_of(good)] == [1, 2, 3]
    assert status_of(good)["status"] == "finished"
    assert [r["epoch"] for r in rows_of(bad)] == [1]  # stopped at the first rung
    status = status_of(bad)
    assert status["status"] == "stopped"
    assert status["reason"].startswith("ASHA: loss ") and "ASHAScheduler" in status["reason"]
    # a stopped trial is still evaluated, and its files came back
    assert (bad / "evaluation.json").is_file() and (bad / "weights.npz").is_file()
    assert [(r["trial"], r["status"], r["rank"]) for r in leaderboard(folder)] == [
        ("trial_000", "finished", "1"), ("trial_001", "stopped", "2")]


@namespaces
def test_an_unreachable_cluster_or_a_trial_too_big_for_it_is_exit_2(head, tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())
    path = write(tmp_path, "grid.yaml", GRID)
    done = ray_sweep(head, path, tmp_path / "runs", address="127.0.0.1:6390", timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot connect to the Ray cluster at 127.0.0.1:6390" in done.stderr
    assert "Traceback" not in done.stderr
    big = write(tmp_path, "big.yaml", GRID.replace("cpus: 1", "cpus: 3"))
    done = ray_sweep(head, big, tmp_path / "runs")
    assert done.returncode == 2, done.stdout + done.stderr
    assert ("each trial asks for 3 CPUs (resources.cpus) but the largest node of the Ray "
            "cluster at 127.0.0.1:6379 has 2") in done.stderr


def record_status(run_dir: Path) -> str | None:
    try:
        return trial_json(run_dir)["status"]
    except (OSError, ValueError):
        return None


@namespaces
def test_ctrl_c_interrupts_ray_trials_and_a_rerun_resumes_them(head, tmp_path):
    # 24 epochs: on a quiet machine two trials of 8 could both finish between two looks of
    # the loop below (Ray's start-up is most of such a sweep's time)
    epochs = 24
    path = write_slow_sweep(tmp_path, epochs)
    runs = tmp_path / "runs"
    proc = head.popen(sweep_args(path, runs, "--quiet"), stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True)
    kconf = _child_of(proc.pid)  # nsenter's child: the sweep's driver
    deadline = time.monotonic() + 180
    # both trials training, each with an epoch checkpointed in the driver's copy of its folder
    while not (len(list(runs.glob("int/*/trial_00[01]/checkpoints/last.npz"))) == 2 and all(
            record_status(p.parents[1]) == "running"
            for p in runs.glob("int/*/trial_00[01]/checkpoints/last.npz"))):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    os.kill(kconf, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"carry on with: kconf sweep {path}" in stderr and "Traceback" not in stderr
    folder = the_folder(runs, "int")
    for trial in ("trial_000", "trial_001"):
        run_dir = folder / trial
        assert record_status(run_dir) == "interrupted"
        assert status_of(run_dir)["status"] == "interrupted"
        assert trial_json(run_dir)["history"] == rows_of(run_dir) != []
    assert json.loads((folder / "sweep.json").read_text())["status"] == "interrupted"
    done = ray_sweep(head, path, runs, "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((runs / "int").iterdir()) == [folder]
    for trial in ("trial_000", "trial_001"):  # resumed from the checkpoints the driver kept
        record = trial_json(folder / trial)
        assert record["status"] == "finished" and record["initial_epoch"] >= 1
        assert [r["epoch"] for r in rows_of(folder / trial)] == list(range(1, epochs + 1))


@namespaces
def test_local_mode_starts_and_stops_a_ray_of_its_own(tmp_path):
    """No --address: the sweep starts Ray on its machine (here a loopback-only namespace)
    and leaves nothing running."""
    remove_stale_namespaces(PREFIX)
    ns = Namespace("local")
    try:
        write(tmp_path, "tiny.yaml", tiny_config())
        path = write(tmp_path, "one.yaml", GRID.replace("[16, 64]", "[16]"))
        done = ray_sweep(ns, path, tmp_path / "runs", "--quiet", address=None)
        assert done.returncode == 0, done.stdout + done.stderr
        folder = the_folder(tmp_path / "runs", "grid")
        table = leaderboard(folder)
        assert sorted(r["trial"] for r in table) == ["trial_000", "trial_001"]
        assert [r["status"] for r in table] == ["finished"] * 2
        assert all(r["ip"].startswith("127.") for r in table)
        assert trial_json(folder / "trial_000")["node"]["ip"].startswith("127.")
        assert ns.ray_processes() == []  # its Ray was shut down
    finally:
        ns.close()


@namespaces
def test_trials_run_on_both_nodes_of_a_two_node_cluster(tmp_path):
    """Two namespaces joined by a veth pair: the head (and the sweep's driver) in one, a
    worker node in the other. The worker cannot see the driver's output folder (a tmpfs
    hides it there), so everything a trial makes must come back through Ray."""
    remove_stale_namespaces(PREFIX)
    base = short_dir()
    a = b = None
    try:
        a, b = Namespace("head"), Namespace("worker")
        Namespace.join(a, "10.213.0.1", b, "10.213.0.2")
        write(tmp_path, "tiny.yaml", tiny_config())
        # two CPUs a trial, two a node: one trial at a time on each node
        path = write(tmp_path, "two.yaml", GRID.replace("cpus: 1", "cpus: 2"))
        runs = base / "out"
        runs.mkdir()
        b.run(["mount", "-t", "tmpfs", "tmpfs", runs])  # the worker's own, empty "out"
        start_ray(a, base / "h", 2, "10.213.0.1")
        start_ray(b, base / "w", 2, "10.213.0.2", head="10.213.0.1:6379")
        done = ray_sweep(a, path, runs, "--quiet", address="10.213.0.1:6379")
        assert done.returncode == 0, done.stdout + done.stderr
        folder = the_folder(runs, "grid")
        table = leaderboard(folder)
        assert [r["status"] for r in table] == ["finished"] * 4
        ips = {trial_json(folder / r["trial"])["node"]["ip"] for r in table}
        assert ips == {"10.213.0.1", "10.213.0.2"}
        assert {r["ip"] for r in table} == ips
        on_worker = next(r["trial"] for r in table if r["ip"] == "10.213.0.2")
        run_dir = folder / on_worker
        assert status_of(run_dir)["ip"] == "10.213.0.2"
        assert trial_json(run_dir)["threads"] == 2
        assert (run_dir / "checkpoints" / "last.npz").is_file()
        result = runner.invoke(app, ["evaluate", str(run_dir), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == json.loads((run_dir / "evaluation.json").read_text())
        assert b.run(["ls", "-A", runs]).stdout == ""  # nothing was written there on the worker
        stop_ray(b)
        stop_ray(a)
        assert a.ray_processes() == b.ray_processes() == []
    finally:
        for ns in (b, a):
            if ns is not None:
                ns.close()
        shutil.rmtree(base, ignore_errors=True)
