"""Callbacks against scripted metric sequences, with Keras's semantics."""
from __future__ import annotations

import numpy as np
import pytest

from kconf.engine.schedules import (CosineDecay, ExponentialDecay, InverseTimeDecay,
                                    PiecewiseConstantDecay)
from kconf.train.callbacks import EarlyStopping, ReduceLROnPlateau


class FakeOptimizer:
    def __init__(self, lr):
        self.learning_rate = lr


class FakeModel:
    """Weights are the epoch number, so 'restore best' is visible."""

    def __init__(self):
        self.stop_training = False
        self.optimizer = FakeOptimizer(1.0)
        self.weights = [np.zeros(1)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, ws):
        self.weights = [w.copy() for w in ws]


def drive(callback, values, key="val_loss"):
    """Run the callback over a scripted sequence; returns the epoch training stopped after."""
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.weights = [np.array([float(epoch)])]
        callback.on_epoch_end(epoch, {key: value})
        if model.stop_training:
            return epoch, model
    return None, model


def test_early_stopping_patience_and_restore_best():
    stopped, model = drive(EarlyStopping(patience=2, restore_best_weights=True),
                           [1.0, 0.9, 0.95, 0.96, 0.97, 0.1])
    assert stopped == 3
    assert model.weights[0][0] == 1.0  # the best epoch's weights


def test_early_stopping_min_delta_and_max_mode():
    # improvements smaller than min_delta do not count
    stopped, _ = drive(EarlyStopping(monitor="val_accuracy", min_delta=0.05, patience=1),
                       [0.5, 0.52, 0.53, 0.9], key="val_accuracy")
    assert stopped == 1
    never, _ = drive(EarlyStopping(monitor="val_accuracy", patience=1),
                     [0.5, 0.6, 0.7, 0.8], key="val_accuracy")
    assert never is None


def test_early_stopping_baseline():
    # Improving but never beating the baseline keeps `wait` counting, so the first epoch
    # without improvement stops training (as in Keras); without a baseline it would not.
    sequence = [0.9, 0.8, 0.7, 0.75]
    assert drive(EarlyStopping(patience=2, baseline=0.5), sequence)[0] == 3
    assert drive(EarlyStopping(patience=2), sequence)[0] is None


def test_early_stopping_needs_a_logged_metric():
    with pytest.raises(ValueError, match="not logged"):
        drive(EarlyStopping(monitor="val_auc"), [1.0])


def test_early_stopping_state_round_trip():
    first = EarlyStopping(patience=3)
    drive(first, [1.0, 1.1])
    second = EarlyStopping(patience=3)
    second.set_state(first.get_state())
    assert second.wait == 1 and second.best == 1.0


def test_reduce_lr_on_plateau_with_cooldown():
    cb = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=1, min_delta=0.0)
    model = FakeModel()
    cb.set_model(model)
    cb.on_train_begin()
    lrs = []
    for epoch, value in enumerate([1.0, 1.0, 1.0, 0.5, 0.5, 0.5]):
        logs = {"val_loss": value}
        cb.on_epoch_end(epoch, logs)
        lrs.append(model.optimizer.learning_rate)
        assert "learning_rate" in logs
    assert lrs == [1.0, 0.5, 0.25, 0.25, 0.125, 0.0625]


def test_reduce_lr_respects_min_lr():
    cb = ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05)
    model = FakeModel()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch in range(5):
        cb.on_epoch_end(epoch, {"val_loss": 1.0})
    assert model.optimizer.learning_rate == 0.05


def test_schedules_follow_keras_formulas():
    assert ExponentialDecay(0.1, 10, 0.5)(5) == pytest.approx(0.1 * 0.5 ** 0.5)
    assert ExponentialDecay(0.1, 10, 0.5, staircase=True)(15) == pytest.approx(0.05)
    assert InverseTimeDecay(0.1, 1, 0.5)(2) == pytest.approx(0.05)
    pw = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [pw(s) for s in (0, 10, 11, 20, 21)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    cos = CosineDecay(1.0, 100, alpha=0.1)
    assert cos(0) == pytest.approx(1.0) and cos(100) == pytest.approx(0.1)
    assert cos(50) == pytest.approx(0.55) and cos(500) == pytest.approx(0.1)
    warm = CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=5)
    assert warm(0) == 0.0 and warm(5) == pytest.approx(1.0) and warm(15) == pytest.approx(0.0)
    assert warm(2) == pytest.approx(0.4)


def test_a_schedule_in_the_config_drives_the_optimizer():
    import kconf
    from kconf.engine.schedules import ExponentialDecay

    config = {
        "model": {"sequential": [{"Dense": {"units": 1, "input_dim": 2}}]},
        "compile": {"optimizer": {"SGD": {"learning_rate": {"ExponentialDecay": {
            "initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5}}}},
            "loss": "mse"},
        "data": {"train": {"random": {"samples": 8, "x": [2], "y": [1]}}},
    }
    model = kconf.build_model(config)
    assert isinstance(model.optimizer.learning_rate, ExponentialDecay)
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    rates = []
    for _ in range(3):
        rates.append(model.optimizer.current_learning_rate())
        model.train_on_batch(x, y)
    assert rates == pytest.approx([0.1, 0.1 * 0.5 ** 0.5, 0.05])
    with pytest.raises(ValueError, match="schedule"):
        cb = ReduceLROnPlateau(patience=0)
        cb.set_model(model)
        cb.on_train_begin()
        cb.on_epoch_end(0, {"val_loss": 1.0})


def _config_with(callbacks, tmp_path):
    import yaml
    data = {
        "name": "cb",
        "model": {"sequential": [{"Dense": {"units": 2, "activation": "softmax",
                                            "input_dim": 3}}]},
        "compile": {"optimizer": "adam", "loss": "categorical_crossentropy",
                    "metrics": ["accuracy"]},
        "data": {"train": {"random": {"samples": 32, "x": [3], "classes": 2, "one_hot": True}}},
        "fit": {"epochs": 3, "batch_size": 8, "validation_split": 0.25, "callbacks": callbacks},
    }
    path = tmp_path / "cb.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_csv_logger_and_early_stopping_from_the_config(tmp_path):
    import csv
    from typer.testing import CliRunner
    from kconf.cli import app

    path = _config_with([{"CSVLogger": {"filename": "log.csv", "separator": ";"}},
                         {"EarlyStopping": {"monitor": "val_accuracy", "patience": 0,
                                            "min_delta": 0.99}}], tmp_path)
    result = CliRunner().invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "r").glob("*/*")
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    # min_delta 0.99 means no epoch counts as an improvement: stops after the second epoch
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])


def test_a_monitor_that_is_not_logged_is_a_located_error(tmp_path):
    from typer.testing import CliRunner
    from kconf.cli import app

    path = _config_with([{"EarlyStopping": {"monitor": "val_acc"}}], tmp_path)
    result = CliRunner().invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "fit.callbacks[0].EarlyStopping.monitor: 'val_acc' is not logged" in result.output
    assert "val_accuracy" in result.output
