"""Sweep folders: ``runs/<sweep>/<timestamp>/``, found again by the sweep's key.

    runs/<sweep>/<YYYYmmdd-HHMMSS>/
      sweep.yaml        the sweep file as written
      sweep.json        name, key, files, metric, status (running / finished / interrupted,
                        with the driver's pid and host), the trials and their values
      leaderboard.csv   every trial ranked, full precision
      leaderboard.md    the same as a Markdown table
      logs/             the local workers' stderr
      trial_000/        a normal run folder, plus trial.json (the driver's record: values,
                        status, per-epoch reports, error, the node it ran on)

The key is ``SweepPlan.key``: a digest of the validated sweep (comments, formatting and
``resources`` left out) and of every trial's resolved config. Running a sweep again looks for
the newest folder under ``runs/<sweep>/`` whose ``sweep.json`` has the same key and carries
on there; any change to the sweep or its base config gives a new folder.

Every file is written atomically (``kconf.files.write_atomic``).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

from kconf.files import write_atomic
from kconf.sweep.leaderboard import TrialRecord, to_csv, to_markdown
from kconf.sweep.plan import SweepPlan
from kconf.sweep.trial import TrialResult
from kconf.train.runs import RunRecorder, create_run_dir

SWEEP_FILE = "sweep.json"
TRIAL_FILE = "trial.json"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find_sweep_folder(output_dir: str | os.PathLike, name: str, key: str) -> Path | None:
    """The newest folder of the sweep named ``name`` with this key, or None.

    Args:
        output_dir: the runs root (``runs``).
        name: the sweep's name.
        key: ``SweepPlan.key``.
    """
    parent = Path(output_dir) / name
    found = [p for p in sorted(parent.glob(f"*/{SWEEP_FILE}"))
             if _read_json(p).get("key") == key]
    return found[-1].parent if found else None


def create_sweep_folder(output_dir: str | os.PathLike, plan: SweepPlan) -> Path:
    """A new sweep folder with ``sweep.yaml`` and ``sweep.json`` (status ``running``)."""
    folder = create_run_dir(Path(output_dir), plan.sweep.name)
    text = plan.sweep.source.text or ""
    write_atomic(folder / "sweep.yaml", text)
    write_sweep_json(folder, plan, "running")
    return folder


def write_sweep_json(folder: Path, plan: SweepPlan, status: str, **extra) -> None:
    """Replace ``sweep.json``: the sweep, its status, and the driver (pid, host)."""
    sweep = plan.sweep
    previous = _read_json(folder / SWEEP_FILE)
    info = {
        "name": sweep.name, "key": plan.key, "status": status,
        "created": previous.get("created", time.time()), "updated": time.time(),
        "pid": os.getpid(), "host": socket.gethostname(),
        "file": str(Path(sweep.source.file).resolve()), "base": str(sweep.base_path.resolve()),
        "metric": sweep.metric, "mode": sweep.mode, "scope": sweep.scope,
        "search": sweep.to_data()["search"], "varying": plan.varying,
        "trials": [{"trial_id": t.trial_id, "params": t.trial.params} for t in plan.trials],
        **extra,
    }
    write_atomic(folder / SWEEP_FILE, json.dumps(info, indent=2, default=str) + "\n")


def read_sweep_json(folder: Path) -> dict:
    """``sweep.json`` of a sweep folder (empty if absent or unreadable)."""
    return _read_json(Path(folder) / SWEEP_FILE)


def read_record(run_dir: Path) -> TrialRecord | None:
    """A trial's ``trial.json``, or None."""
    data = _read_json(Path(run_dir) / TRIAL_FILE)
    try:
        return TrialRecord.from_json(data) if data else None
    except TypeError:
        return None


def write_record(run_dir: Path, record: TrialRecord) -> None:
    """Replace a trial's ``trial.json`` (its folder is created if missing)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / TRIAL_FILE, json.dumps(record.to_json(), indent=2, default=str)
                 + "\n")


def clear_run_dir(run_dir: Path) -> None:
    """Remove a trial's folder that holds no complete epoch (no checkpoint), so that the
    trial starts afresh there."""
    if Path(run_dir).is_dir():
        shutil.rmtree(run_dir)


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a trial's run folder can be resumed."""
    return (Path(run_dir) / "checkpoints" / "last.npz").is_file()


def record_run_files(run_dir: Path, result: TrialResult) -> None:
    """Write a run folder's summary files from a result alone: ``metrics.jsonl`` and
    ``metrics.csv`` (the history), ``evaluation.json`` and ``status.json``.

    For a backend whose workers do not share the driver's filesystem: the driver records what
    it received, and the backend delivers the weights and checkpoints its own way.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    RunRecorder(run_dir).restore_rows(result.history)
    if result.evaluation is not None:
        write_atomic(run_dir / "evaluation.json", json.dumps(result.evaluation, indent=2) + "\n")
    status = {"status": result.status, "started": result.started, "updated": result.ended,
              "epochs_completed": len(result.history), "host": result.node.get("hostname"),
              "ip": result.node.get("ip")}
    if result.error:
        status["error"] = result.error
    if result.stop_reason:
        status["reason"] = result.stop_reason
    write_atomic(run_dir / "status.json", json.dumps(status, indent=2) + "\n")


def write_leaderboard(folder: Path, rows, plan: SweepPlan) -> tuple[Path, Path]:
    """Write ``leaderboard.csv`` and ``leaderboard.md`` in the sweep folder.

    Returns:
        Their paths.
    """
    sweep = plan.sweep
    title = f"Sweep {sweep.name}: {sweep.metric} ({sweep.mode}, {sweep.scope})"
    csv_path, md_path = Path(folder) / "leaderboard.csv", Path(folder) / "leaderboard.md"
    write_atomic(csv_path, to_csv(rows, plan.varying))
    write_atomic(md_path, to_markdown(rows, plan.varying, title))
    return csv_path, md_path
