"""Learning curves of several runs overlaid: ``kconf plot RUN RUN...``.

One PNG, one panel per quantity (``loss`` first, as ``kconf plot`` of one run orders them);
each run has one colour, its training curve solid and its validation curve dashed, and the
legend names the runs. Drawn through the Agg canvas, as ``kconf.report.plot``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from kconf.report.plot import (METRICS_FILE, PlotError, _matplotlib, _run_title,
                               learning_curves, read_metrics)

#: The file ``plot_runs`` writes into its output folder.
OVERLAY_FILE = "runs.png"


def plot_runs(run_dirs: Sequence[Path | str], out_dir: Path | str | None = None) -> Path:
    """Write one PNG overlaying the learning curves of several runs.

    Args:
        run_dirs: run folders, each with a ``metrics.jsonl``.
        out_dir: the folder of ``runs.png`` (default: the current folder), created if needed.

    Returns:
        The file written.

    Raises:
        PlotError: a folder that is not a run or has no epochs yet (each named), or
            matplotlib missing.
    """
    runs = []
    for run_dir in map(Path, run_dirs):
        curves = learning_curves(read_metrics(run_dir))
        if not curves:
            raise PlotError(f"{run_dir / METRICS_FILE} holds no epochs yet: nothing to plot")
        runs.append((_run_title(run_dir), curves))
    labels = [title for title, _ in runs]
    if len(set(labels)) < len(labels):
        labels = [str(p) for p in run_dirs]
    quantities = list(dict.fromkeys(q for _, curves in runs for q in curves))
    Figure, FigureCanvasAgg, MaxNLocator = _matplotlib()
    columns = min(2, len(quantities))
    rows = math.ceil(len(quantities) / columns)
    fig = Figure(figsize=(6.4 * columns, 4.0 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    colors = [f"C{i % 10}" for i in range(len(runs))]
    for index, quantity in enumerate(quantities):
        ax = fig.add_subplot(rows, columns, index + 1)
        for label, (_, curves), color in zip(labels, runs, colors):
            series = curves.get(quantity, {})
            for part, style in (("train", "-"), ("validation", "--")):
                if part in series:
                    epochs, values = series[part]
                    ax.plot(epochs, values, style, color=color,
                            marker="o" if len(epochs) <= 30 else None, markersize=3,
                            label=label if part == "train" else f"{label} (validation)")
        ax.set_xlabel("epoch")
        ax.set_ylabel(quantity)
        ax.set_title(quantity)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    out_dir = Path(out_dir) if out_dir is not None else Path(".")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / OVERLAY_FILE
    fig.savefig(path, format="png")
    return path
