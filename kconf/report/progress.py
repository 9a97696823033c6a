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


class ProgressBar(Callback):
    """Shows per-batch progress with live loss and metrics, and each epoch's results."""

    def __init__(self, console: Console | None = None):
        super().__init__()
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.task = None
        self.started = 0.0

    def _label(self, epoch: int) -> str:
        return f"Epoch {epoch + 1}/{self.params['epochs']}"

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[logs]}"),
                console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self._label(epoch), total=self.params["steps"],
                                               logs="")

    def on_train_batch_end(self, batch, logs=None):
        if self.progress is not None:
            self.progress.update(self.task, advance=1, logs=format_logs(logs or {}))

    def on_epoch_end(self, epoch, logs=None):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        seconds = time.perf_counter() - self.started
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
