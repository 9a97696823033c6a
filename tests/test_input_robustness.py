"""Issue 16: nothing a user types ends in a traceback, a hang or a damaged run.

Each row of the issue's table is a test here: data that cannot train is refused by
``validate`` and at the start of ``train``/``evaluate``; one writer per run folder; a finished
run resumes only with more epochs; YAML reading is bounded (aliases, depth, size, time); output
paths are checked before any work.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from kconf.cli import app
from kconf.config.source import parse_yaml
from kconf.train.lock import LOCK_FILE, RunLock, RunLocked

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str):
    """``kconf ARGS`` in-process; the result with stdout and stderr together."""
    return CliRunner().invoke(app, [str(a) for a in args])


def npz_config(tmp_path: Path, loss: str = "sparse_categorical_crossentropy",
               extra: str = "", **arrays) -> Path:
    """A 3-class model fed from an .npz holding ``arrays``."""
    np.savez(tmp_path / "d.npz", **arrays)
    path = tmp_path / "c.yaml"
    path.write_text(f"""name: c
model:
  sequential:
    - Dense: {{units: 3, activation: softmax, input_dim: 4}}
compile: {{optimizer: adam, loss: {loss}}}
data:
  train: {{npz: {{path: d.npz}}}}
  test: {{npz: {{path: d.npz}}}}{extra}
