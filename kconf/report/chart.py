"""A small terminal chart of a quantity per epoch (the loss, at the end of ``kconf train``).

The curves are drawn with braille characters: each character cell holds a 2×4 grid of dots,
so a chart of 56×8 cells has 112×32 points of resolution. The training curve and, when there
is one, the validation curve share the axes; the y axis is labelled with the chart's maximum
and minimum, the x axis with the first and last epoch, and a legend gives each curve's best
(lowest) value and its epoch (``loss_chart(rows, width=24, height=4)``)::

    loss per epoch
     1.1000 ┤⠭⣒⠤⢄⣀
            │  ⠉⠒⠤⢍⡑⠢⠤⠤⣀⣀⣀⣀      ⣀⣀⣀⣀
            │      ⠈⠑⠒⠤⠤⣀⣀ ⠉⠉⠉⠉⠉⠉
     0.1250 ┤             ⠉⠉⠒⠒⠒⠤⠤⠤⢄⣀⣀
            └────────────────────────
             1        epoch         4
     ⣀ loss  min 0.1250 (epoch 4)   ⣀ val_loss  min 0.6000 (epoch 3)

The chart is a pure function of the per-epoch rows; the CLI decides where it is printed.
"""
from __future__ import annotations

import math
from pathlib import Path

from rich.text import Text

from kconf.errors import KconfError
from kconf.report.plot import VAL_PREFIX, read_metrics

TRAIN_STYLE = "cyan"
VAL_STYLE = "magenta"

# Bit of each dot of a braille cell, by (column, row) within the cell's 2×4 grid.
_BRAILLE_BITS = {(0, 0): 0x01, (0, 1): 0x02, (0, 2): 0x04, (1, 0): 0x08,
                 (1, 1): 0x10, (1, 2): 0x20, (0, 3): 0x40, (1, 3): 0x80}
_BRAILLE_BASE = 0x2800


def loss_chart(rows: list[dict], key: str = "loss", width: int = 56,
               height: int = 8) -> Text | None:
    """A braille line chart of ``key`` (and ``val_<key>``, when logged) per epoch.

    Args:
        rows: per-epoch dicts with ``epoch`` and the logged values (``metrics.jsonl`` rows).
        key: the quantity to draw; ``val_<key>`` is drawn beside it when present.
        width: plot area width in character cells (labels come on top of it).
        height: plot area height in character rows.

    Returns:
        A rich ``Text`` (its ``.plain`` is the chart without colour), or None when fewer than
        two epochs have a finite value of ``key``: one point is no curve.
    """
    series = []
    for name, style in ((key, TRAIN_STYLE), (VAL_PREFIX + key, VAL_STYLE)):
        points = [(int(row["epoch"]), float(row[name])) for row in rows
                  if isinstance(row.get(name), (int, float)) and math.isfinite(row[name])]
        if points:
            series.append((name, style, points))
    if not series or len(series[0][2]) < 2:
        return None
    width, height = max(width, 4), max(height, 2)
    epochs = [e for _, _, points in series for e, _ in points]
    values = [v for _, _, points in series for _, v in points]
    first, last = min(epochs), max(epochs)
    low, high = _value_range(min(values), max(values))

    cols, dot_rows = 2 * width, 4 * height
    masks = [[[0] * width for _ in range(height)] for _ in series]
    for s, (_, _, points) in enumerate(series):
        dots = [(round((e - first) / max(last - first, 1) * (cols - 1)),
                 round((high - v) / (high - low) * (dot_rows - 1))) for e, v in points]
        for x, y in _polyline(dots):
            masks[s][y // 4][x // 2] |= _BRAILLE_BITS[(x % 2, y % 4)]

    top, bottom = _fmt(high), _fmt(low)
    label_width = max(len(top), len(bottom))
    text = Text()
    text.append(f"{key} per epoch\n", style="bold")
    for r in range(height):
        label = top if r == 0 else bottom if r == height - 1 else ""
        tick = "┤" if label else "│"
        text.append(f" {label:>{label_width}} {tick}", style="dim")
        used = [c for c in range(width) if any(m[r][c] for m in masks)]
        for c in range(used[-1] + 1 if used else 0):
            cell = [m[r][c] for m in masks]
            combined = 0
            for mask in cell:
                combined |= mask
            if not combined:
                text.append(" ")
                continue
            # The validation curve is drawn over the training one where they meet.
            style = next(st for (_, st, _), mask in zip(reversed(series), reversed(cell))
                         if mask)
            text.append(chr(_BRAILLE_BASE + combined), style=style)
        text.append("\n")
    pad = " " * (label_width + 2)
    text.append(f"{pad}└{'─' * width}\n", style="dim")
    left, right = str(first), str(last)
    middle = "epoch".center(max(width - len(left) - len(right), 0))
    text.append(f"{pad} {left}{middle}{right}\n", style="dim")
    legend = []
    for name, style, points in series:
        best_epoch, best = min(points, key=lambda p: p[1])
        legend.append((name, style, f"min {_fmt(best)} (epoch {best_epoch})"))
    text.append(" ")
    for i, (name, style, best) in enumerate(legend):
        text.append(("   " if i else "") + "⣀ ", style=style)
        text.append(f"{name}  {best}")
    return text


def run_loss_chart(run_dir: Path | str, width: int = 56, height: int = 8) -> Text | None:
    """The loss chart of a run folder, read from its ``metrics.jsonl``.

    Args:
        run_dir: a run folder.
        width: plot area width in character cells.
        height: plot area height in character rows.

    Returns:
        The chart, or None when the run has fewer than two epochs or no readable metrics.
    """
    try:
        rows = read_metrics(run_dir)
    except KconfError:
        return None
    return loss_chart(rows, width=width, height=height)


def _value_range(low: float, high: float) -> tuple[float, float]:
    """The y range: the data's, widened around a flat curve so it has a middle."""
    if high > low:
        return low, high
    pad = abs(high) * 0.05 or 0.5
    return low - pad, high + pad


def _polyline(dots: list[tuple[int, int]]):
    """Every dot on the straight segments joining consecutive points."""
    yield dots[0]
    for (x0, y0), (x1, y1) in zip(dots, dots[1:]):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(1, steps + 1):
            yield (x0 + round((x1 - x0) * i / steps), y0 + round((y1 - y0) * i / steps))


def _fmt(value: float) -> str:
    """Four decimals, as training logs show values; significant digits for tiny or huge ones."""
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.4g}"
    return f"{value:.4f}"
