"""The commands around training, through typer's CliRunner: overrides, ``config``,
``evaluate``, ``predict``, ``runs``, ``--quiet``, ``--log-format json``, Ctrl-C."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from kconf.cli import app
from kconf.config import load_config
from kconf.train.trained import load_trained

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml")
                 if not p.name.startswith("sweep_"))  # sweep files: tests/test_sweep*.py
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/kconf.schema.json"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*") if p.is_dir())


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


SEQUENTIAL = """\
name: seq
seed: 3
model:
  sequential:
    - Dense: {units: 8, activation: relu, input_dim: 4}
    - Dense: {units: 3, activation: softmax}
compile:
  optimizer: {SGD: {lr: 0.1}}
  loss: categorical_crossentropy
  metrics: [accuracy]
data:
  train: {random: {samples: 40, x: [4], classes: 3, one_hot: true}}
  test: {random: {samples: 30, x: [4], classes: 3, one_hot: true}}
fit: {epochs: 2, batch_size: 16}
"""

MULTI_IO = """\
name: multi
seed: 1
model:
  functional:
    inputs:
      a: {shape: [3]}
      b: {shape: [2]}
    layers:
      hidden: {Dense: {units: 5, activation: tanh}}
      first: {Dense: {units: 2, activation: softmax}}
      second: {Dense: {units: 1}}
    graph:
      - ab = concatenate(a, b)
      - h = hidden(ab)
      - p = first(h)
      - q = second(h)
    outputs: [p, q]
compile:
  optimizer: adam
  loss: {first: categorical_crossentropy, second: mse}
data:
  train:
    random:
      samples: 24
      x: {a: [3], b: [2]}
      y: {first: {classes: 2, one_hot: true}, second: [1]}
fit: {epochs: 1, batch_size: 8}
"""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One finished run of the small sequential config (shared by the read-only tests)."""
    tmp = tmp_path_factory.mktemp("trained")
    config = write(tmp, SEQUENTIAL)
    result = invoke("train", config, "--output-dir", tmp / "runs")
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(tmp / "runs")
    return run


# --- $schema comment -----------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_starts_with_the_schema_comment_and_still_loads(config):
    assert config.read_text().splitlines()[0] == SCHEMA_LINE
    assert (config.parent / "../schemas/kconf.schema.json").resolve().is_file()
    load_config(config)


# --- overrides ----------------------------------------------------------------------------

