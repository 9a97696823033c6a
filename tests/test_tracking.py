"""Experiment tracking: TensorBoard event files read back with TensorBoard's own reader,
MLflow runs in a local file store, ``kconf runs --compare`` and ``kconf plot RUN RUN``."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from kconf.cli import app

runner = CliRunner()


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def tiny(callbacks=(), epochs: int = 2, units: int = 4, lr: float = 0.1, name: str = "tiny"):
    return {
        "name": name, "seed": 0,
        "model": {"sequential": [
            {"Dense": {"units": units, "activation": "relu", "input_dim": 3}},
            {"Dense": {"units": 2, "activation": "softmax"}}]},
        "compile": {"optimizer": {"SGD": {"learning_rate": lr}},
                    "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
        "data": {"train": {"random": {"samples": 32, "x": [3], "classes": 2, "one_hot": True}},
                 "test": {"random": {"samples": 16, "x": [3], "classes": 2, "one_hot": True}}},
        "fit": {"epochs": epochs, "batch_size": 8, "validation_split": 0.25,
                "callbacks": list(callbacks)},
    }


def write(folder: Path, data, name: str = "tiny.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def train(tmp_path: Path, data, *flags, name: str = "tiny.yaml") -> Path:
    """Train a config with the CLI; the run folder."""
    out = tmp_path / "runs"
    before = set(out.glob("*/*"))
    result = invoke("train", write(tmp_path, data, name), "--output-dir", out, "-q", *flags)
    assert result.exit_code == 0, result.output
    (run,) = set(out.glob("*/*")) - before
    return run


def metrics_csv(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def events(log_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0,
                                                         "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc, tag) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


# --- TensorBoard ----------------------------------------------------------------------------
def test_tensorboard_event_files_hold_the_values_of_metrics_csv(tmp_path):
    cb = {"TensorBoard": {"log_dir": "tb", "histogram_freq": 1, "update_freq": 2,
                          "write_steps_per_second": True}}
    run = train(tmp_path, tiny([cb]))
    rows = metrics_csv(run)
    train_ev, val_ev = events(run / "tb" / "train"), events(run / "tb" / "validation")
    for name in ("loss", "accuracy"):  # Keras's names and steps: epoch_<name>, epoch from 0
        expected = [(int(r["epoch"]) - 1, r[name]) for r in rows]
        got = scalars(train_ev, f"epoch_{name}")
        assert [s for s, _ in got] == [s for s, _ in expected]
        np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=1e-6)
        got = scalars(val_ev, f"epoch_{name}")
        np.testing.assert_allclose([v for _, v in got], [r[f"val_{name}"] for r in rows],
                                   rtol=1e-6)
    assert [v for _, v in scalars(train_ev, "epoch_learning_rate")] == pytest.approx([0.1, 0.1])
    # update_freq 2: batch scalars every second step (24 samples / 8 = 3 steps per epoch)
    assert [s for s, _ in scalars(train_ev, "batch_loss")] == [2, 4, 6]
    assert scalars(train_ev, "batch_loss")[-1][1] == pytest.approx(rows[-1]["loss"], rel=1e-6)
    assert [s for s, _ in scalars(train_ev, "batch_steps_per_second")] == [2, 4, 6]
    assert all(v > 0 for _, v in scalars(train_ev, "epoch_steps_per_second"))
    # histograms: the weights at the last epoch are the final weights.npz
    tags = train_ev.Tags()["histograms"]
    assert {"dense/kernel/histogram", "dense_1/bias/histogram",
            "dense/kernel/gradient"} <= set(tags)
    with np.load(run / "weights.npz") as weights:
        kernel = weights["dense/kernel"]
    last = train_ev.Histograms("dense/kernel/histogram")[-1]
    assert last.step == 1
    assert last.histogram_value.num == kernel.size
    assert last.histogram_value.min == pytest.approx(kernel.min())
    assert last.histogram_value.max == pytest.approx(kernel.max())
    assert last.histogram_value.sum == pytest.approx(kernel.sum(), abs=1e-5)
    grad = train_ev.Histograms("dense/kernel/gradient")[-1].histogram_value
    assert grad.num == kernel.size and grad.max > grad.min  # a real gradient, not zeros
    # the graph: one node per layer, the edges of the calls
    nodes = {n.name: (n.op, list(n.input)) for n in train_ev.Graph().node}
    assert nodes == {"input_layer": ("InputLayer", []), "dense": ("Dense", ["input_layer"]),
                     "dense_1": ("Dense", ["dense"])}
    # the resolved config, as text
    (text,) = train_ev.Tensors("config/text_summary")
    shown = text.tensor_proto.string_val[0].decode()
    assert yaml.safe_load(shown)["fit"]["batch_size"] == 8


def test_train_tensorboard_flag_writes_into_the_run_folder(tmp_path):
    run = train(tmp_path, tiny(epochs=1), "--tensorboard")
    assert (run / "tensorboard" / "validation").is_dir()
    train_ev = events(run / "tensorboard" / "train")
    assert scalars(train_ev, "epoch_loss")[0][1] == pytest.approx(metrics_csv(run)[0]["loss"],
                                                                  rel=1e-6)
    assert train_ev.Tags()["histograms"] == []  # histogram_freq 0 by default, as Keras
    assert "batch_loss" not in train_ev.Tags()["scalars"]  # update_freq 'epoch'


def test_a_resumed_run_continues_its_event_files(tmp_path):
    cb = {"TensorBoard": {"update_freq": "batch"}}
    run = train(tmp_path, tiny([cb], epochs=1))
    result = invoke("train", "--resume", run, "fit.epochs=2", "-q")
    assert result.exit_code == 0, result.output
    train_ev = events(run / "logs" / "train")  # Keras's default log_dir, in the run folder
    got = scalars(train_ev, "epoch_loss")
    assert [s for s, _ in got] == [0, 1]
    np.testing.assert_allclose([v for _, v in got], [r["loss"] for r in metrics_csv(run)],
                               rtol=1e-6)
    assert [s for s, _ in scalars(train_ev, "batch_loss")] == [1, 2, 3, 4, 5, 6]
    assert len(train_ev.Tensors("config/text_summary")) == 1  # written once, not on resume


def test_a_wrong_tensorboard_argument_is_located(tmp_path):
    path = write(tmp_path, tiny([{"TensorBoard": {"update_freq": "often"}}]))
    result = invoke("train", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[0]
    assert line.startswith(f"{path}:")
    assert ("fit.callbacks[0].TensorBoard.update_freq: must be 'epoch', 'batch' or a positive "
            "integer") in line
    path = write(tmp_path, tiny([{"TensorBoard": {"profile_batch": 2}}]))
    result = invoke("train", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "fit.callbacks[0].TensorBoard" in result.output and "histogram_freq" in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("module,flag,extra", [("tensorboardX", "--tensorboard", "tensorboard"),
                                               ("mlflow", "--mlflow", "mlflow")])
def test_a_missing_extra_is_one_line_naming_it(tmp_path, monkeypatch, module, flag, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    result = invoke("train", write(tmp_path, tiny()), "--output-dir", tmp_path / "runs", flag)
    assert result.exit_code == 2
    name = "TensorBoard" if extra == "tensorboard" else "MLflow"
    assert result.output.strip() == (f"{flag}: {name} needs {module}, an optional extra: "
                                     f"pip install 'kconf[{extra}]'")
    path = write(tmp_path, tiny([{name: {}}]))
    result = invoke("train", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert result.output.strip().startswith(f"{path}:")
    assert f"fit.callbacks[0].{name}: " in result.output
    assert f"pip install 'kconf[{extra}]'" in result.output
    assert not (tmp_path / "runs").exists()  # refused before any run folder is made


# --- MLflow ---------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path, monkeypatch):
    """A local MLflow file store; kconf opts in to it for a file: URI (MLflow 3 asks to)."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return (tmp_path / "mlruns").as_uri()


