"""Training progress: a live rich bar per epoch on a terminal, one plain line per epoch
elsewhere, or one JSON object per epoch for machines (``JsonLines``)."""
from __future__ import annotations

import json
import math
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kconf.train.callbacks import Callback


def format_logs(logs: dict[str, float]) -> str:
    """``loss 2.2893  accuracy 0.1300`` — names as Keras logs them."""
    return "  ".join(f"{k} {v:.4f}" for k, v in logs.items())


def _clock(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_text(elapsed: float, done_steps: int, steps: int, epochs_left: int,
             epoch_seconds: list[float]) -> str:
    """The time left in the epoch and in the run: ``eta 0:04 (run 1:12)``.

    Args:
        elapsed: seconds since the epoch began.
        done_steps: steps of this epoch finished.
        steps: steps per epoch.
        epochs_left: epochs after this one.
        epoch_seconds: the durations of the epochs finished so far (their mean times the
            epochs left is the run's remainder; without any, this epoch's pace).

    Returns:
        The text; empty before the first step ends.
    """
    if done_steps <= 0:
        return ""
    epoch_left = elapsed / done_steps * max(steps - done_steps, 0)
    per_epoch = (sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds
                 else elapsed / done_steps * steps)
    run_left = epoch_left + per_epoch * max(epochs_left, 0)
    return f"eta {_clock(epoch_left)} (run {_clock(run_left)})"


class ProgressBar(Callback):
    """Shows per-batch progress with live loss and metrics, and each epoch's results."""

    def __init__(self, console: Console | None = None):
        super().__init__()
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.task = None
        self.started = 0.0
        self.epoch = 0
        self.epoch_seconds: list[float] = []

    def _label(self, epoch: int) -> str:
        return f"Epoch {epoch + 1}/{self.params['epochs']}"

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.epoch = epoch
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                TextColumn("{task.fields[logs]}"), console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self._label(epoch), total=self.params["steps"],
                                               logs="", eta="")

    def on_train_batch_end(self, batch, logs=None):
        if self.progress is not None:
            eta = eta_text(time.perf_counter() - self.started, batch + 1, self.params["steps"],
                           self.params["epochs"] - self.epoch - 1, self.epoch_seconds)
            self.progress.update(self.task, advance=1, logs=format_logs(logs or {}), eta=eta)

    def on_epoch_end(self, epoch, logs=None):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        seconds = time.perf_counter() - self.started
        self.epoch_seconds.append(seconds)
        steps = self.params["steps"]
        self.console.print(f"{self._label(epoch)}  {steps}/{steps}  {seconds:.2f}s  "
                           f"{format_logs(logs or {})}", highlight=False)

    def on_train_end(self, logs=None):
        self.close()

    def close(self) -> None:
        """Stop the live display, if one is showing (training stopped mid-epoch: an error
        or Ctrl-C skips ``on_train_end``)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class JsonLines(Callback):
    """Writes one JSON object per epoch, and nothing else, to a stream:
    ``{"epoch": 1, "epochs": 10, "steps": 4, "seconds": 0.51, "loss": 2.29, ...}``.

    Args:
        stream: where the lines go (the CLI passes stdout); flushed after every line.
    """

    def __init__(self, stream: TextIO):
        super().__init__()
        self.stream = stream
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1, "epochs": self.params.get("epochs"),
                  "steps": self.params.get("steps"),
                  "seconds": round(time.perf_counter() - self.started, 6)}
        record.update({k: _json_number(v) for k, v in (logs or {}).items()})
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


def _json_number(value) -> float | str:
    """A float, or the strings 'nan' / 'inf' / '-inf' (JSON has no such numbers)."""
    value = float(value)
    return value if math.isfinite(value) else str(value)
