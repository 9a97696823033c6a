"""Run folders: ``runs/<name>/<timestamp>[-n]/``, written incrementally and atomically.

Every file is either appended line by line and flushed (metrics.jsonl) or replaced whole with
``os.replace`` (everything else), so an interrupted run leaves each file complete and readable.
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from kconf.files import write_atomic
from kconf.train.callbacks import Callback


def create_run_dir(root: Path, name: str, now: datetime | None = None) -> Path:
    """A new, unique run folder; a second run in the same second gets a ``-1`` suffix."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    parent = Path(root) / name
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        path = parent / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"too many runs named {name!r} at {stamp}")


RUN_FILES = ("status.json", "metrics.jsonl", "config.yaml")


def claim_run_dir(path: Path) -> Path:
    """A given folder for a new run (a sweep's trial folder): created if missing.

    Raises:
        FileExistsError: the folder already holds a run (continue it with ``resume_run``).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if any((path / name).exists() for name in RUN_FILES):
        raise FileExistsError(f"{path} already holds a run; resume it or choose another folder")
    return path


def save_weights(path: Path, named: dict[str, np.ndarray]) -> None:
    """Weights as ``.npz`` with arrays named ``layer/weight``, written atomically."""
    buf = io.BytesIO()
    np.savez(buf, **named)
    write_atomic(Path(path), buf.getvalue())


SOURCE_FILE = "source.json"


def source_info(cfg) -> dict[str, str]:
    """Where a run's config came from: its file, and the folder its relative paths (data
    files, metric modules, model files) are resolved against, both absolute.

    Args:
        cfg: a loaded ``RunConfig``.

    Returns:
        ``{"config_file": ..., "base_dir": ...}`` as ``source.json`` records it, so that the
        run folder's ``resolved.yaml`` can be loaded again from anywhere.
    """
    file = cfg.source.file
    path = Path(file)
    return {"config_file": str(path.resolve()) if path.exists() else file,
            "base_dir": str(Path(cfg.source.base_dir).resolve())}


def read_source_info(run_dir: Path) -> dict[str, str]:
    """``source.json`` of a run folder (empty if absent or unreadable)."""
    try:
        info = json.loads((Path(run_dir) / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


VERSIONED = ("numpy", "pydantic", "typer", "rich", "pyyaml", "kconf")


def versions() -> dict[str, str]:
    """The versions a run depends on, as ``versions.json`` records them.

    Returns:
        ``{"python": ..., "platform": ..., "numpy": ..., ..., "kconf": ...}``; a package that
        is not installed as a distribution reads ``"unknown"``.
    """
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform(),
           "implementation": sys.implementation.name}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    if out["kconf"] == "unknown":
        from kconf.version import __version__

        out["kconf"] = __version__
    return out


def load_weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


class RunRecorder(Callback):
    """Writes a run's metrics after every epoch, its weights at the end, and its status."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.rows: list[dict] = []
        self.started = time.time()
        #: Written into every status (a data-parallel run's ``ranks`` and ``hosts``).
        self.info: dict = {}

    def write_status(self, status: str, **extra) -> None:
        """Replace ``status.json``: the status, times, epochs completed, and the process (pid
        and host) so that ``kconf runs`` can tell a live 'running' from a dead one."""
        info = {"status": status, "started": self.started, "updated": time.time(),
                "epochs_completed": len(self.rows), "pid": os.getpid(),
                "host": socket.gethostname(), **self.info, **extra}
        write_atomic(self.run_dir / "status.json", json.dumps(info, indent=2) + "\n")

    def restore_rows(self, rows: list[dict]) -> None:
        """Continue a resumed run: keep these epochs' rows, rewrite both metric files."""
        self.rows = list(rows)
        write_atomic(self.run_dir / "metrics.jsonl",
                     "".join(json.dumps(row) + "\n" for row in self.rows))
        write_atomic(self.run_dir / "metrics.csv", _csv(self.rows))

    def on_train_begin(self, logs=None):
        self.write_status("running")

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        self.rows.append(row)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        write_atomic(self.run_dir / "metrics.csv", _csv(self.rows))
        self.write_status("running")

    def on_train_end(self, logs=None):
        save_weights(self.run_dir / "weights.npz", self.model.named_weights())


def read_status(run_dir: Path) -> dict:
    """A run folder's ``status.json``.

    Args:
        run_dir: a run folder.

    Returns:
        Its fields (``status``, ``started``, ``pid``, ...); empty when absent or unreadable.
    """
    try:
        info = json.loads((Path(run_dir) / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def read_metrics_rows(run_dir: Path) -> list[dict]:
    """The complete rows of a run's metrics.jsonl (a line cut off by a kill, or damaged, is
    skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    if path.is_file():  # a damaged file: its undecodable or odd lines are skipped
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("epoch"), int):
                rows.append(row)
    return rows


def _csv(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
