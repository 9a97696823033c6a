"""Runs resume bit-exactly from their folder alone — after an interruption and after kill -9."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import kconf
from kconf.cli import app
from kconf.train.callbacks import Callback
from kconf.train.run import prepare_run, resume_run

ROOT = Path(__file__).resolve().parents[1]

CONFIG = {
    "name": "resumable",
    "seed": 3,
    "model": {"sequential": [
        {"Dense": {"units": 16, "activation": "relu", "input_dim": 8}},
        {"Dropout": {"rate": 0.3}},
        {"Dense": {"units": 3, "activation": "softmax"}},
    ]},
    "compile": {"optimizer": {"Adam": {"learning_rate": 0.01}},
                "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
    "data": {"train": {"random": {"samples": 256, "x": [8], "classes": 3, "one_hot": True}},
             "validation": {"random": {"samples": 64, "x": [8], "classes": 3, "one_hot": True}}},
    "fit": {"epochs": 4, "batch_size": 32, "callbacks": [
        {"ReduceLROnPlateau": {"monitor": "val_loss", "patience": 1, "factor": 0.5}},
        {"EarlyStopping": {"monitor": "val_loss", "patience": 10}},
        {"ModelCheckpoint": {"monitor": "val_accuracy"}}]},
}


class StopAfter(Callback):
    """Simulates Ctrl-C after ``epochs`` epochs."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "resumable.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def weights(run_dir: Path) -> dict:
    with np.load(run_dir / "weights.npz") as data:
        return {k: data[k] for k in data.files}


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]


#: Optimizers whose state goes beyond slots: EMA averages, gradient accumulators (3 does not
#: divide the 8 steps of an epoch, so an epoch ends mid-accumulation), Nadam's u_product.
STATEFUL_OPTIMIZERS = [
    {"Adam": {"learning_rate": 0.01}},
    {"Nadam": {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.9,
               "gradient_accumulation_steps": 3}},
    {"AdamW": {"learning_rate": 0.01, "use_ema": True, "ema_overwrite_frequency": 5,
               "global_clipnorm": 1.0, "loss_scale_factor": 8.0}},
]


@pytest.mark.parametrize("optimizer", STATEFUL_OPTIMIZERS, ids=lambda o: next(iter(o)))
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, optimizer):
    config = {**CONFIG, "compile": {**CONFIG["compile"], "optimizer": optimizer}}
    path = write_config(tmp_path, config)
    full = prepare_run(kconf.load_config(path), tmp_path / "a")
    full.fit()
    full.evaluate()

    cut = prepare_run(kconf.load_config(path), tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        cut.fit(callbacks=[StopAfter(2)])
    assert json.loads((cut.run_dir / "status.json").read_text())["status"] == "interrupted"
    resumed = resume_run(cut.run_dir)
    assert resumed.initial_epoch == 2
    resumed.fit()
    resumed.evaluate()

    a, b = weights(full.run_dir), weights(cut.run_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert rows(full.run_dir) == rows(cut.run_dir)
    assert "learning_rate" in rows(full.run_dir)[0]
    assert (cut.run_dir / "checkpoints" / "best.npz").is_file()


def test_resuming_on_another_blas_thread_count_warns_where_the_bits_depend_on_it(
        tmp_path, monkeypatch):
    """A Dense model's products run on BLAS's own threads, whose count changes their last
    bits: the checkpoint records the count, and a resume on another one says the weights
    will not be bit-identical (and how to make them so); a convnet's do not depend on it."""
    import kconf.train.checkpoint as checkpoint
    import kconf.train.run as run_module
    from kconf.errors import RunWarning

    monkeypatch.setattr(checkpoint, "product_threads", lambda: 3)
    path = write_config(tmp_path, CONFIG)
    run = prepare_run(kconf.load_config(path), tmp_path / "runs")
    with pytest.raises(KeyboardInterrupt):
        run.fit(callbacks=[StopAfter(1)])
    run.close()
    for threads, warned in [(3, False), (1, True)]:
        monkeypatch.setattr(run_module, "product_threads", lambda: threads)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            resumed = resume_run(run.run_dir)
            resumed.close()
        messages = [str(w.message) for w in caught if issubclass(w.category, RunWarning)]
        assert len(messages) == warned
    assert messages[0] == (
        f"{run.run_dir}: the run trained with 3 BLAS threads and resumes with 1 BLAS thread; "
        "BLAS rounds the last bits of its products by its thread count, so the weights will "
        "not be bit-identical to an uninterrupted run's (resume with --threads 3 for that)")
    monkeypatch.setattr(type(resumed.model), "uses_workers", property(lambda self: True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resume_run(run.run_dir).close()
    assert not [w for w in caught if issubclass(w.category, RunWarning)]


def test_resume_refuses_a_truncated_checkpoint(tmp_path):
    path = write_config(tmp_path, CONFIG)
    run = prepare_run(kconf.load_config(path), tmp_path / "runs")
    with pytest.raises(KeyboardInterrupt):
        run.fit(callbacks=[StopAfter(1)])
    last = run.run_dir / "checkpoints" / "last.npz"
    last.write_bytes(last.read_bytes()[:100])
    result = CliRunner().invoke(app, ["train", "--resume", str(run.run_dir)])
    assert result.exit_code == 2
    assert "truncated or corrupted" in result.output and "Traceback" not in result.output


def test_resume_needs_a_run_folder_and_nothing_else(tmp_path):
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.output
    path = write_config(tmp_path, CONFIG)
    result = CliRunner().invoke(app, ["train", str(path), "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "--resume RUN_DIR alone" in result.output


def test_kill_9_mid_training_then_resume_is_bit_identical(tmp_path):
    data = json.loads(json.dumps(CONFIG))
    data["fit"]["epochs"] = 30
    data["data"]["train"]["random"]["samples"] = 4096
    path = write_config(tmp_path, data)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "kconf.cli", "train", str(path), "--quiet"]
    subprocess.run([*command, "--output-dir", str(tmp_path / "full")], check=True, env=env,
                   capture_output=True)
    proc = subprocess.Popen([*command, "--output-dir", str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    killed_dir = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "killed").glob("*/*/checkpoints/last.npz"))
        if found and len(rows(found[0].parents[1])) >= 3:
            killed_dir = found[0].parents[1]
            os.kill(proc.pid, signal.SIGKILL)  # mid-epoch, or even mid-write
            break
        time.sleep(0.01)
    proc.wait()
    assert killed_dir is not None, "the run finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    result = subprocess.run([sys.executable, "-m", "kconf.cli", "train", "--quiet", "--resume",
                             str(killed_dir)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (full_dir,) = (tmp_path / "full").glob("*/*")
    a, b = weights(full_dir), weights(killed_dir)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert rows(full_dir) == rows(killed_dir)
