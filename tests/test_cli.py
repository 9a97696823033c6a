"""The kconf command end to end through typer's CliRunner: every example config, errors, runs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.cli import app

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml")
                 if not p.name.startswith("sweep_"))  # sweep files: tests/test_sweep*.py
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*") if p.is_dir())


def test_there_are_the_docs_examples():
    names = {p.stem for p in CONFIGS}
    assert {"mlp_softmax", "mlp_binary", "vgg", "regression_mse", "custom_metric"} <= names


def test_validate_every_config():
    result = invoke("validate", *CONFIGS)
    assert result.exit_code == 0, result.output
    assert result.output.count(": OK (") == len(CONFIGS)
    assert "mlp_softmax.yaml: OK (6,154 params)" in result.output
    assert "runs Python code: kconf_examples.metrics:mean_pred  (compile.metrics[1])" in result.output


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_trains_one_epoch_and_leaves_a_complete_run_folder(config, tmp_path):
    result = invoke("train", config, "--epochs", "1", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(tmp_path)
    files = {p.name for p in run.iterdir()}
    assert {"config.yaml", "resolved.yaml", "summary.txt", "metrics.jsonl", "metrics.csv",
            "weights.npz", "evaluation.json", "status.json"} <= files
    assert (run / "config.yaml").read_text() == config.read_text()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["epoch"] == 1 and np.isfinite(rows[0]["loss"])
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert "loss" in evaluation
    with np.load(run / "weights.npz") as weights:
        assert all("/" in k for k in weights.files) and weights.files
    assert "Epoch 1/1" in result.output and "Test: loss" in result.output


def test_summary_table_matches_keras(tmp_path):
    result = invoke("summary", ROOT / "configs" / "vgg.yaml")
    assert result.exit_code == 0, result.output
    out = result.output
    for row in ("conv2d (Conv2D)", "(None, 98, 98, 32)", "max_pooling2d_1 (MaxPooling2D)",
                "(None, 22, 22, 64)", "flatten (Flatten)", "(None, 30976)", "7,930,112",
                "dense_1 (Dense)", "Total params: 7,998,250"):
        assert row in out, row


def test_train_overrides_apply_and_are_recorded(tmp_path):
    config = ROOT / "configs" / "mlp_softmax.yaml"
    result = invoke("train", config, "--epochs", "2", "--batch-size", "50", "--seed", "4",
                    "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(tmp_path)
    resolved = (run / "resolved.yaml").read_text()
    assert "epochs: 2" in resolved and "batch_size: 50" in resolved and "seed: 4" in resolved
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_two_runs_in_the_same_second_never_collide(tmp_path):
    config = ROOT / "configs" / "regression_mse.yaml"
    for _ in range(2):
        assert invoke("train", config, "--epochs", "1", "--output-dir", tmp_path).exit_code == 0
    assert len(run_dirs(tmp_path)) == 2


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = """\
name: t
model:
  sequential:
    - Dense: {units: 8, activation: relu, input_dim: 4}
    - Dense: {units: 1, activation: sigmoid}
compile:
  optimizer: sgd
  loss: binary_crossentropy
  metrics: [accuracy]
data:
  train: DATA
fit: {epochs: 1, batch_size: 8}
"""


def test_user_mistake_is_one_located_line_and_exit_2(tmp_path):
    path = write(tmp_path, BASE.replace("units: 8", "units: -8").replace(
        "DATA", "{random: {samples: 16, x: [4], classes: 2}}"))
    for command in ("validate", "train", "summary"):
        result = invoke(command, path)
        assert result.exit_code == 2, result.output
        assert f"{path}:4:22: model.sequential[0].Dense.units:" in result.output
        assert "Traceback" not in result.output


def test_missing_file_exit_2(tmp_path):
    result = invoke("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "not found" in result.output


def test_missing_data_file_is_located(tmp_path):
    path = write(tmp_path, BASE.replace("DATA", "{npz: {path: missing.npz, x: x, y: y}}"))
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert f"{path}:11:" in result.output and "data.train.npz.path" in result.output
    assert "missing.npz" in result.output


def test_data_of_the_wrong_shape_is_located(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((6, 5), np.float32), y=np.zeros((6, 1)))
    path = write(tmp_path, BASE.replace("DATA", "{npz: {path: d.npz, x: x, y: y}}"))
    result = invoke("train", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "data.train.npz" in result.output and "(5,)" in result.output and "(4,)" in result.output
    assert not (tmp_path / "runs").exists()  # a config mistake makes no run folder


def test_npy_data_trains(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((32, 4)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(2, size=(32, 1)))
    path = write(tmp_path, BASE.replace("DATA", "{npy: {x: x.npy, y: y.npy}}"))
    result = invoke("train", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output


def test_users_own_metric_module_is_found_next_to_the_config(tmp_path):
    (tmp_path / "mymetrics.py").write_text(
        "import numpy as np\ndef max_pred(y_true, y_pred):\n    return np.max(y_pred)\n")
    path = write(tmp_path, BASE.replace("[accuracy]", "[accuracy, 'mymetrics:max_pred']").replace(
        "DATA", "{random: {samples: 16, x: [4], classes: 2}}"))
    result = invoke("train", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(tmp_path / "runs")
    row = json.loads((run / "metrics.jsonl").read_text())
    assert 0.0 < row["max_pred"] <= 1.0 and "accuracy" in row


def test_unimportable_metric_is_a_located_error(tmp_path):
    path = write(tmp_path, BASE.replace("[accuracy]", "[accuracy, 'nosuchmod:f']").replace(
        "DATA", "{random: {samples: 16, x: [4], classes: 2}}"))
    result = invoke("train", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "compile.metrics[1]" in result.output and "nosuchmod" in result.output


def test_nan_loss_stops_cleanly_and_keeps_the_run_folder(tmp_path):
    text = BASE.replace("optimizer: sgd", "optimizer: {SGD: {learning_rate: 1.0e+30}}").replace(
        "binary_crossentropy", "mse").replace("activation: sigmoid", "activation: linear").replace(
        "DATA", "{random: {samples: 64, x: [4], y: [1]}}").replace("epochs: 1", "epochs: 6")
    result = invoke("train", write(tmp_path, text), "--output-dir", tmp_path / "runs")
    assert result.exit_code == 1, result.output
    assert "training stopped" in result.output and "not finite" in result.output
    (run,) = run_dirs(tmp_path / "runs")
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "not finite" in status["error"]
    assert (run / "config.yaml").exists() and (run / "summary.txt").exists()
