"""``kconf runs``: what the run folders under a root hold, read from their files alone.

A run folder is a directory with a ``status.json``, ``config.yaml`` or ``metrics.jsonl``,
found at ``ROOT/<name>/<time>/`` (or ``ROOT/<time>/`` when ROOT is one config's folder, or
ROOT itself). A status 'running' whose process is gone (its pid no longer exists on this
host) is shown as 'interrupted'.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

import yaml

from kconf.train.direction import higher_is_better

MARKERS = ("status.json", "config.yaml", "metrics.jsonl")


@dataclass
class MetricSummary:
    """One logged metric over a run: its name, its best and its last value."""

    name: str
    best: float
    final: float


@dataclass
class RunInfo:
    """One run folder as ``kconf runs`` lists it.

    Attributes:
        path: the run folder.
        name: the config's name (the parent folder).
        started: when training started (local time, ISO format), or None.
        status: 'finished', 'interrupted', 'failed', 'running', or 'unknown'.
        epochs: epochs completed.
        planned: ``fit.epochs`` of the resolved config, if readable.
        main: the loss monitored (``val_loss`` if logged, else ``loss``), lower is better.
        accuracy: the first accuracy-like metric (of validation when ``main`` is), higher
            is better.
        error: why a failed run stopped.
    """

    path: Path
    name: str
    started: str | None
    status: str
    epochs: int
    planned: int | None = None
    main: MetricSummary | None = None
    accuracy: MetricSummary | None = None
    error: str | None = None

    def to_json(self) -> dict:
        """The info as JSON-ready data (the path as a string)."""
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def list_runs(root: str | os.PathLike = "runs") -> list[RunInfo]:
    """Every run folder under ``root``, sorted by name then time.

    Args:
        root: a folder of run folders (``runs``), one config's (``runs/vgg``) or one run.

    Returns:
        One ``RunInfo`` per run folder; an absent ``root`` gives an empty list.
    """
    found = []
    for path in sorted(_run_dirs(Path(root)), key=_order):
        info = read_run(path)
        if (path.parent / SWEEP_MARKER).is_file():  # a sweep's trial: <sweep>/<time>/<trial>
            info = replace(info, name=f"{path.parent.parent.name}/{path.parent.name}")
        found.append(info)
    return found


#: The file that marks a sweep folder (``kconf.sweep.folders``); its trials are run folders.
SWEEP_MARKER = "sweep.json"


def _run_dirs(root: Path) -> list[Path]:
    """Folders holding a run, at most two levels below ``root`` (or ``root`` itself), and the
    trials of the sweep folders found there."""
    if _is_run(root):
        return [root]
    found = []

    def visit(folder: Path, depth: int) -> None:
        if _is_run(folder):
            found.append(folder)
        elif (folder / SWEEP_MARKER).is_file():
            found.extend(t for t in _subdirs(folder) if _is_run(t))
        elif depth < 2:
            for child in _subdirs(folder):
                visit(child, depth + 1)

    visit(root, 0)
    return found


def _subdirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


def _is_run(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for m in MARKERS)


def _order(path: Path) -> tuple[str, ...]:
    if (path.parent / SWEEP_MARKER).is_file():
        return (path.parent.parent.name, path.parent.name, path.name)
    return (path.parent.name, path.name)


def read_run(path: str | os.PathLike) -> RunInfo:
    """Summarise one run folder from its ``status.json``, ``metrics.jsonl`` and config.

    Args:
        path: the run folder.

    Returns:
        Its ``RunInfo``; unreadable files leave their fields empty rather than failing.
    """
    path = Path(path)
    status = _read_json(path / "status.json")
    rows = _read_rows(path / "metrics.jsonl")
    state = str(status.get("status", "unknown"))
    if state == "running" and not process_alive(status.get("pid"), status.get("host")):
        state = "interrupted"
    started = status.get("started")
    when = (datetime.fromtimestamp(started).isoformat(timespec="seconds")
            if isinstance(started, (int, float)) else None)
    main_name = "val_loss" if any("val_loss" in r for r in rows) else "loss"
    main = _summary(rows, main_name, max_is_best=False)
    acc_name = _accuracy_name(rows, validation=main_name == "val_loss")
    accuracy = _summary(rows, acc_name, max_is_best=True) if acc_name else None
    return RunInfo(path=path, name=path.parent.name, started=when, status=state,
                   epochs=len(rows), planned=_planned_epochs(path), main=main,
                   accuracy=accuracy,
                   error=status.get("error") if isinstance(status.get("error"), str) else None)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_rows(path: Path) -> list[dict]:
    """The complete lines of ``metrics.jsonl`` (a line cut short by a crash is left out)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, ValueError):  # unreadable, or not UTF-8 (a damaged file)
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _summary(rows: list[dict], name: str, max_is_best: bool) -> MetricSummary | None:
    values = [float(r[name]) for r in rows if isinstance(r.get(name), (int, float))]
    if not values:
        return None
    best = max(values) if max_is_best else min(values)
    return MetricSummary(name, best, values[-1])


def _accuracy_name(rows: list[dict], validation: bool) -> str | None:
    """The first logged metric whose name says accuracy (``val_`` ones for validation); else
    the first other metric that is better when larger (auc, precision, f1_score ...)."""
    names = [n for n in dict.fromkeys(k for r in rows for k in r)
             if n.startswith("val_") == validation]
    for name in names:
        if "acc" in name:
            return name
    return next((n for n in names if n != "epoch" and higher_is_better(n)), None)


def _planned_epochs(path: Path) -> int | None:
    try:
        data = yaml.safe_load((path / "resolved.yaml").read_text())
        epochs = data["fit"]["epochs"]
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
        return None
    return epochs if isinstance(epochs, int) else None


def process_alive(pid, host) -> bool:
    """Whether the process that wrote a 'running' status still exists. A run on another host,
    or a status without a pid, cannot be checked and counts as alive."""
    if not isinstance(pid, int) or (host and host != socket.gethostname()):
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but belongs to someone else
        return True
    except OSError:
        return True
    return True
