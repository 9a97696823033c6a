"""``kconf sweeps``: the sweep folders under a root and their best trials, from their files.

A sweep folder is one with a ``sweep.json``, found at ``ROOT/<name>/<time>/`` (or
``ROOT/<time>/`` when ROOT is one sweep's folder, or ROOT itself). A status ``running`` whose
driver process is gone shows as ``interrupted``.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kconf.sweep.folders import SWEEP_FILE, read_record, read_sweep_json
from kconf.sweep.leaderboard import LeaderboardRow, TrialRecord, leaderboard


@dataclass
class SweepInfo:
    """One sweep folder as ``kconf sweeps`` lists it.

    Attributes:
        path: the sweep folder.
        name: the sweep's name.
        started: when it was first started (local time, ISO format), or None.
        status: ``running``, ``finished``, ``interrupted`` or ``unknown``.
        trials: how many trials it has; ``counts`` how many have each status.
        metric, mode: what it ranks by.
        best: the leaderboard's first row, if any trial is ranked.
        varying: the parameters that vary.
    """

    path: Path
    name: str
    started: str | None
    status: str
    trials: int
    counts: dict[str, int]
    metric: str | None
    mode: str | None
    best: LeaderboardRow | None
    varying: list[str]

    def to_json(self) -> dict:
        """The info as JSON-ready data."""
        return {"path": str(self.path), "name": self.name, "started": self.started,
                "status": self.status, "trials": self.trials, "counts": self.counts,
                "metric": self.metric, "mode": self.mode, "varying": self.varying,
                "best": None if self.best is None else self.best.to_json()}


def list_sweeps(root: str | os.PathLike = "runs") -> list[SweepInfo]:
    """Every sweep folder under ``root``, sorted by name then time.

    Args:
        root: the runs root, one sweep's folder of folders, or one sweep folder.

    Returns:
        One ``SweepInfo`` each; an absent root gives an empty list.
    """
    root = Path(root)
    if (root / SWEEP_FILE).is_file():
        found = [root]
    else:
        found = [p.parent for p in (*root.glob(f"*/{SWEEP_FILE}"),
                                    *root.glob(f"*/*/{SWEEP_FILE}"))]
    return [read_sweep(p) for p in sorted(set(found), key=lambda p: (p.parent.name, p.name))]


def read_sweep(folder: str | os.PathLike) -> SweepInfo:
    """Summarise one sweep folder from its ``sweep.json`` and its trials' ``trial.json``."""
    from kconf.train.listing import process_alive

    folder = Path(folder)
    info = read_sweep_json(folder)
    status = str(info.get("status", "unknown"))
    if status == "running" and not process_alive(info.get("pid"), info.get("host")):
        status = "interrupted"
    records = []
    for index, trial in enumerate(info.get("trials") or []):
        record = read_record(folder / str(trial.get("trial_id")))
        records.append(record or TrialRecord(str(trial.get("trial_id")), index,
                                             trial.get("params") or {}))
    metric, mode = info.get("metric"), info.get("mode")
    rows = (leaderboard(records, metric, mode, info.get("scope", "last"))
            if metric and mode in ("min", "max") else [])
    created = info.get("created")
    started = (datetime.fromtimestamp(created).isoformat(timespec="seconds")
               if isinstance(created, (int, float)) else None)
    return SweepInfo(path=folder, name=str(info.get("name", folder.parent.name)),
                     started=started, status=status, trials=len(records),
                     counts=dict(Counter(r.status for r in records)), metric=metric,
                     mode=mode, best=rows[0] if rows and rows[0].rank == 1 else None,
                     varying=list(info.get("varying") or []))
