"""Tables of results: an evaluation's loss and metrics, and the list of run folders.

Pure functions of data returning rich renderables; the CLI decides where they go.
"""
from __future__ import annotations

from typing import Sequence

from rich.table import Table

STATUS_STYLE = {"finished": "green", "running": "cyan", "interrupted": "yellow",
                "failed": "red"}


def metrics_table(logs: dict[str, float], title: str | None = None) -> Table:
    """Loss and metrics, one row each, in the order Keras logs them.

    Args:
        logs: ``{"loss": 0.69, "accuracy": 0.52}``.
        title: a caption above the table.

    Returns:
        A rich ``Table``.
    """
    table = Table(title=title, title_justify="left")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    for name, value in logs.items():
        table.add_row(name, f"{value:.4f}")
    return table


def runs_table(runs: Sequence, root: str | None = None) -> Table:
    """The run folders: name, time, status, epochs, and the main loss and accuracy-like metric
    (best and final values).

    Args:
        runs: ``kconf.train.listing.RunInfo`` items.
        root: the folder they were found in, for the title.

    Returns:
        A rich ``Table``.
    """
    table = Table(title=f"Runs in {root}" if root else None, title_justify="left")
    for name, justify in (("Run", "left"), ("Started", "left"), ("Status", "left"),
                          ("Epochs", "right"), ("Metric", "left"), ("Best", "right"),
                          ("Final", "right"), ("Accuracy", "left"), ("Best", "right"),
                          ("Final", "right")):
        table.add_column(name, justify=justify)
    for run in runs:
        epochs = f"{run.epochs}/{run.planned}" if run.planned else str(run.epochs)
        status = run.status
        style = STATUS_STYLE.get(status)
        table.add_row(f"{run.name}/{run.path.name}", run.started or "-",
                      f"[{style}]{status}[/]" if style else status, epochs,
                      *_metric_cells(run.main), *_metric_cells(run.accuracy))
    reasons = [f"{run.name}/{run.path.name} failed: {_first_line(run.error)}" for run in runs
               if run.status == "failed" and getattr(run, "error", None)]
    if reasons:  # why each failed run stopped, under the table
        from rich.markup import escape

        table.caption = "\n".join(escape(r) for r in reasons)
        table.caption_justify = "left"
    return table


def _first_line(text: str, limit: int = 160) -> str:
    """A reason's first line, shortened to ``limit`` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _metric_cells(summary) -> tuple[str, str, str]:
    if summary is None:
        return ("-", "-", "-")
    return (summary.name, f"{summary.best:.4f}", f"{summary.final:.4f}")