fit: {{epochs: 1, batch_size: 4}}
""")
    return path


GOOD_X = np.arange(32, dtype=np.float32).reshape(8, 4) / 32
GOOD_Y = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def refused_everywhere(tmp_path: Path, path: Path, *needles: str) -> None:
    """validate and train both exit 2 with one located line, no traceback, no run folder."""
    for command in (["validate", path], ["train", path, "--output-dir", tmp_path / "runs"]):
        result = run(*command)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        for needle in needles:
            assert needle in result.output, result.output
    assert not (tmp_path / "runs").exists()  # refused before any folder was made


# --- point 1: data checks ------------------------------------------------------------------

def test_validation_split_that_leaves_nothing_to_train_on_is_refused(tmp_path):
    config = ROOT / "configs" / "mlp_softmax.yaml"
    result = run("validate", config, "fit.validation_split=0.9999")
    assert result.exit_code == 2
    assert "leaves none to train on" in result.output
    assert "mlp_softmax.yaml:" in result.output
    result = run("train", config, "fit.validation_split=0.9999", "--output-dir",
                 tmp_path / "runs")
    assert result.exit_code == 2 and "leaves none to train on" in result.output
    assert not (tmp_path / "runs").exists()
    assert run("validate", config, "fit.validation_split=0.5").exit_code == 0


def test_an_npz_with_no_samples_is_refused(tmp_path):
    path = npz_config(tmp_path, x=np.zeros((0, 4), np.float32), y=np.zeros((0,), np.int64))
    refused_everywhere(tmp_path, path, "c.yaml:8:", "the train data has no samples")


def test_sparse_labels_outside_the_classes_are_refused_naming_file_and_array(tmp_path):
    y = GOOD_Y.copy()
    y[3] = 7
    path = npz_config(tmp_path, x=GOOD_X, y=y)
    refused_everywhere(tmp_path, path, "d.npz: array 'y'", "label 7",
                       "outside the model's classes [0, 3)")


def test_evaluate_data_with_bad_labels_names_the_file(tmp_path):
    path = npz_config(tmp_path, x=GOOD_X, y=GOOD_Y)
    assert run("train", path, "-q", "--output-dir", tmp_path / "runs").exit_code == 0
    run_dir = next((tmp_path / "runs" / "c").iterdir())
    y = GOOD_Y.copy()
    y[0] = -1
    np.savez(tmp_path / "bad.npz", x=GOOD_X, y=y)
    result = run("evaluate", run_dir, "--data", tmp_path / "bad.npz")
    assert result.exit_code == 2, result.output
    assert "bad.npz" in result.output and "label -1" in result.output
    assert "Traceback" not in result.output
    np.savez(tmp_path / "frac.npz", x=GOOD_X, y=GOOD_Y + 0.5)
    result = run("evaluate", run_dir, "--data", tmp_path / "frac.npz")
    assert result.exit_code == 2 and "integer class labels" in result.output


def test_object_and_string_arrays_are_refused(tmp_path):
    objects = np.empty((8, 4), dtype=object)
    objects[:] = 1.0
    np.savez(tmp_path / "d.npz", x=objects, y=GOOD_Y)
    path = npz_config(tmp_path, x=objects, y=GOOD_Y)
    refused_everywhere(tmp_path, path, "Python objects")
    path = npz_config(tmp_path, x=np.full((8, 4), "a"), y=GOOD_Y)
    refused_everywhere(tmp_path, path, "d.npz: array 'x' holds strings")


def test_nan_inputs_are_refused_unless_allowed(tmp_path):
    x = GOOD_X.copy()
    x[5, 2] = np.nan
    x[6, 0] = np.inf
    path = npz_config(tmp_path, x=x, y=GOOD_Y)
    refused_everywhere(tmp_path, path, "2 NaN or infinite values (the first in sample 5)",
                       "data.allow_nan")
    allowed = npz_config(tmp_path, extra="\n  allow_nan: true", x=x, y=GOOD_Y)
    result = run("validate", allowed)
    assert result.exit_code == 0, result.output


def test_good_npz_data_passes(tmp_path):
    path = npz_config(tmp_path, x=GOOD_X, y=GOOD_Y)
    result = run("validate", path)
    assert result.exit_code == 0, result.output


def test_a_run_that_fails_for_any_reason_says_failed_with_the_reason(tmp_path, monkeypatch):
    import kconf.train.loop as loop

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(loop, "train_step", broken)
    path = npz_config(tmp_path, x=GOOD_X, y=GOOD_Y)
    result = run("train", path, "-q", "--output-dir", tmp_path / "runs")
    assert result.exit_code == 1
    assert "training failed: RuntimeError: disk on fire" in result.output
    run_dir = next((tmp_path / "runs" / "c").iterdir())
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed"
    assert status["error"] == "RuntimeError: disk on fire"
    assert "disk on fire" in (run_dir / "error.txt").read_text()
    assert not (run_dir / LOCK_FILE).exists()  # the lock is given back


# --- point 2: one writer per run folder; resume --------------------------------------------

def trained_run(tmp_path: Path, epochs: int = 2) -> Path:
    path = npz_config(tmp_path, x=GOOD_X, y=GOOD_Y)
    result = run("train", path, "-q", f"fit.epochs={epochs}", "--output-dir",
                 tmp_path / "runs")
    assert result.exit_code == 0, result.output
    return next((tmp_path / "runs" / "c").iterdir())


def test_resume_of_a_finished_run_needs_more_epochs(tmp_path):
    run_dir = trained_run(tmp_path)
    before = json.loads((run_dir / "status.json").read_text())
    result = run("train", "--resume", run_dir)
    assert result.exit_code == 2
    assert "this run is finished (2 epochs)" in result.output
    assert "fit.epochs=" in result.output
    assert json.loads((run_dir / "status.json").read_text()) == before  # untouched

    result = run("train", "--resume", run_dir, "fit.epochs=4", "-q")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    after = json.loads((run_dir / "status.json").read_text())
    assert after["status"] == "finished" and after["epochs_completed"] == 4
    assert after["started"] == before["started"]  # resuming does not move the start
    assert yaml.safe_load((run_dir / "resolved.yaml").read_text())["fit"]["epochs"] == 4
    assert yaml.safe_load((run_dir / "overrides.yaml").read_text())["fit.epochs"] == 4

    result = run("train", "--resume", run_dir, "--epochs", "3")
    assert result.exit_code == 2 and "asks for no more epochs" in result.output


def test_resume_refuses_other_overrides_by_name(tmp_path):
    run_dir = trained_run(tmp_path)
    result = run("train", "--resume", run_dir, "fit.epochs=5", "compile.optimizer=sgd")
    assert result.exit_code == 2
    assert "'compile.optimizer' cannot change when a run is resumed" in result.output
    result = run("train", "--resume", run_dir, "--batch-size", "2")
    assert result.exit_code == 2 and "'fit.batch_size'" in result.output


def test_a_second_writer_is_refused_while_the_first_lives(tmp_path):
    run_dir = trained_run(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / LOCK_FILE).write_text(json.dumps(
            {"pid": holder.pid, "host": socket.gethostname(), "started": time.time()}))
        before = (run_dir / "metrics.jsonl").read_text()
        result = run("train", "--resume", run_dir, "fit.epochs=4")
        assert result.exit_code == 2
        assert f"being written by process {holder.pid}" in result.output
        assert (run_dir / "metrics.jsonl").read_text() == before
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over, with a message
    result = run("train", "--resume", run_dir, "fit.epochs=3", "-q")
    assert result.exit_code == 0, result.output
    assert f"took over the lock of process {holder.pid}" in result.output
    assert not (run_dir / LOCK_FILE).exists()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere",
                                                  "started": 0}))
    with pytest.raises(RunLocked, match="host 'elsewhere'"):
        RunLock.acquire(tmp_path)
    (tmp_path / LOCK_FILE).unlink()
    lock = RunLock.acquire(tmp_path)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_two_trainings_resuming_one_folder_at_once_leave_it_consistent(tmp_path):
    run_dir = trained_run(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "kconf.cli", "train", "--resume", str(run_dir),
               "fit.epochs=40", "-q"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outputs  # one trains; the other is refused while it does, or
    refused = outputs[[p.returncode for p in procs].index(2)]  # finds the 40 epochs done
    assert "being written by process" in refused or "asks for no more epochs" in refused
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 41))


# --- point 3: bounded parsing --------------------------------------------------------------

def laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        name, prev = chr(ord("a") + i), chr(ord("a") + i - 1)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_at_once(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs())
    started = time.perf_counter()
    result = run("validate", path)
    assert result.exit_code == 2
    assert "laughs.yaml:1:1: the aliases (*name) of this file expand to" in result.output
    assert time.perf_counter() - started < 10


def test_aliases_keep_positions_by_reference():
    text = "defaults: &d {units: -1, activation: relu}\nother: *d\nlist: [*d, *d]\n"
    parsed = parse_yaml(text, "a.yaml")
    assert parsed.data["other"] == {"units": -1, "activation": "relu"}
    assert parsed.data["other"] is not parsed.data["defaults"]  # copies, not shared
    # an error under an alias is located where the anchored value is written
    assert str(parsed.source.locate(("other", "units"))) == "a.yaml:1:22"
    assert str(parsed.source.locate(("list", 1, "activation"))) == "a.yaml:1:38"
    assert str(parsed.source.locate(("other",))) == "a.yaml:1:11"  # the anchored value


def test_an_alias_error_in_a_config_is_reported_at_the_anchor(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("""name: c
dense: &dense {units: -3}
model:
  sequential:
    - Dense: {units: 3, input_dim: 4}
    - Dense: *dense
