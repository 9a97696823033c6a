"""Learning curves of a run folder as PNG files: one figure per quantity, train vs validation.

The run's ``metrics.jsonl`` (one JSON object per epoch, see ``kconf.train.runs``) is the only
input, so any run can be plotted, also one that is still going or was interrupted. Each
quantity (``loss``, ``accuracy``, ``main_output_loss``, ...) gets one figure with its training
curve and, when the run had validation data, its ``val_`` curve on the same axes.

matplotlib is an optional extra (``pip install -e '.[plot]'``): it is imported only when a
figure is drawn, and drawn through the Agg canvas directly — never through ``pyplot``, so
plotting leaves no global backend state behind (e.g. in a notebook that imports kconf).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from kconf.errors import KconfError

METRICS_FILE = "metrics.jsonl"
VAL_PREFIX = "val_"
INSTALL_HINT = "kconf plot needs matplotlib: pip install -e '.[plot]'"


class PlotError(KconfError):
    """A run folder that cannot be plotted (no metrics yet, unreadable file, no matplotlib)."""


class MissingMatplotlib(PlotError):
    """matplotlib, an optional extra, is not installed."""


def read_metrics(run_dir: Path | str) -> list[dict]:
    """The per-epoch rows of a run's ``metrics.jsonl``, in epoch order.

    A resumed run may have logged an epoch twice (once before the interruption, once after
    resuming from an earlier checkpoint): the last row logged for an epoch wins. A last line
    cut short (a run killed while writing it) is ignored.

    Args:
        run_dir: a run folder (``runs/<name>/<time>/``).

    Returns:
        One dict per epoch, each with ``epoch`` (from 1) and the logged values.

    Raises:
        PlotError: no ``metrics.jsonl`` in the folder, or a line in it that is not JSON.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        what = "is not a folder" if not Path(run_dir).is_dir() else f"has no {METRICS_FILE}"
        raise PlotError(f"{run_dir} {what}: give a run folder, e.g. runs/<name>/<time>/")
    try:
        lines = path.read_text().splitlines()
    except (OSError, ValueError) as exc:  # unreadable, or not UTF-8 (a damaged file)
        raise PlotError(f"{path}: cannot be read: {exc}") from None
    by_epoch: dict[int, dict] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # cut short by a kill mid-write
                break
            raise PlotError(f"{path}:{number}: not a JSON object: {line[:60]!r}") from None
        if not isinstance(row, dict):
            raise PlotError(f"{path}:{number}: not a JSON object: {line[:60]!r}")
        epoch = row.get("epoch", len(by_epoch) + 1)
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            raise PlotError(f"{path}:{number}: 'epoch' is not a whole number: {line[:60]!r}")
        by_epoch[epoch] = {**row, "epoch": epoch}
    return [by_epoch[e] for e in sorted(by_epoch)]


def learning_curves(rows: list[dict]) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """Group per-epoch rows into curves: quantity -> {"train": ..., "validation": ...}.

    Args:
        rows: per-epoch dicts as ``read_metrics`` returns them.

    Returns:
        For each quantity (``loss`` first, then the others in the order they were logged),
        a dict with a ``train`` and/or a ``validation`` curve, each ``(epochs, values)``.
        Values that are not finite numbers (a NaN loss) are left out of their curve.
    """
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k != "epoch" and k not in keys]
    names: list[str] = []
    for key in keys:
        name = key.removeprefix(VAL_PREFIX)
        if name not in names:
            names.append(name)
    if "loss" in names:
        names.remove("loss")
        names.insert(0, "loss")
    curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for name in names:
        for label, key in (("train", name), ("validation", VAL_PREFIX + name)):
            points = [(row["epoch"], float(row[key])) for row in rows
                      if _is_number(row.get(key)) and math.isfinite(float(row[key]))]
            if points:
                epochs, values = zip(*points)
                curves.setdefault(name, {})[label] = (list(epochs), list(values))
    return curves


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plot_file_name(quantity: str) -> str:
    """The PNG file name of a quantity.

    Args:
        quantity: ``loss``, ``accuracy``, ``main_output_loss``, a custom metric's name.

    Returns:
        ``<quantity>.png``, with characters a file name should not hold replaced by ``_``.
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "_", quantity) + ".png"


def _matplotlib():
    """matplotlib's Figure, Agg canvas and integer tick locator, imported only when needed.

    ``matplotlib`` itself is imported first, so a missing (or blocked) package is detected even
    when one of its submodules is already in ``sys.modules``.
    """
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise MissingMatplotlib(INSTALL_HINT) from exc
    return Figure, FigureCanvasAgg, MaxNLocator


def plot_run(run_dir: Path | str, out_dir: Path | str | None = None) -> list[Path]:
    """Write one PNG per quantity of a run: its train and validation curves per epoch.

    Args:
        run_dir: a run folder with a ``metrics.jsonl``.
        out_dir: where the PNG files go; default ``<run_dir>/plots/``, created if needed.

    Returns:
        The files written (``loss.png``, ``accuracy.png``, ...), loss first.

    Raises:
        MissingMatplotlib: matplotlib is not installed.
        PlotError: no metrics to plot (missing or empty ``metrics.jsonl``).
    """
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    curves = learning_curves(rows)
    if not curves:
        raise PlotError(f"{run_dir / METRICS_FILE} holds no epochs yet: nothing to plot")
    Figure, FigureCanvasAgg, MaxNLocator = _matplotlib()
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    title = _run_title(run_dir)
    written = []
    for quantity, series in curves.items():
        fig = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for label, style in (("train", "-"), ("validation", "--")):
            if label in series:
                epochs, values = series[label]
                ax.plot(epochs, values, style, marker="o" if len(epochs) <= 30 else None,
                        markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(quantity)
        ax.set_title(f"{quantity} — {title}" if title else quantity)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
        path = out_dir / plot_file_name(quantity)
        fig.savefig(path, format="png")
        written.append(path)
    return written


def _run_title(run_dir: Path) -> str:
    """``<name>/<time>`` for a folder laid out as ``runs/<name>/<time>/``."""
    resolved = run_dir.resolve()
    return f"{resolved.parent.name}/{resolved.name}" if resolved.parent.name else resolved.name