def client_of(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def only_run(client, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    (found,) = client.search_runs([exp.experiment_id])
    return found


def test_mlflow_callback_logs_params_metrics_artifacts_and_model(tmp_path, store):
    cb = {"MLflow": {"tracking_uri": store, "experiment_name": "exp", "run_name": "first"}}
    run = train(tmp_path, tiny([cb]))
    client = client_of(store)
    found = only_run(client, "exp")
    assert found.info.run_name == "first" and found.info.status == "FINISHED"
    params = found.data.params
    assert params["fit.epochs"] == "2" and params["model.sequential.0.Dense.units"] == "4"
    assert params["compile.optimizer.SGD.learning_rate"] == "0.1"
    rows = metrics_csv(run)
    for name in ("loss", "val_accuracy"):
        history = client.get_metric_history(found.info.run_id, name)
        assert [m.step for m in history] == [0, 1]
        np.testing.assert_allclose([m.value for m in history], [r[name] for r in rows])
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert found.data.metrics["test_loss"] == pytest.approx(evaluation["loss"])
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"metrics.csv", "resolved.yaml", "weights.npz", "model", "checkpoints"} <= artifacts
    assert "run.lock" not in artifacts  # the folder's lock is no record of the run
    model = {a.path for a in client.list_artifacts(found.info.run_id, "model")}
    assert model == {"model/weights.npz", "model/resolved.yaml"}
    local = Path(client.download_artifacts(found.info.run_id, "model/weights.npz", str(tmp_path)))
    with np.load(local) as logged, np.load(run / "weights.npz") as kept:
        np.testing.assert_array_equal(logged["dense/kernel"], kept["dense/kernel"])
    assert json.loads((run / "mlflow.json").read_text())["run_id"] == found.info.run_id


def test_mlflow_flag_uses_the_environment_and_a_resume_continues_the_run(tmp_path, store,
                                                                          monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a store from the environment
    run = train(tmp_path, tiny(epochs=1), "--mlflow")
    result = invoke("train", "--resume", run, "fit.epochs=2", "-q", "--mlflow")
    assert result.exit_code == 0, result.output
    client = client_of(store)
    found = only_run(client, "tiny")  # the config's name; the same run, now 2 epochs long
    assert found.info.run_name == f"tiny/{run.name}" and found.info.status == "FINISHED"
    history = client.get_metric_history(found.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1]
    np.testing.assert_allclose([m.value for m in history], [r["loss"] for r in metrics_csv(run)])


def test_a_failed_run_ends_its_mlflow_run_as_failed_with_what_it_wrote(tmp_path, store):
    data = tiny([{"MLflow": {"tracking_uri": store}}], lr=1e30)  # the loss overflows
    result = invoke("train", write(tmp_path, data), "--output-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 1 and "not finite" in result.output
    client = client_of(store)
    found = only_run(client, "tiny")
    assert found.info.status == "FAILED"
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"status.json", "resolved.yaml"} <= artifacts and "weights.npz" not in artifacts


def test_an_mlflow_store_that_cannot_be_opened_is_one_line(tmp_path, store):
    (tmp_path / "file").write_text("")
    bad = (tmp_path / "file" / "store").as_uri()  # under a file: no folder can be made
    cb = {"MLflow": {"tracking_uri": bad}}
    path = write(tmp_path, tiny([cb]))
    result = invoke("train", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert result.output.startswith(f"{path}:")
    assert (f"fit.callbacks[0].MLflow.tracking_uri: MLflow cannot use the tracking store {bad}: "
            in result.output)
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # refused before any run folder is made


def test_a_wrong_mlflow_argument_is_located(tmp_path):
    path = write(tmp_path, tiny([{"MLflow": {"tracking_url": "file:/x"}}]))
    result = invoke("train", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert result.output.startswith(f"{path}:")
    assert "fit.callbacks[0].MLflow" in result.output and "tracking_uri" in result.output


SWEEP = """name: tracked
base: tiny.yaml
parameters:
  model.sequential.0.Dense.units: [2, 5]
  fit.epochs: 1
search: grid
metric: val_loss
mode: min
resources: {cpus: 1}
"""


def test_a_sweep_whose_trials_need_a_missing_extra_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    write(tmp_path, tiny([{"TensorBoard": {}}]))
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    result = invoke("sweep", tmp_path / "sweep.yaml", "--dry-run")
    assert result.exit_code == 2
    assert "fit.callbacks[0].TensorBoard: TensorBoard needs tensorboardX" in result.output
    assert "pip install 'kconf[tensorboard]'" in result.output


def test_sweep_logs_a_parent_run_and_a_child_run_per_trial(tmp_path, store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    write(tmp_path, tiny())
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    result = invoke("sweep", tmp_path / "sweep.yaml", "--output-dir", tmp_path / "runs",
                    "--workers", 1, "-q", "--mlflow")
    assert result.exit_code == 0, result.output
    client = client_of(store)
    exp = client.get_experiment_by_name("tracked")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2
    assert parent.info.status == "FINISHED" and parent.data.params["sweep.metric"] == "val_loss"
    units = sorted(c.data.params["model.sequential.0.Dense.units"] for c in children)
    assert units == ["2", "5"]
    for child in children:
        assert child.info.status == "FINISHED"
        (folder,) = (tmp_path / "runs" / "tracked").glob(f"*/{child.info.run_name}")
        rows = metrics_csv(folder)
        history = client.get_metric_history(child.info.run_id, "val_loss")
        np.testing.assert_allclose([m.value for m in history], [r["val_loss"] for r in rows])
        assert "metrics.csv" in {a.path for a in client.list_artifacts(child.info.run_id)}


# --- comparing and plotting runs ------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    first = train(tmp, tiny(units=4, lr=0.1), name="a.yaml")
    second = train(tmp, tiny(units=6, lr=0.05), name="b.yaml")
    return first, second


def test_runs_compare_shows_the_config_differences_and_final_metrics(two_runs):
    first, second = two_runs
    result = invoke("runs", "--compare", first, second, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["differences"] == {"model.sequential.0.Dense.units": [4, 6],
                                   "compile.optimizer.SGD.learning_rate": [0.1, 0.05]}
    final = [metrics_csv(r)[-1] for r in two_runs]
    assert data["metrics"]["val_loss"] == pytest.approx([f["val_loss"] for f in final])
    tests = [json.loads((r / "evaluation.json").read_text())["accuracy"] for r in two_runs]
    assert data["metrics"]["test_accuracy"] == pytest.approx(tests)
    assert data["status"] == ["finished", "finished"] and data["epochs"] == [2, 2]
    table = invoke("runs", "--compare", first, second)
    assert table.exit_code == 0, table.output
    assert "model.sequential.0.Dense.units" in table.output
    assert f"tiny/{second.name}" in table.output
    assert "fit.epochs" not in table.output  # the same in both: not a difference


def test_runs_compare_of_a_folder_that_is_not_a_run(two_runs, tmp_path):
    result = invoke("runs", "--compare", two_runs[0], tmp_path)
    assert result.exit_code == 2
    assert result.output.strip() == (f"{tmp_path}: not a run folder (it has no resolved.yaml): "
                                     "a run folder holds resolved.yaml, e.g. runs/<name>/<time>/")
    result = invoke("runs", "--compare", two_runs[0])
    assert result.exit_code == 2 and "needs two run folders or more" in result.output


def test_plot_overlays_several_runs_one_panel_per_quantity(two_runs, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    panels = []
    real_savefig = Figure.savefig

    def savefig(fig, *args, **kwargs):
        panels.append([(ax.get_title(), [line.get_label() for line in ax.get_lines()])
                       for ax in fig.axes])
        return real_savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    result = invoke("plot", *two_runs, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    png = tmp_path / "out" / "runs.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    (figure,) = panels
    labels = [f"tiny/{r.name}" for r in two_runs]
    assert [title for title, _ in figure] == ["loss", "accuracy"]
    for _, lines in figure:
        assert lines == [labels[0], f"{labels[0]} (validation)",
                         labels[1], f"{labels[1]} (validation)"]
    result = invoke("plot", two_runs[0], tmp_path)
    assert result.exit_code == 2 and "has no metrics.jsonl" in result.output