compile: {optimizer: adam, loss: mse}
data:
  train: {random: {samples: 8, x: [4], y: [-3]}}
""")
    result = run("validate", path)
    assert result.exit_code == 2
    assert "c.yaml:2:23: model.sequential[1].Dense.units" in result.output


def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\nmodel: " + "[" * 1000 + "]" * 1000 + "\n")
    result = run("validate", path)
    assert result.exit_code == 2
    assert "nested deeper than 100 levels" in result.output
    assert "Traceback" not in result.output and "RecursionError" not in result.output
    block = tmp_path / "block.yaml"
    block.write_text("".join("  " * i + f"k{i}:\n" for i in range(150)))
    result = run("validate", block)
    assert result.exit_code == 2 and "nested deeper than 100 levels" in result.output


def test_the_depth_limit_is_configurable(tmp_path, monkeypatch):
    text = "a: " + "[" * 50 + "]" * 50 + "\n"
    assert not parse_yaml(text, "x.yaml").fatal
    monkeypatch.setenv("KCONF_MAX_CONFIG_DEPTH", "20")
    parsed = parse_yaml(text, "x.yaml")
    assert parsed.fatal and "deeper than 20 levels" in parsed.problems[0].message


def test_the_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_text("name: big\njunk:\n" + "".join(f"  - {i}\n" for i in range(250_000)))
    monkeypatch.setenv("KCONF_MAX_CONFIG_MB", "1")
    result = run("validate", path)
    assert result.exit_code == 2
    assert "big.yaml: the file is 2.5 MiB, more than the 1 MiB a config may be" in result.output
    assert "KCONF_MAX_CONFIG_MB" in result.output


def test_reading_is_linear_and_about_as_fast_as_safe_load():
    # a list under an unknown key, the case (there 6 MB took 66 s); ratio, not seconds
    text = "name: x\njunk:\n" + "".join(f"  - {{a: {i}, b: [x, {i}]}}\n" for i in range(20_000))
    started = time.perf_counter()
    yaml.safe_load(text)
    safe = time.perf_counter() - started
    started = time.perf_counter()
    parsed = parse_yaml(text, "x.yaml")
    ours = time.perf_counter() - started
    assert len(parsed.data["junk"]) == 20_000
    assert ours < 2.0 * safe + 0.5, (ours, safe)
    double = text + "".join(f"  - {{a: {i}, b: [x, {i}]}}\n" for i in range(20_000))
    started = time.perf_counter()
    parse_yaml(double, "x.yaml")
    assert time.perf_counter() - started < 3.5 * ours + 0.5  # twice the text: about twice


def test_syntax_errors_keep_the_pure_loaders_messages():
    parsed = parse_yaml("a: b: c\n", "x.yaml")
    assert parsed.fatal
    assert parsed.problems[0].format() == "x.yaml:1:5: invalid YAML: mapping values are not " \
                                          "allowed here"


# --- point 4: output paths ----------------------------------------------------------------

def test_schema_into_a_missing_folder_creates_it_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("schema")
    assert result.exit_code == 0, result.output
    assert "created folder schemas" in result.output
    assert json.loads((tmp_path / "schemas" / "kconf.schema.json").read_text())
    result = run("schema", "-o", "a/b/s.json")
    assert result.exit_code == 0 and "created folder a/b" in result.output


def test_an_output_under_a_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = run("schema", "-o", tmp_path / "afile" / "s.json")
    assert result.exit_code == 2 and "is a file, not a folder" in result.output
    result = run("train", ROOT / "configs" / "mlp_softmax.yaml", "--output-dir",
                 tmp_path / "afile")
    assert result.exit_code == 2
    assert result.output.strip() == f"{tmp_path / 'afile'}: is a file, not a folder"
    result = run("schema", "-o", tmp_path)
    assert result.exit_code == 2 and "is a folder; give a file name" in result.output


def test_predict_creates_its_output_folder_like_graph(tmp_path):
    run_dir = trained_run(tmp_path)
    np.save(tmp_path / "x.npy", GOOD_X)
    out = tmp_path / "new" / "p.npz"
    result = run("predict", run_dir, "-i", tmp_path / "x.npy", "-o", out)
    assert result.exit_code == 0, result.output
    assert "created folder" in result.output and out.is_file()
    result = run("graph", ROOT / "configs" / "mlp_softmax.yaml", "-o", tmp_path / "g" / "m")
    assert result.exit_code == 0 and "created folder" in result.output


def test_no_permission_is_one_line(tmp_path, monkeypatch):
    real = os.access

    def no_writes(path, mode, *args, **kwargs):
        return False if mode & os.W_OK else real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", no_writes)
    result = run("plot", tmp_path, "-o", tmp_path / "plots")
    assert result.exit_code == 2
    assert result.output.strip() == f"{tmp_path / 'plots'}: no permission to write in {tmp_path}"


# --- point 6 ------------------------------------------------------------------------------

def test_validate_takes_overrides_and_names_them():
    config = ROOT / "configs" / "mlp_softmax.yaml"
    result = run("validate", config, "fit.epochs=3")
    assert result.exit_code == 0, result.output
    result = run("validate", config, "compile.optimizer.SGD.lrr=0.1")
    assert result.exit_code == 2
    assert result.output.startswith("override 'compile.optimizer.SGD.lrr=0.1'")


def test_a_problem_an_override_caused_in_the_file_names_the_override():
    config = ROOT / "configs" / "mlp_softmax.yaml"
    result = run("validate", config, "compile.optimizer.Adam.lr=0.1")
    assert result.exit_code == 2
    assert "mlp_softmax.yaml:13:14: compile.optimizer:" in result.output
    assert "(with override 'compile.optimizer.Adam.lr=0.1')" in result.output


def test_a_yaml_error_in_an_override_value_reads_as_one():
    config = ROOT / "configs" / "mlp_softmax.yaml"
    result = run("validate", config, "fit.epochs=[1,")
    assert result.exit_code == 2
    assert result.output.startswith("override 'fit.epochs=[1,': the value is not valid YAML")
    assert "quote the whole value" in result.output
    # a value that is not YAML but not meant as YAML either stays text
    result = run("validate", config, "name=a: b")
    assert result.exit_code == 2 and "not valid YAML" not in result.output


def test_runs_shows_why_a_run_failed(tmp_path):
    run_dir = tmp_path / "runs" / "c" / "20260101-000000"
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps(
        {"status": "failed", "error": "RuntimeError: disk [on] fire\nmore"}))
    result = run("runs", tmp_path / "runs")
    assert result.exit_code == 0
    assert "c/20260101-000000 failed: RuntimeError: disk [on] fire" in result.output
    assert "more" not in result.output


def test_the_progress_eta_covers_the_epoch_and_the_run():
    from kconf.report.progress import eta_text

    assert eta_text(0.0, 0, 10, 3, []) == ""
    # 2 of 10 steps in 4 s: 16 s left in the epoch; 3 more epochs at 20 s each
    assert eta_text(4.0, 2, 10, 3, []) == "eta 0:16 (run 1:16)"
    # finished epochs' mean (30 s) sets the pace of the epochs left
    assert eta_text(4.0, 2, 10, 2, [25.0, 35.0]) == "eta 0:16 (run 1:16)"
    assert eta_text(3600.0, 1, 2, 0, []) == "eta 1:00:00 (run 1:00:00)"


def test_log_format_json_prints_the_test_results_as_json(tmp_path):
    path = npz_config(tmp_path, x=GOOD_X, y=GOOD_Y)
    result = CliRunner().invoke(app, ["train", str(path), "--log-format", "json",
                                      "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines[0]["epoch"] == 1
    assert set(lines[-1]) == {"test"} and "loss" in lines[-1]["test"]


def test_summary_says_multiple_for_a_shared_layer_of_several_shapes():
    result = run("summary", ROOT / "tests" / "fixtures" / "shared_multiple_shapes.yaml")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "shared (Dense)" in line)
    assert "multiple" in row
    lstm = run("summary", ROOT / "configs" / "shared_lstm.yaml")  # same shapes: the shape
    row = next(line for line in lstm.output.splitlines() if "(LSTM)" in line)
    assert "(None, 64)" in row and "multiple" not in row


def test_runs_lists_the_trials_of_sweeps(tmp_path):
    root = tmp_path / "runs"
    for part in ("mlp/20260101-000000", "sw/20260102-000000/trial_000",
                 "sw/20260102-000000/trial_001"):
        (root / part).mkdir(parents=True)
        (root / part / "status.json").write_text(json.dumps({"status": "finished"}))
    (root / "sw" / "20260102-000000" / "sweep.json").write_text("{}")
    listed = json.loads(run("runs", root, "--json").stdout)
    assert [(r["name"], Path(r["path"]).name) for r in listed] == [
        ("mlp", "20260101-000000"), ("sw/20260102-000000", "trial_000"),
        ("sw/20260102-000000", "trial_001")]
    listed = json.loads(run("runs", root / "sw" / "20260102-000000", "--json").stdout)
    assert [Path(r["path"]).name for r in listed] == ["trial_000", "trial_001"]
