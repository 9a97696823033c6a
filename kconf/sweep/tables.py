"""Tables of a sweep: its trials live, its leaderboard, its plan, the list of sweeps.

Pure functions of data returning rich renderables; the CLI decides where they go.
"""
from __future__ import annotations

from typing import Sequence

from rich.table import Table

from kconf.report.results import STATUS_STYLE
from kconf.sweep.load import describe

_STYLE = {**STATUS_STYLE, "stopped": "magenta", "pending": "dim"}


def _status(status: str) -> str:
    style = _STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _short(path: str) -> str:
    """A parameter's column title: the last two parts of its path (``SGD.lr``)."""
    return ".".join(path.split(".")[-2:])


def trials_table(records: Sequence, varying: Sequence[str], metric: str,
                 title: str | None = None) -> Table:
    """The trials as they run: values, epochs done of planned, the metric's last value,
    status (and the node, when trials ran on more than one).

    Args:
        records: ``TrialRecord`` items, in trial order.
        varying: the parameter columns.
        metric: the sweep's metric.
        title: a caption.
    """
    hosts = {r.node.get("hostname") for r in records if r.node.get("hostname")}
    table = Table(title=title, title_justify="left")
    table.add_column("Trial")
    for path in varying:
        table.add_column(_short(path), justify="right")
    table.add_column("Epoch", justify="right")
    table.add_column(metric, justify="right")
    table.add_column("Status")
    if len(hosts) > 1:
        table.add_column("Node")
    for rec in records:
        last = rec.history[-1].get(metric) if rec.history else None
        epochs = f"{len(rec.history)}/{rec.planned}" if rec.planned else str(len(rec.history))
        cells = [rec.trial_id, *(describe(rec.params.get(p)) for p in varying), epochs,
                 _number(last if isinstance(last, (int, float)) else None), _status(rec.status)]
        if len(hosts) > 1:
            cells.append(rec.node.get("hostname") or "-")
        table.add_row(*cells)
    return table


def leaderboard_table(rows: Sequence, varying: Sequence[str], title: str | None = None) -> Table:
    """The leaderboard: rank, trial, values, the metric (and its epoch), the test split's
    first two numbers, status.

    Args:
        rows: ``LeaderboardRow`` items, best first.
        varying: the parameter columns.
        title: a caption.
    """
    tests = list(dict.fromkeys(k for r in rows for k in (r.evaluation or {})))[:2]
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Trial")
    for path in varying:
        table.add_column(_short(path), justify="right")
    metric = rows[0].metric if rows else "metric"
    table.add_column(metric, justify="right")
    table.add_column("Epoch", justify="right")
    for name in tests:
        table.add_column(f"test {name}", justify="right")
    table.add_column("Status")
    for row in rows:
        table.add_row("-" if row.rank is None else str(row.rank), row.trial_id,
                      *(describe(row.params.get(p)) for p in varying), _number(row.value),
                      "-" if row.epoch is None else str(row.epoch),
                      *(_number((row.evaluation or {}).get(n)) for n in tests),
                      _status(row.status))
    return table


def plan_table(plan, title: str | None = None) -> Table:
    """The trials a sweep would run: id, every varying value, planned epochs."""
    table = Table(title=title, title_justify="left")
    table.add_column("Trial")
    for path in plan.varying:
        table.add_column(path, justify="right")
    table.add_column("Epochs", justify="right")
    for planned in plan.trials:
        table.add_row(planned.trial_id,
                      *(describe(planned.trial.params[p]) for p in plan.varying),
                      str(planned.epochs) if planned.epochs else "-")
    return table


def sweeps_table(sweeps: Sequence, root: str | None = None) -> Table:
    """The sweep folders: time, status, trials by status, and the best trial.

    Args:
        sweeps: ``SweepInfo`` items.
        root: the folder they were found in, for the title.
    """
    table = Table(title=f"Sweeps in {root}" if root else None, title_justify="left")
    for name, justify in (("Sweep", "left"), ("Started", "left"), ("Status", "left"),
                          ("Trials", "left"), ("Metric", "left"), ("Best", "left"),
                          ("Value", "right"), ("Values", "left")):
        table.add_column(name, justify=justify)
    for info in sweeps:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(info.counts.items()))
        best = info.best
        values = "" if best is None else ", ".join(
            f"{_short(p)}={describe(best.params.get(p))}" for p in info.varying)
        metric = f"{info.metric} ({info.mode})" if info.metric else "-"
        table.add_row(f"{info.name}/{info.path.name}", info.started or "-",
                      _status(info.status), f"{info.trials}: {counts}" if counts else "0",
                      metric, "-" if best is None else best.trial_id,
                      "-" if best is None else _number(best.value), values or "-")
    return table


def progress_lines(seen: dict[str, str], records: Sequence, varying: Sequence[str],
                   metric: str) -> list[str]:
    """Plain lines for the trials whose status changed (for output that is not a terminal).

    Args:
        seen: trial id -> the status last shown; updated in place.
        records: ``TrialRecord`` items.
        varying: the parameters shown.
        metric: the sweep's metric.

    Returns:
        One line per change: ``trial_002 running (lr=0.01, batch_size=32)``, ``trial_002
        finished after 3 epochs: val_loss 0.4321``, ``trial_003 failed: ...``.
    """
    lines = []
    for rec in records:
        if seen.get(rec.trial_id) == rec.status:
            continue
        seen[rec.trial_id] = rec.status
        if rec.status == "running":
            values = ", ".join(f"{_short(k)}={describe(rec.params.get(k))}" for k in varying)
            start = f" from epoch {rec.initial_epoch + 1}" if rec.initial_epoch else ""
            lines.append(f"{rec.trial_id} running{start} ({values})")
        elif rec.status in ("finished", "stopped"):
            last = rec.history[-1].get(metric) if rec.history else None
            value = f": {metric} {last:.4f}" if isinstance(last, (int, float)) else ""
            why = f" ({rec.stop_reason})" if rec.stop_reason else ""
            epochs = len(rec.history)
            lines.append(f"{rec.trial_id} {rec.status} after {epochs} "
                         f"epoch{'' if epochs == 1 else 's'}{value}{why}")
        elif rec.status == "failed":
            lines.append(f"{rec.trial_id} failed: {rec.error}")
        else:
            lines.append(f"{rec.trial_id} {rec.status}")
    return lines