def test_positional_overrides_are_typed_applied_and_recorded(tmp_path):
    config = ROOT / "configs" / "mlp_softmax.yaml"
    result = invoke("train", config, "fit.epochs=1", "compile.optimizer.SGD.lr=0.001",
                    "data.train.random.samples=64", "seed=1", "--batch-size", "32",
                    "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(tmp_path)
    resolved = yaml.safe_load((run / "resolved.yaml").read_text())
    assert resolved["fit"] == {**resolved["fit"], "epochs": 1, "batch_size": 32}
    assert resolved["compile"]["optimizer"]["SGD"]["learning_rate"] == 0.001
    assert resolved["seed"] == 1 and resolved["data"]["train"]["random"]["samples"] == 64
    assert yaml.safe_load((run / "overrides.yaml").read_text()) == {
        "fit.epochs": 1, "compile.optimizer.SGD.lr": 0.001, "data.train.random.samples": 64,
        "seed": 1, "fit.batch_size": 32}
    versions = json.loads((run / "versions.json").read_text())
    assert {"python", "platform", "numpy", "pydantic", "typer", "rich", "pyyaml",
            "kconf"} <= set(versions)
    assert versions["numpy"] == np.__version__
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_no_overrides_record_an_empty_mapping(trained_run):
    assert yaml.safe_load((trained_run / "overrides.yaml").read_text()) == {}


@pytest.mark.parametrize("override, expected", [
    ("fit.epochs=-3", "override 'fit.epochs=-3': fit.epochs: must be a positive integer, got -3"),
    ("fit.epochs=three", "override 'fit.epochs=three': fit.epochs: expected an integer"),
    ("compile.optimizer.SGD.lrr=0.1",
     "override 'compile.optimizer.SGD.lrr=0.1': compile.optimizer.SGD: unknown key 'lrr' "
     "(did you mean 'lr'?)"),
    ("model.sequential.9.Dense.units=3", "override 'model.sequential.9.Dense.units': index 9 "
                                         "is out of range, model.sequential has 5 items"),
    ("model.sequential.-1.Dense.units=0", "override 'model.sequential.-1.Dense.units=0': "
                                          "model.sequential[4].Dense.units: must be a positive"),
    ("fit.epochs", "override 'fit.epochs': expected path=value"),
])
def test_a_bad_override_is_named_and_exits_2(tmp_path, override, expected):
    config = ROOT / "configs" / "mlp_softmax.yaml"
    result = invoke("train", config, override, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing is made for a config mistake


def test_every_bad_override_is_reported_at_once_options_too(tmp_path):
    config = ROOT / "configs" / "mlp_softmax.yaml"
    result = invoke("config", config, "fit.epochs=0", "seed=x", "fit.shuffle=maybe")
    assert result.exit_code == 2
    for line in ("override 'fit.epochs=0': fit.epochs:", "override 'seed=x': seed:",
                 "override 'fit.shuffle=maybe': fit.shuffle:", "3 errors in"):
        assert line in result.output, line
    result = invoke("train", config, "--batch-size", "0", "--output-dir", tmp_path)
    assert result.exit_code == 2
    assert "--batch-size 0: fit.batch_size: must be a positive integer, got 0" in result.output


def test_an_error_in_the_file_keeps_its_line_next_to_overrides(tmp_path):
    text = SEQUENTIAL.replace("units: 8", "units: -8")
    path = write(tmp_path, text)
    result = invoke("config", path, "fit.epochs=3")
    assert result.exit_code == 2
    assert f"{path}:5:22: model.sequential[0].Dense.units:" in result.output


# --- kconf config ---------------------------------------------------------------------------

def test_config_prints_the_resolved_config(tmp_path):
    config = ROOT / "configs" / "mlp_binary.yaml"
    result = invoke("config", config, "fit.epochs=3", "compile.optimizer=adam")
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    expected = load_config(config, {"fit.epochs": 3, "compile.optimizer": "adam"}).to_data()
    assert printed == expected
    assert printed["fit"]["epochs"] == 3 and "Adam" in printed["compile"]["optimizer"]
    assert printed["model"]["sequential"][0]["Dense"]["kernel_initializer"] == "glorot_uniform"
    # the printed config is a valid config again
    again = write(tmp_path, result.stdout, "again.yaml")
    assert load_config(again, base_dir=config.parent).to_data() == expected


def test_config_of_a_broken_file_exits_2(tmp_path):
    result = invoke("config", write(tmp_path, SEQUENTIAL.replace("relu", "reluu")))
    assert result.exit_code == 2
    assert "unknown activation 'reluu'" in result.output


# --- evaluate -------------------------------------------------------------------------------

def test_evaluate_a_run_folder_equals_its_evaluation_json(trained_run):
    result = invoke("evaluate", trained_run, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((trained_run / "evaluation.json").read_text())
    table = invoke("evaluate", trained_run)
    assert table.exit_code == 0, table.output
    assert "loss" in table.output and "accuracy" in table.output and "30 samples" in table.output


def test_evaluate_a_config_with_weights_from_another_folder(trained_run, tmp_path, monkeypatch):
    config = write(tmp_path, SEQUENTIAL)
    monkeypatch.chdir(tmp_path)  # relative paths: nothing depends on the working directory
    result = invoke("evaluate", config.name, "--weights", trained_run / "weights.npz", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((trained_run / "evaluation.json").read_text())


def test_evaluate_a_config_needs_weights(tmp_path):
    result = invoke("evaluate", write(tmp_path, SEQUENTIAL))
    assert result.exit_code == 2 and "--weights" in result.output


def test_evaluate_on_a_data_file(trained_run, tmp_path):
    rng = np.random.default_rng(5)
    x = rng.random((21, 4), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(3, size=21)]
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    model = load_trained(trained_run).model
    expected = model.evaluate(x, y, batch_size=16, return_dict=True)
    for data in (["--data", tmp_path / "d.npz"],
                 ["--data", tmp_path / "x.npy", "--data", tmp_path / "y.npy"]):
        result = invoke("evaluate", trained_run, *data, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == pytest.approx(expected)
    np.savez(tmp_path / "named.npz", input_layer=x, dense_1=y)  # the model's own names
    result = invoke("evaluate", trained_run, "--data", tmp_path / "named.npz", "--json")
    assert json.loads(result.stdout) == pytest.approx(expected)


def test_evaluate_on_a_bad_data_file_exits_2(trained_run, tmp_path):
    np.savez(tmp_path / "wrong.npz", inputs=np.zeros((3, 4)), y=np.zeros((3, 3)))
    result = invoke("evaluate", trained_run, "--data", tmp_path / "wrong.npz")
    assert result.exit_code == 2
    assert "wrong.npz: has no array for the model's inputs 'input_layer' or 'x'" in result.output
    np.savez(tmp_path / "shape.npz", x=np.zeros((3, 5)), y=np.zeros((3, 3)))
    result = invoke("evaluate", trained_run, "--data", tmp_path / "shape.npz")
    assert result.exit_code == 2
    assert "shape.npz:" in result.output and "(5,)" in result.output


def test_evaluate_with_weights_missing_a_layer_names_it(trained_run, tmp_path):
    with np.load(trained_run / "weights.npz") as weights:
        arrays = {k: weights[k] for k in weights.files}
    del arrays["dense_1/kernel"]
    np.savez(tmp_path / "partial.npz", **arrays)
    result = invoke("evaluate", trained_run, "--weights", tmp_path / "partial.npz")
    assert result.exit_code == 2
    assert "layer 'dense_1' (Dense): the file has no array 'dense_1/kernel'" in result.output
    assert "Traceback" not in result.output


def test_evaluate_with_weights_of_another_shape_names_the_layer(trained_run, tmp_path):
    config = write(tmp_path, SEQUENTIAL.replace("units: 8", "units: 9"))
    result = invoke("evaluate", config, "--weights", trained_run / "weights.npz")
    assert result.exit_code == 2
    assert "layer 'dense' (Dense): weight 'kernel' has shape (4, 9) in the model but (4, 8) in " \
           "the file" in result.output
    (tmp_path / "junk.npz").write_text("not a zip")
    result = invoke("evaluate", trained_run, "--weights", tmp_path / "junk.npz")
    assert result.exit_code == 2 and "junk.npz: cannot read the weights" in result.output


def test_evaluate_a_folder_that_is_not_a_run(tmp_path):
    result = invoke("evaluate", tmp_path)
    assert result.exit_code == 2 and "not a run folder" in result.output


# --- predict --------------------------------------------------------------------------------

def test_predict_to_npz_and_csv_in_small_batches(trained_run, tmp_path):
    x = np.random.default_rng(2).random((37, 4), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", x=x)
    header = ",".join(f"f{i}" for i in range(4))
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", fmt="%.9g", header=header, comments="")
    expected = load_trained(trained_run).model.predict(x, batch_size=8)
    for source in ("x.npy", "x.npz", "x.csv"):
        for target in ("p.npz", "p.csv"):
            out = tmp_path / f"{source}-{target}"
            result = invoke("predict", trained_run, "--input", tmp_path / source,
                            "--output", out, "--batch-size", "8")
            assert result.exit_code == 0, result.output
            assert "wrote 37 predictions" in result.output and "dense_1 (37, 3)" in result.output
            if target.endswith(".npz"):
                with np.load(out) as got:
                    assert got.files == ["dense_1"]
                    np.testing.assert_array_equal(got["dense_1"], expected)
            else:
                lines = out.read_text().splitlines()
                assert lines[0] == "dense_1_0,dense_1_1,dense_1_2" and len(lines) == 38
                got = np.loadtxt(out, delimiter=",", skiprows=1, dtype=np.float32)
                np.testing.assert_array_equal(got, expected)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_predict_multi_output_writes_one_array_per_output(tmp_path):
    config = write(tmp_path, MULTI_IO)
    result = invoke("train", config, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(tmp_path / "runs")
    rng = np.random.default_rng(0)
    a, b = rng.random((11, 3), dtype=np.float32), rng.random((11, 2), dtype=np.float32)
    np.savez(tmp_path / "in.npz", a=a, b=b)
    model = load_trained(run).model
    p, q = model.predict({"a": a, "b": b}, batch_size=4)
    result = invoke("predict", run, "-i", tmp_path / "in.npz", "-o", tmp_path / "out.npz",
                    "--batch-size", "4")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "out.npz") as got:
        assert sorted(got.files) == ["first", "second"]
        np.testing.assert_array_equal(got["first"], p)
        np.testing.assert_array_equal(got["second"], q)
    result = invoke("predict", run, "-i", tmp_path / "in.npz", "-o", tmp_path / "out.csv",
                    "--batch-size", "4")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "first_0,first_1,second_0" and len(lines) == 12
    got = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1, dtype=np.float32)
    np.testing.assert_array_equal(got, np.concatenate([p, q], axis=1))
    # a single .npy or a CSV cannot feed two inputs
    np.save(tmp_path / "a.npy", a)
    result = invoke("predict", run, "-i", tmp_path / "a.npy", "-o", tmp_path / "o.npz")
    assert result.exit_code == 2 and "2 inputs" in result.output


def test_predict_reports_bad_inputs(trained_run, tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,c,d\n1,2,3,4\n1,2,x,4\n")
    result = invoke("predict", trained_run, "-i", tmp_path / "bad.csv", "-o", tmp_path / "o.csv")
    assert result.exit_code == 2
    assert "bad.csv: row 3, column 3: 'x' is not a number" in result.output
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob(".o.csv*"))
    (tmp_path / "short.csv").write_text("1,2,3\n")
    result = invoke("predict", trained_run, "-i", tmp_path / "short.csv", "-o", tmp_path / "o.csv")
    assert result.exit_code == 2 and "row 1 has 3 values" in result.output
    np.save(tmp_path / "x.npy", np.zeros((5, 7), np.float32))
    result = invoke("predict", trained_run, "-i", tmp_path / "x.npy", "-o", tmp_path / "o.npz")
    assert result.exit_code == 2 and "(5, 7)" in result.output and "(4,)" in result.output
    result = invoke("predict", trained_run, "-i", tmp_path / "x.npy", "-o", tmp_path / "o.txt")
    assert result.exit_code == 2 and "--output takes an .npz or .csv file" in result.output


# --- runs -----------------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_lists_finished_failed_and_stale_running(tmp_path):
    root = tmp_path / "runs"
    assert invoke("train", write(tmp_path, SEQUENTIAL), "--output-dir", root).exit_code == 0
    nan = SEQUENTIAL.replace("lr: 0.1", "lr: 1.0e+30").replace(
        "categorical_crossentropy", "mse").replace("softmax", "linear").replace("name: seq",
                                                                                "name: nan")
    assert invoke("train", write(tmp_path, nan, "nan.yaml"), "--output-dir", root).exit_code == 1
    # a run whose process died without a word, and one whose process is alive (this one)
    assert invoke("train", write(tmp_path, SEQUENTIAL.replace("name: seq", "name: stale"),
                                 "stale.yaml"), "--output-dir", root).exit_code == 0
    (stale,) = (root / "stale").iterdir()
    live = root / "stale" / "99999999-000000"
    live.mkdir()
    for folder, pid in ((stale, _dead_pid()), (live, os.getpid())):
        status = json.loads((stale / "status.json").read_text())
        (folder / "status.json").write_text(json.dumps({**status, "status": "running",
                                                        "pid": pid}))
    result = invoke("runs", root, "--json")
    assert result.exit_code == 0, result.output
    listed = {f"{r['name']}/{Path(r['path']).name}": r for r in json.loads(result.stdout)}
    by_status = {r["name"] + ("/live" if r["path"].endswith("99999999-000000") else ""):
                 r["status"] for r in listed.values()}
    assert by_status == {"seq": "finished", "nan": "failed", "stale": "interrupted",
                         "stale/live": "running"}
    seq = next(r for r in listed.values() if r["name"] == "seq")
    rows = [json.loads(l) for l in (Path(seq["path"]) / "metrics.jsonl").read_text().splitlines()]
    assert seq["epochs"] == 2 and seq["planned"] == 2
    assert seq["main"] == {"name": "loss", "best": min(r["loss"] for r in rows),
                           "final": rows[-1]["loss"]}
    assert seq["accuracy"]["name"] == "accuracy"
    assert seq["accuracy"]["best"] == max(r["accuracy"] for r in rows)
    failed = next(r for r in listed.values() if r["name"] == "nan")
    assert "not finite" in failed["error"]
    table = invoke("runs", root)
    assert table.exit_code == 0, table.output
    for word in ("finished", "failed", "interrupted", "running", "seq/", "2/2", "accuracy"):
        assert word in table.output, word


def test_runs_prefers_validation_loss(tmp_path):
    text = SEQUENTIAL.replace("fit: {epochs: 2,", "fit: {validation_split: 0.25, epochs: 2,")
    assert invoke("train", write(tmp_path, text), "--output-dir", tmp_path / "r").exit_code == 0
    (info,) = json.loads(invoke("runs", tmp_path / "r", "--json").stdout)
    assert info["main"]["name"] == "val_loss" and info["accuracy"]["name"] == "val_accuracy"


def test_runs_of_an_empty_folder(tmp_path):
    result = invoke("runs", tmp_path / "none")
    assert result.exit_code == 0 and "no run folders" in result.output
    assert json.loads(invoke("runs", tmp_path / "none", "--json").stdout) == []


# --- progress -------------------------------------------------------------------------------

def test_log_format_json_prints_one_object_per_epoch_and_nothing_else(tmp_path):
    result = invoke("train", write(tmp_path, SEQUENTIAL), "fit.epochs=3", "--log-format", "json",
                    "--output-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    test = records.pop()  # after the epochs, the test results (issue 16)
    assert set(test) == {"test"} and "loss" in test["test"]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert all(r["epochs"] == 3 and "loss" in r and "accuracy" in r and r["seconds"] >= 0
               for r in records)
    (run,) = run_dirs(tmp_path / "runs")
    logged = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in records] == [r["loss"] for r in logged]
    assert "Run folder:" in result.stderr and "Test: loss" in result.stderr


def test_quiet_prints_only_the_final_lines(tmp_path):
    result = invoke("train", write(tmp_path, SEQUENTIAL), "--quiet",
                    "--output-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Test: loss") and lines[1].startswith("Run folder: ")


def test_ctrl_c_stops_cleanly_and_keeps_the_run_folder(tmp_path, monkeypatch):
    from kconf.train.runs import RunRecorder

    record = RunRecorder.on_epoch_end

    def interrupt_after_first_epoch(self, epoch, logs=None):
        record(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunRecorder, "on_epoch_end", interrupt_after_first_epoch)
    result = invoke("train", write(tmp_path, SEQUENTIAL), "--output-dir", tmp_path / "runs")
    assert result.exit_code == 130, result.output
    (run,) = run_dirs(tmp_path / "runs")
    assert f"interrupted: the run folder keeps everything written so far: {run}" in result.output
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    with np.load(run / "weights.npz") as weights:
        assert "dense/kernel" in weights.files
    (info,) = json.loads(invoke("runs", tmp_path / "runs", "--json").stdout)
    assert info["status"] == "interrupted" and info["epochs"] == 1
