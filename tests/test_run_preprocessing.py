"""A run's fitted preprocessing travels with its model: saved in ``preprocess.json``, applied by
``evaluate --data`` and ``predict`` to raw data (``--prepared`` for data preprocessed already),
by ``kconf.load_run``, and carried into ``export-keras`` and ``export-onnx`` as layers."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import kconf
from kconf.cli import app
from kconf.config import load_config
from kconf.data.sources import shuffle_rng
from kconf.data.split import split_indices

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("sklearn")  # the digits; the dev extra installs it


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def reimported(keras_file: Path, tmp_path: Path):
    """A ``.keras`` archive read back by ``kconf import-keras``: its model with its weights."""
    result = invoke("import-keras", keras_file, "-o", tmp_path / "imported.yaml")
    assert result.exit_code == 0, result.output
    from kconf.train.trained import load_trained

    return load_trained(tmp_path / "imported.yaml", tmp_path / "imported.weights.npz").model


def train(tmp_path: Path, config: Path, *overrides: str) -> Path:
    result = invoke("train", config, *overrides, "--quiet", "--output-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").glob("*/*")
    return run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """configs/digits_mlp.yaml trained 2 epochs, and its raw (unscaled, unencoded) test split."""
    tmp = tmp_path_factory.mktemp("digits")
    run = train(tmp, ROOT / "configs" / "digits_mlp.yaml", "fit.epochs=2")
    raw = kconf.load_data(ROOT / "configs" / "digits_mlp.yaml", {"data.preprocess": []})["test"]
    np.savez(tmp / "raw.npz", x=raw.x[0], y=raw.y[0])
    return run, tmp / "raw.npz"


def test_the_runs_own_raw_test_split_evaluates_to_its_evaluation_exactly(digits_run):
    run, raw = digits_run
    saved = json.loads((run / "evaluation.json").read_text())
    result = invoke("evaluate", run, "--data", raw, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == saved
    # the same, preprocessed already, with --prepared; raw data with --prepared is refused
    test = kconf.load_data(ROOT / "configs" / "digits_mlp.yaml")["test"]
    np.savez(raw.parent / "prepared.npz", x=test.x[0], y=test.y[0])
    result = invoke("evaluate", run, "--data", raw.parent / "prepared.npz", "--json",
                    "--prepared")
    assert json.loads(result.output) == saved
    result = invoke("evaluate", run, "--data", raw, "--prepared")
    assert result.exit_code == 2 and "needs targets of shape (10,)" in result.output


def test_predict_applies_the_preprocessing_to_raw_inputs(digits_run, tmp_path):
    run, raw = digits_run
    trained = kconf.load_run(run)
    test = kconf.load_data(ROOT / "configs" / "digits_mlp.yaml")["test"]
    want = trained.model.predict(test.x[0], batch_size=32)
    assert invoke("predict", run, "--input", raw, "-o", tmp_path / "p.npz").exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npz")["dense_2"], want)
    np.savez(tmp_path / "prepared.npz", x=test.x[0])
    assert invoke("predict", run, "--input", tmp_path / "prepared.npz", "-o",
                  tmp_path / "q.npz", "--prepared").exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "q.npz")["dense_2"], want)
    # a config with the run's weights: its preprocessing fitted again, the same
    assert invoke("predict", ROOT / "configs" / "digits_mlp.yaml", "--weights",
                  run / "weights.npz", "--input", raw, "-o", tmp_path / "c.npz").exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "c.npz")["dense_2"], want)
    # the Python API: the run's model with its preprocessing
    raw_x = np.load(raw)["x"]
    np.testing.assert_array_equal(trained.predict(raw_x), want)
    np.testing.assert_array_equal(trained.predict(test.x[0], prepared=True), want)
    assert trained.evaluate(raw_x, np.load(raw)["y"]) == \
        json.loads((run / "evaluation.json").read_text())


def test_preprocess_json_is_readable_and_written_atomically(digits_run):
    run, _ = digits_run
    text = (run / "preprocess.json").read_text()
    saved = json.loads(text)
    assert [(s["step"], s["array"]) for s in saved["steps"]] == [("scale", "x"), ("one_hot", "y")]
    assert saved["x_shapes"] == [[64]] and saved["steps"][1]["classes"] == 10
    assert saved["steps"][0]["factor"][1] == 0.125  # pixel 1's training maximum is 8
    assert len(text.splitlines()) < 40  # lists of numbers on one line each
    assert not list(run.glob(".*tmp*"))


def test_exports_take_raw_inputs(digits_run, tmp_path):
    """export-onnx and export-keras put the preprocessing in front of the model: on raw
    inputs they give what predict gives (the Keras file read back by kconf's importer)."""
    run, raw = digits_run
    trained = kconf.load_run(run)
    raw_x = np.load(raw)["x"]
    want = trained.predict(raw_x)
    assert invoke("export-keras", run, "-o", tmp_path / "m").exit_code == 0
    layers = json.loads((tmp_path / "m.json").read_text())["config"]["layers"]
    assert [layer["class_name"] for layer in layers[:3]] == ["InputLayer", "Normalization",
                                                             "Dense"]
    imported = reimported(tmp_path / "m.keras", tmp_path)
    np.testing.assert_allclose(imported.predict(raw_x), want, atol=1e-5, rtol=0)
    assert invoke("export-keras", run, "-o", tmp_path / "bare",
                  "--without-preprocessing").exit_code == 0
    bare = json.loads((tmp_path / "bare.json").read_text())["config"]["layers"]
    assert [layer["class_name"] for layer in bare[:2]] == ["InputLayer", "Dense"]

    ort = pytest.importorskip("onnxruntime")
    assert invoke("export-onnx", run, "-o", tmp_path / "m.onnx").exit_code == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: raw_x})[0]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_a_reshape_goes_into_the_onnx_and_keras_inputs(tmp_path):
    """configs/digits_cnn.yaml scales 64 pixels and reshapes them to 8x8x1: the exports take
    the 64 raw pixels."""
    run = train(tmp_path, ROOT / "configs" / "digits_cnn.yaml", "fit.epochs=1")
    raw = kconf.load_data(ROOT / "configs" / "digits_cnn.yaml", {"data.preprocess": []})["test"]
    raw_x = raw.x[0][:40]
    want = kconf.load_run(run).predict(raw_x)
    assert invoke("export-keras", run, "-o", tmp_path / "m").exit_code == 0
    np.testing.assert_allclose(reimported(tmp_path / "m.keras", tmp_path).predict(raw_x), want,
                               atol=1e-5, rtol=0)
    ort = pytest.importorskip("onnxruntime")
    assert invoke("export-onnx", run, "-o", tmp_path / "m.onnx").exit_code == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    assert session.get_inputs()[0].shape[1:] == [64]
    got = session.run(None, {session.get_inputs()[0].name: raw_x})[0]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_a_table_run_evaluates_and_predicts_raw_csv_rows(tmp_path):
    """configs/tabular_csv.yaml: its raw test rows, as a CSV with the run's columns, give the
    run's evaluation exactly; predict reads the columns by name (in any order)."""
    config = ROOT / "configs" / "tabular_csv.yaml"
    run = train(tmp_path, config, "fit.epochs=2")
    with open(ROOT / "configs" / "data" / "customers.csv", newline="") as f:
        head, *rows = list(csv.reader(f))
    cfg = load_config(config)
    labels = np.unique([r[head.index("churned")] for r in rows], return_inverse=True)[1]
    parts = split_indices(len(rows), 0.1, 0.2, shuffle_rng(cfg.seed), labels)
    test_rows = [rows[i] for i in parts["test"]]
    order = list(reversed(range(len(head))))  # columns in another order: found by name
    with open(tmp_path / "test.csv", "w", newline="") as f:
        csv.writer(f).writerows([[head[j] for j in order]] +
                                [[r[j] for j in order] for r in test_rows])
    result = invoke("evaluate", run, "--data", tmp_path / "test.csv", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads((run / "evaluation.json").read_text())
    assert invoke("predict", run, "--input", tmp_path / "test.csv", "-o",
                  tmp_path / "p.npz").exit_code == 0
    test = kconf.load_data(config)["test"]
    np.testing.assert_array_equal(np.load(tmp_path / "p.npz")["dense_1"],
                                  kconf.load_run(run).model.predict(test.x[0], batch_size=32))
    saved = json.loads((run / "preprocess.json").read_text())
    table = saved["steps"][0]
    assert table["step"] == "table" and [c["name"] for c in table["columns"]] == [
        "age", "income", "visits_web", "visits_store", "city", "plan"]
    assert table["columns"][4]["vocabulary"][0] == "paris"  # the most frequent city
    # a city the training split never had: the out-of-vocabulary id, with a warning
    with open(tmp_path / "new.csv", "w") as f:
        f.write("age,income,city,plan,visits_web,visits_store\n40,30.5,tokyo,pro,3,1\n")
    result = invoke("predict", run, "--input", tmp_path / "new.csv", "-o", tmp_path / "n.npz")
    assert result.exit_code == 0, result.output
    assert (f"warning: {tmp_path / 'new.csv'}: column 'city': 1 value(s) of the new data that "
            "the training split never had ('tokyo'): mapped to the out-of-vocabulary id 0"
            ) in result.output
    # a file without one of the run's columns is named
    with open(tmp_path / "bad.csv", "w") as f:
        f.write("age,income\n1,2\n")
    result = invoke("predict", run, "--input", tmp_path / "bad.csv", "-o", tmp_path / "b.npz")
    assert result.exit_code == 2
    assert "bad.csv: has no column 'visits_web', 'visits_store', 'city', 'plan'" in result.output


FUNCTIONAL = """\
name: two_inputs
seed: 0
model:
  functional:
    inputs:
      a: {shape: [4]}
      b: {shape: [2, 3]}
    layers:
      flat: {Flatten: {}}
      hidden: {Dense: {units: 5, activation: tanh}}
      out: {Dense: {units: 1}}
    graph:
      - fb = flat(b)
      - h = concatenate(a, fb)
      - h = hidden(h)
      - y = out(h)
    outputs: [y]
compile: {optimizer: adam, loss: mse}
data:
  train: {random: {samples: 64, x: {a: {shape: [4], low: -3, high: 9}, b: {shape: [2, 3], high: 50}}, y: [1]}}
  preprocess:
    - scale: {x: {a: minmax}, per: all, range: [-1, 1]}
    - standardize: {x: {b: true}}
fit: {epochs: 1, batch_size: 16}
"""


def test_a_functional_models_inputs_take_their_own_preprocessing(tmp_path):
    """Each input gets its layers in the exports: a Rescaling (one statistic) on a, and on b
    (per-feature statistics of 2x3 samples) a Normalization between two Reshapes."""
    (tmp_path / "c.yaml").write_text(FUNCTIONAL)
    run = train(tmp_path, tmp_path / "c.yaml")
    raw = kconf.load_data(tmp_path / "c.yaml", {"data.preprocess": []})["train"]
    trained = kconf.load_run(run)
    want = trained.predict(raw.x)
    np.testing.assert_array_equal(want, trained.model.predict(
        kconf.load_data(tmp_path / "c.yaml")["train"].x))
    assert invoke("export-keras", run, "-o", tmp_path / "m").exit_code == 0
    layers = json.loads((tmp_path / "m.json").read_text())["config"]["layers"]
    assert [(layer["name"], layer["class_name"]) for layer in layers] == [
        ("b", "InputLayer"), ("preprocess_reshape", "Reshape"),
        ("preprocess_normalization", "Normalization"), ("a", "InputLayer"),
        ("preprocess_reshape_1", "Reshape"), ("preprocess_rescaling", "Rescaling"),
        ("flat", "Flatten"), ("concatenate", "Concatenate"), ("hidden", "Dense"),
        ("out", "Dense")]
    imported = reimported(tmp_path / "m.keras", tmp_path)
    np.testing.assert_allclose(imported.predict(raw.x), want, atol=1e-5, rtol=0)
    ort = pytest.importorskip("onnxruntime")
    assert invoke("export-onnx", run, "-o", tmp_path / "m.onnx").exit_code == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {"a": raw.x[0], "b": raw.x[1]})[0]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
