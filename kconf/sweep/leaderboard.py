"""The driver's record of each trial (``trial.json``) and the leaderboard made from them.

Both are plain data computed from what trials report, never from files a worker wrote: a
driver whose workers ran on other machines ranks them the same way.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from kconf.sweep.load import describe
from kconf.sweep.trial import TrialOutcome, TrialResult

#: How unranked trials are listed after the ranked ones.
_UNRANKED_ORDER = {"interrupted": 0, "running": 1, "pending": 2, "failed": 3}


@dataclass
class TrialRecord(TrialOutcome):
    """A trial as the driver knows it; ``trial.json`` in the trial's run folder.

    Attributes:
        trial_id, index, params: the trial.
        status: ``pending``, ``running``, or a ``TrialResult`` status.
        planned: ``fit.epochs`` of its config (None for an invalid trial).
        history: the epochs reported so far, ``{"epoch": n, <logs>}`` each; it and the other
            ``TrialOutcome`` fields (see there) come from the trial's reports and result.
    """

    trial_id: str
    index: int
    params: dict[str, Any]
    status: str = "pending"
    planned: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrialRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        """Record one epoch's report (a re-reported epoch replaces the one held)."""
        self.history = [r for r in self.history if r.get("epoch", 0) < epoch]
        self.history.append({"epoch": epoch, **metrics})

    def apply(self, result: TrialResult) -> None:
        """Take a trial's final result (what it does not know, such as the node of a worker
        that died, stays as recorded)."""
        for name in ("status", "history", "evaluation", "error", "stop_reason"):
            setattr(self, name, getattr(result, name))
        for name in ("node", "started", "ended", "initial_epoch", "threads"):
            value = getattr(result, name)
            if value:
                setattr(self, name, value)

    def value(self, metric: str, mode: str, scope: str = "last") -> tuple[float, int] | None:
        """The value the trial is ranked by, and its epoch: the last reported (``last``) or
        the best over all epochs (``all``); None before any epoch reported the metric."""
        points = [(float(r[metric]), int(r["epoch"])) for r in self.history
                  if isinstance(r.get(metric), (int, float))]
        if not points:
            return None
        if scope == "last":
            return points[-1]
        finite = [p for p in points if not math.isnan(p[0])] or points
        pick = max if mode == "max" else min
        return pick(finite, key=lambda p: p[0])


@dataclass
class LeaderboardRow:
    """One trial on the leaderboard.

    Attributes:
        rank: 1 for the best; None for a trial that is not ranked (it failed, or has not
            finished or been stopped).
        trial_id, status, params: the trial.
        metric: the name ranked by; ``value`` its value, at ``epoch``.
        epochs: the epochs it completed.
        evaluation: its test-split loss and metrics, if any.
        hostname, ip: where it ran.
        run_dir: its run folder, relative to the sweep folder.
        error: why it failed, or why it was stopped.
    """

    rank: int | None
    trial_id: str
    status: str
    params: dict[str, Any]
    metric: str
    value: float | None
    epoch: int | None
    epochs: int
    evaluation: dict[str, float] | None
    hostname: str | None
    ip: str | None
    run_dir: str
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def leaderboard(records: list[TrialRecord], metric: str, mode: str,
                scope: str = "last") -> list[LeaderboardRow]:
    """Rank trials: finished and stopped ones by their value (best first, ties by trial
    order; NaN last), then the others in the order interrupted, running, pending, failed.

    Args:
        records: every trial.
        metric, mode, scope: as the sweep file says.

    Returns:
        One row per trial.
    """
    ranked, unranked = [], []
    for rec in records:
        found = rec.value(metric, mode, scope)
        if rec.status in ("finished", "stopped") and found is not None:
            ranked.append((rec, found))
        else:
            unranked.append((rec, found))

    def order(item):
        value = item[1][0]
        if math.isnan(value):
            return (1, 0.0, item[0].index)
        return (0, -value if mode == "max" else value, item[0].index)

    ranked.sort(key=order)
    unranked.sort(key=lambda item: (_UNRANKED_ORDER.get(item[0].status, 1), item[0].index))
    rows = []
    for rank, (rec, found) in enumerate([*ranked, *unranked], start=1):
        rows.append(LeaderboardRow(
            rank=rank if rank <= len(ranked) else None, trial_id=rec.trial_id,
            status=rec.status, params=dict(rec.params), metric=metric,
            value=None if found is None else found[0], epoch=None if found is None else found[1],
            epochs=len(rec.history), evaluation=rec.evaluation,
            hostname=rec.node.get("hostname"), ip=rec.node.get("ip"), run_dir=rec.trial_id,
            error=rec.error or rec.stop_reason))
    return rows


def _columns(rows: list[LeaderboardRow], params: list[str]) -> list[str]:
    metric = rows[0].metric if rows else "value"
    tests = list(dict.fromkeys(k for r in rows for k in (r.evaluation or {})))
    return ["rank", "trial", "status", *params, metric, "epoch", "epochs",
            *(f"test_{k}" for k in tests), "hostname", "ip", "run_dir", "note"]


def _cells(row: LeaderboardRow, params: list[str], columns: list[str], raw: bool) -> list:
    def number(v):
        if v is None:
            return ""
        return v if raw else f"{v:.4f}"

    tests = [number((row.evaluation or {}).get(c[len("test_"):]))
             for c in columns if c.startswith("test_")]
    values = [row.params.get(p) for p in params]
    return ["" if row.rank is None else row.rank, row.trial_id, row.status,
            *(values if raw else [describe(v) for v in values]), number(row.value),
            "" if row.epoch is None else row.epoch, row.epochs, *tests,
            row.hostname or "", row.ip or "", row.run_dir, row.error or ""]


def to_csv(rows: list[LeaderboardRow], params: list[str]) -> str:
    """The leaderboard as CSV: one row per trial, full precision, parameters as written.

    Args:
        rows: from ``leaderboard``.
        params: the parameter columns (the sweep's varying parameters).
    """
    columns = _columns(rows, params)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_cells(row, params, columns, raw=True))
    return out.getvalue()


def to_markdown(rows: list[LeaderboardRow], params: list[str], title: str) -> str:
    """The leaderboard as a Markdown table under a heading (numbers to four decimals)."""
    columns = _columns(rows, params)

    def escape(cell) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")

    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if c in ("rank", "epoch", "epochs") else "---"
                            for c in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(escape(c) for c in _cells(row, params, columns, False))
                     + " |")
    return "\n".join(lines) + "\n"
