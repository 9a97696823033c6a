"""Callbacks as Keras has them: hooks the fit loop calls; ``History`` is always attached."""
from __future__ import annotations

import csv
import io
import os

from kconf.train.direction import higher_is_better
from kconf.files import write_atomic


class Callback:
    """Base class: override what you need. ``model`` and ``params`` are set by ``fit``."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


class CallbackList(Callback):
    """Fans every hook out to a list of callbacks, in order."""

    def __init__(self, callbacks, model, params):
        super().__init__()
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    def _each(name):
        def hook(self, *args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, name)(*args, **kwargs)
        hook.__name__ = name
        return hook

    on_train_begin = _each("on_train_begin")
    on_train_end = _each("on_train_end")
    on_epoch_begin = _each("on_epoch_begin")
    on_epoch_end = _each("on_epoch_end")
    on_train_batch_begin = _each("on_train_batch_begin")
    on_train_batch_end = _each("on_train_batch_end")
    del _each


class History(Callback):
    """Records each epoch's logs: ``history.history['loss']`` is a list, one value per epoch."""

    def __init__(self):
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def mode_op(monitor: str, mode: str):
    """'min' or 'max' for a monitored quantity; 'auto' reads the names of metrics that are
    better when larger (accuracy, auc, precision, f1_score, r2_score ...: ``kconf.engine.
    metric_classes.higher_is_better``) as max, anything else (losses, errors) as min."""
    if mode == "auto":
        mode = "max" if higher_is_better(monitor) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


class _Monitoring(Callback):
    """Shared by callbacks that watch one logged quantity; their state survives a resume."""

    state_keys: tuple[str, ...] = ()

    def get_state(self) -> dict:
        return {k: getattr(self, k) for k in self.state_keys}

    def set_state(self, state: dict) -> None:
        for k in self.state_keys:
            if k in state:
                setattr(self, k, state[k])

    def _current(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, which is not "
                             f"logged; logged: {sorted(logs or {})}")
        return float(value)


class EarlyStopping(_Monitoring):
    """Keras's EarlyStopping: stop when ``monitor`` has not improved by more than
    ``min_delta`` for ``patience`` epochs; optionally restore the best epoch's weights."""

    state_keys = ("wait", "best", "best_epoch", "stopped_epoch", "best_weights")

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__()
        self.monitor = monitor
        self.mode = mode_op(monitor, mode)
        self.min_delta = abs(min_delta) if self.mode == "max" else -abs(min_delta)
        self.patience = patience
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait, self.best, self.best_epoch, self.stopped_epoch = 0, None, 0, 0
        self.best_weights = None

    def _improves(self, value: float, reference) -> bool:
        if reference is None:
            return True
        shifted = value - self.min_delta
        return shifted > reference if self.mode == "max" else shifted < reference

    def on_train_begin(self, logs=None):
        if self.model is not None and getattr(self.model, "resumed", False):
            return  # state came from the checkpoint
        self.wait, self.best, self.best_epoch, self.stopped_epoch = 0, None, 0, 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        current = self._current(logs)
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(_Monitoring):
    """Keras's ReduceLROnPlateau: multiply the learning rate by ``factor`` when ``monitor``
    stops improving for ``patience`` epochs, then wait ``cooldown`` epochs."""

    state_keys = ("wait", "best", "cooldown_counter")

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0):
        super().__init__()
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0")
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.mode = mode_op(monitor, mode)
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.wait, self.best, self.cooldown_counter = 0, None, 0

    def _improves(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        if self.model is not None and getattr(self.model, "resumed", False):
            return
        self.wait, self.best, self.cooldown_counter = 0, None, 0

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if callable(optimizer.learning_rate):
            raise ValueError("ReduceLROnPlateau cannot change a learning rate that follows a "
                             "schedule; use one or the other")
        if logs is not None:
            logs["learning_rate"] = float(optimizer.learning_rate)
        current = self._current(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(optimizer.learning_rate)
                if old > self.min_lr:
                    optimizer.learning_rate = max(old * self.factor, self.min_lr)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0



class CSVLogger(Callback):
    """Keras's CSVLogger: one row per epoch (``epoch`` from 0, then the logs) in ``filename``,
    written out whole after every epoch so the file is always complete."""

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = filename
        self.separator = separator
        self.append = append
        self.rows: list[dict] = []

    def on_train_begin(self, logs=None):
        self.rows = []
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                self.rows = list(csv.DictReader(f, delimiter=self.separator))

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **(logs or {})})
        columns: list[str] = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, delimiter=self.separator,
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(self.filename, out.getvalue())
