"""Sweeps: the sweep file, trial expansion and validation, the local backend, resuming,
failing and stopped trials, the leaderboard, ``kconf sweep --dry-run`` and ``kconf sweeps``."""
from __future__ import annotations

import csv
import json
import os
import signal
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
from kconf.config import load_config
from kconf.errors import ConfigError
from kconf.sweep import TrialRecord, expand, leaderboard, list_sweeps, load_sweep, run_sweep
from kconf.sweep.asha import Asha
from kconf.sweep.config import sweep_json_schema
from kconf.sweep.folders import record_run_files
from kconf.sweep.trial import TrialResult
from kconf.train.listing import read_run
from kconf.train.run import prepare_run
from kconf.train.runs import read_metrics_rows

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def tiny_config(samples: int = 200, epochs: int = 2, batch_size: int = 32, units: int = 8,
                name: str = "tiny") -> dict:
    return {
        "name": name, "seed": 1,
        "model": {"sequential": [
            {"Dense": {"units": units, "activation": "relu", "input_dim": 6}},
            {"Dense": {"units": 3, "activation": "softmax"}}]},
        "compile": {"optimizer": {"SGD": {"lr": 0.1}}, "loss": "categorical_crossentropy",
                    "metrics": ["accuracy"]},
        "data": {"train": {"random": {"samples": samples, "x": [6], "classes": 3,
                                      "one_hot": True}},
                 "validation": {"random": {"samples": 48, "x": [6], "classes": 3,
                                           "one_hot": True}},
                 "test": {"random": {"samples": 48, "x": [6], "classes": 3, "one_hot": True}}},
        "fit": {"epochs": epochs, "batch_size": batch_size},
    }


def write(folder: Path, name: str, data) -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def the_folder(output: Path, name: str) -> Path:
    (folder,) = (output / name).iterdir()
    return folder


def rows_of(run_dir: Path) -> list[dict]:
    """The complete rows of a run's metrics.jsonl (one being written is left out)."""
    return read_metrics_rows(run_dir)


def status_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def trial_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "trial.json").read_text())


GRID = """\
name: grid
base: tiny.yaml
parameters:
  compile.optimizer.SGD.lr: [0.3, 0.001]
  fit.batch_size: [16, 64]
metric: val_loss
mode: min
resources: {cpus: 1}
"""


# --- expansion ---------------------------------------------------------------------------------

def test_grid_goes_through_every_combination_in_file_order(tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())
    sweep = load_sweep(write(tmp_path, "s.yaml", """\
base: tiny.yaml
parameters:
  compile.optimizer.SGD.lr: [0.1, 0.01, 0.001]
  fit.batch_size: {grid_search: [32, 64]}
  fit.epochs: 3
metric: val_accuracy
mode: max
"""))
    trials = expand(sweep)
    assert [t.trial_id for t in trials] == [f"trial_{i:03d}" for i in range(6)]
    assert [(t.params["compile.optimizer.SGD.lr"], t.params["fit.batch_size"]) for t in trials] \
        == [(0.1, 32), (0.1, 64), (0.01, 32), (0.01, 64), (0.001, 32), (0.001, 64)]
    assert all(t.params["fit.epochs"] == 3 for t in trials)
    assert sweep.name == "s"  # the file's stem, as for a config
    # each value knows where it is written: the list item, the grid_search item
    assert trials[3].origins == {
        "compile.optimizer.SGD.lr": ("parameters", "compile.optimizer.SGD.lr", 1),
        "fit.batch_size": ("parameters", "fit.batch_size", "grid_search", 1),
        "fit.epochs": ("parameters", "fit.epochs")}
    pos = sweep.source.locate(trials[3].origins["compile.optimizer.SGD.lr"])
    assert (pos.line, pos.col) == (3, 35)


RANDOM = """\
base: tiny.yaml
parameters:
  compile.optimizer.SGD.lr: {{loguniform: [0.0001, 0.1]}}
  compile.optimizer.SGD.momentum: {{uniform: [0.5, 0.9]}}
  model.sequential.0.Dense.units: {{randint: [4, 6]}}
  seed: {{choice: [1, 2, 3]}}
  fit.batch_size: [16, 32]
search: {{random: {{trials: {trials}, seed: {seed}}}}}
metric: val_loss
mode: min
"""


def test_random_search_is_seeded_reproducible_and_within_its_spaces(tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())

    def trials(seed, count=20):
        path = write(tmp_path, f"r{seed}.yaml", RANDOM.format(trials=count, seed=seed))
        return expand(load_sweep(path))

    first = trials(7)
    assert len(first) == 40  # 20 samples x a grid of 2 batch sizes, as Ray Tune's num_samples
    assert [t.params for t in first] == [t.params for t in trials(7)]
    assert [t.params for t in first] != [t.params for t in trials(8)]
    assert [t.params["fit.batch_size"] for t in first[:4]] == [16, 32, 16, 32]
    lrs = [t.params["compile.optimizer.SGD.lr"] for t in first]
    assert all(1e-4 <= v < 0.1 for v in lrs) and isinstance(lrs[0], float)
    assert min(lrs) < 1e-3 < max(lrs)  # log-uniform: the decades are all visited
    assert all(0.5 <= t.params["compile.optimizer.SGD.momentum"] < 0.9 for t in first)
    units = {t.params["model.sequential.0.Dense.units"] for t in first}
    assert units == {4, 5}  # randint excludes its upper bound, as tune.randint
    assert {t.params["seed"] for t in first} == {1, 2, 3}
    # a drawn value is located at its space; a choice at the item drawn
    t = first[0]
    assert t.origins["compile.optimizer.SGD.lr"] == ("parameters", "compile.optimizer.SGD.lr",
                                                     "loguniform")
    assert t.origins["seed"] == ("parameters", "seed", "choice", [1, 2, 3].index(t.params["seed"]))


# --- the sweep file's own problems ---------------------------------------------------------------

def test_problems_of_the_sweep_file_are_located_all_at_once(tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())
    path = write(tmp_path, "s.yaml", """\
base: tiny.yaml
parameters:
  compile.optimizer.SGD.lr: {uniform: [0.1, 0.01]}
  fit..epochs: [1]
  fit.batch_size: {choise: [1, 2]}
  model.sequential.0.Dense.units: {randint: [1.5, 4]}
search: {random: {trials: 0}}
metric: val_loss
mode: maximum
scheduler: {asha: {grace_period: 3, max_t: 2}}
""")
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    file = str(path)
    assert [p.format() for p in info.value.problems] == [
        f"{file}:3:39: parameters.compile.optimizer.SGD.lr.uniform: low must be less than "
        "high, got [0.1, 0.01]",
        f"{file}:4:3: parameters.fit..epochs: expected a dotted path like the overrides of "
        "kconf train: compile.optimizer.SGD.lr, got 'fit..epochs'",
        f"{file}:5:20: parameters.fit.batch_size: unknown search space 'choise' (did you mean "
        "'choice'?)",
        f"{file}:6:45: parameters.model.sequential.0.Dense.units.randint: expected [low, high], "
        "two integers, got [1.5, 4]",
        f"{file}:7:27: search.random.trials: must be a positive integer, got 0",
        f"{file}:9:7: mode: unknown mode 'maximum' (did you mean 'max'?)",
        f"{file}:10:37: scheduler.asha.max_t: max_t (2) must be at least grace_period (3)",
    ]
    result = invoke("sweep", path)
    assert result.exit_code == 2 and "7 errors in" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()


def test_a_model_config_given_as_a_sweep_is_named_so(tmp_path):
    path = write(tmp_path, "tiny.yaml", tiny_config())
    result = invoke("sweep", path)
    assert result.exit_code == 2 and result.output.splitlines() == [
        f"{path}:1:1: this is a model config, not a sweep file; a sweep names it as its base: "
        "base: tiny.yaml, with parameters, metric and mode"]


def test_random_spaces_need_random_search_and_parameters_must_not_overlap(tmp_path):
    path = write(tmp_path, "s.yaml", """\
base: missing.yaml
parameters:
  compile.optimizer: [sgd, adam]
  compile.optimizer.SGD.lr: {loguniform: [0.001, 0.1]}
metric: val_loss
mode: min
""")
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    messages = [p.format() for p in info.value.problems]
    assert messages == [
        f"{path}:1:7: base: file not found: {tmp_path / 'missing.yaml'}",
        f"{path}:4:3: parameters.compile.optimizer.SGD.lr: overlaps the parameter "
        "'compile.optimizer' (line 3): one would overwrite the other; vary one of them",
        f"{path}:4:30: parameters.compile.optimizer.SGD.lr.loguniform: loguniform draws at "
        "random, which needs search: {random: {trials: 10, seed: 0}}; a grid takes a list of "
        "values",
    ]


# --- problems of generated trials ----------------------------------------------------------------

def test_a_bad_value_fails_the_dry_run_at_its_entry_in_the_sweep_file(tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())
    path = write(tmp_path, "s.yaml", """\
base: tiny.yaml
parameters:
  compile.optimizer.SGD.lr: [0.1, -0.5]
  model.sequential.-1.Dense.units: [3, 0]
metric: val_loss
mode: min
""")
    result = invoke("sweep", path, "--dry-run", "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    units = (f"{path}:4:40: parameters.model.sequential.-1.Dense.units[1]: must be a positive "
             "integer, got 0 (trial_00{}, at model.sequential[1].Dense.units)")
    lr = (f"{path}:3:35: parameters.compile.optimizer.SGD.lr[1]: must be a positive number, "
          "got -0.5 (trial_00{})")
    assert lines == [units.format(1), lr.format(2), units.format(3), lr.format(3),
                     f"4 errors in {path}"]
    assert not (tmp_path / "runs").exists()
    result = invoke("validate", path)  # kconf validate knows sweep files too
    assert result.exit_code == 2 and "(trial_002)" in result.output


def test_a_problem_every_trial_has_is_reported_once_at_the_parameter(tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())
    path = write(tmp_path, "s.yaml", """\
base: tiny.yaml
parameters:
  compile.optimizr.SGD.lr: [0.1, 0.01]
  fit.epochs: [1, 2]
metric: val_los
mode: min
""")
    result = invoke("sweep", path, "--output-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (
        f"{path}:3:3: parameters.compile.optimizr.SGD.lr: unknown key 'optimizr' (did you "
        "mean 'optimizer'?); valid keys: optimizer, loss, loss_weights, metrics, "
        "weighted_metrics")
    assert result.output.count("optimizr") == 2 and "(trial_" not in result.output
    assert not (tmp_path / "runs").exists()
    fixed = path.read_text().replace("optimizr", "optimizer")
    result = invoke("sweep", write(tmp_path, "s.yaml", fixed), "--dry-run")
    assert result.exit_code == 2 and result.output.splitlines() == [
        f"{path}:5:9: metric: 'val_los' is not logged; logged: loss, accuracy, val_loss, "
        "val_accuracy"]


def test_dry_run_lists_the_valid_trials_and_runs_nothing(tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())
    path = write(tmp_path, "grid.yaml", GRID)
    result = invoke("sweep", path, "--dry-run", "--workers", "2", "--output-dir",
                    tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert "All 4 trials are valid; 2 would run at once with 1 CPU each" in result.output
    for line in ("trial_000 │                      0.3 │             16 │      2",
                 "trial_003 │                    0.001 │             64 │      2"):
        assert line in result.output
    assert f"It would write {tmp_path / 'runs' / 'grid'}/<time>/" in result.output
    assert not (tmp_path / "runs").exists()


def test_the_example_sweeps_are_valid(tmp_path):
    for name, count in (("sweep_mlp", 6), ("sweep_digits", 8)):
        path = ROOT / "configs" / f"{name}.yaml"
        assert path.read_text().splitlines()[0] == (
            "# yaml-language-server: $schema=../schemas/kconf-sweep.schema.json")
        result = invoke("sweep", path, "--dry-run", "--output-dir", tmp_path)
        assert result.exit_code == 0, result.output
        assert f"All {count} trials are valid" in result.output


def test_committed_sweep_schema_is_up_to_date(tmp_path):
    committed = json.loads((ROOT / "schemas" / "kconf-sweep.schema.json").read_text())
    assert committed == sweep_json_schema(), (
        "schemas/kconf-sweep.schema.json is stale: run kconf schema --sweep")
    result = invoke("schema", "--sweep", "-o", tmp_path / "s.json")
    assert result.exit_code == 0 and json.loads((tmp_path / "s.json").read_text()) == committed
    assert committed["title"] == "kconf sweep" and set(committed["required"]) == {
        "base", "parameters", "metric", "mode"}


def test_the_sweep_schema_accepts_the_examples_and_refuses_mistakes():
    jsonschema = pytest.importorskip("jsonschema")
    schema = sweep_json_schema()
    for name in ("sweep_mlp", "sweep_digits"):
        jsonschema.validate(yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text()),
                            schema)
    for bad in ({"parameters": {"a": {"uniform": [1]}}}, {"parameters": {"a": {"Adam": {}}}},
                {"mode": "maxx"}, {"search": "random"}):
        data = {"base": "b.yaml", "parameters": {"fit.epochs": [1]}, "metric": "loss",
                "mode": "min", **bad}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, schema)


# --- the local backend ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """A 4-trial grid run by `kconf sweep` on two worker processes (read by several tests)."""
    tmp = tmp_path_factory.mktemp("grid")
    write(tmp, "tiny.yaml", tiny_config())
    path = write(tmp, "grid.yaml", GRID)
    result = invoke("sweep", path, "--workers", "2", "--output-dir", tmp / "runs")
    assert result.exit_code == 0, result.output
    return path, tmp / "runs", the_folder(tmp / "runs", "grid"), result.output


def test_local_backend_runs_each_trial_as_a_normal_run_in_parallel_workers(grid_sweep):
    path, _, folder, output = grid_sweep
    trials = sorted(p for p in folder.iterdir() if p.name.startswith("trial_"))
    assert [t.name for t in trials] == ["trial_000", "trial_001", "trial_002", "trial_003"]
    pids = set()
    for run_dir, (lr, batch) in zip(trials, [(0.3, 16), (0.3, 64), (0.001, 16), (0.001, 64)]):
        files = {p.name for p in run_dir.iterdir()}
        assert {"config.yaml", "resolved.yaml", "overrides.yaml", "metrics.jsonl",
                "weights.npz", "evaluation.json", "status.json", "trial.json",
                "checkpoints"} <= files
        assert yaml.safe_load((run_dir / "overrides.yaml").read_text()) == {
            "compile.optimizer.SGD.lr": lr, "fit.batch_size": batch}
        resolved = yaml.safe_load((run_dir / "resolved.yaml").read_text())
        assert resolved["fit"]["batch_size"] == batch
        assert resolved["compile"]["optimizer"]["SGD"]["learning_rate"] == lr
        assert [r["epoch"] for r in rows_of(run_dir)] == [1, 2]
        status = status_of(run_dir)
        assert status["status"] == "finished" and status["pid"] != os.getpid()
        pids.add(status["pid"])
        record = trial_json(run_dir)
        assert record["status"] == "finished" and record["history"] == rows_of(run_dir)
        assert record["node"]["hostname"] == socket.gethostname()
        assert record["node"]["ip"].count(".") == 3
        assert record["threads"] == 1  # resources.cpus: each worker's BLAS threads
    assert len(pids) == 2  # two worker processes shared the four trials
    # a trial folder is a run folder for the other commands
    result = invoke("evaluate", trials[1], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads((trials[1] / "evaluation.json").read_text())
    result = invoke("runs", folder, "--json")
    assert [r["status"] for r in json.loads(result.output)] == ["finished"] * 4


def test_the_leaderboard_ranks_trials_by_their_metric(grid_sweep):
    _, _, folder, output = grid_sweep
    last = {p.name: rows_of(p)[-1]["val_loss"] for p in folder.glob("trial_*")}
    expected = sorted(last, key=lambda t: (last[t], t))  # mode: min
    with open(folder / "leaderboard.csv") as f:
        table = list(csv.DictReader(f))
    assert [row["trial"] for row in table] == expected
    assert [row["rank"] for row in table] == ["1", "2", "3", "4"]
    assert [float(row["val_loss"]) for row in table] == [last[t] for t in expected]
    assert list(table[0])[:6] == ["rank", "trial", "status", "compile.optimizer.SGD.lr",
                                  "fit.batch_size", "val_loss"]
    markdown = (folder / "leaderboard.md").read_text().splitlines()
    assert [line.split(" | ")[1] for line in markdown[4:]] == expected
    assert f"Best: {expected[0]} val_loss {last[expected[0]]:.4f}" in output
    # run_sweep returns the same rows (a finished sweep is not run again)
    path, runs, _, _ = grid_sweep
    rows = run_sweep(path, output_dir=runs)
    assert [r.trial_id for r in rows] == expected and rows[0].rank == 1
    assert rows[0].value == last[expected[0]]


def test_running_a_finished_sweep_again_recomputes_nothing(grid_sweep):
    path, runs, folder, _ = grid_sweep
    files = sorted(p for p in folder.glob("trial_*/*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    result = invoke("sweep", path, "--output-dir", runs, "--quiet")
    assert result.exit_code == 0, result.output
    assert list((runs / "grid").iterdir()) == [folder]
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_kconf_sweeps_lists_the_sweep_with_its_best_trial(grid_sweep):
    _, runs, folder, _ = grid_sweep
    best = next(csv.DictReader(open(folder / "leaderboard.csv")))
    result = invoke("sweeps", runs, "--json")
    assert result.exit_code == 0, result.output
    (info,) = json.loads(result.output)
    assert info["path"] == str(folder) and info["status"] == "finished"
    assert info["trials"] == 4 and info["counts"] == {"finished": 4}
    assert info["best"]["trial_id"] == best["trial"]
    assert info["best"]["value"] == float(best["val_loss"])
    result = invoke("sweeps", runs)
    assert f"grid/{folder.name}" in result.output and best["trial"] in result.output
    assert "4: 4 finished" in result.output and "val_loss (min)" in result.output
    assert invoke("sweeps", runs / "nothing").output.startswith("no sweeps in")


def test_a_failing_trial_is_isolated_and_marked_failed(tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config())
    path = write(tmp_path, "fail.yaml", """\
name: fail
base: tiny.yaml
parameters:
  compile.optimizer.SGD.lr: [0.1, 1.0e+30, -1]
metric: val_loss
mode: min
""")
    rows = run_sweep(path, workers=2, output_dir=tmp_path / "runs")
    folder = the_folder(tmp_path / "runs", "fail")
    assert [(r.trial_id, r.status, r.rank) for r in rows] == [
        ("trial_000", "finished", 1), ("trial_001", "failed", None),
        ("trial_002", "failed", None)]
    assert "the loss became nan" in rows[1].error  # a NaN loss, met while training
    assert status_of(folder / "trial_001")["status"] == "failed"
    # a value that does not validate never runs; its error is located in the sweep file
    assert rows[2].error == (f"{path}:4:44: parameters.compile.optimizer.SGD.lr[2]: must be a "
                             "positive number, got -1 (trial_002)")
    assert [p.name for p in (folder / "trial_002").iterdir()] == ["trial.json"]
    assert status_of(folder / "trial_000")["status"] == "finished"
    with open(folder / "leaderboard.csv") as f:
        notes = [row["note"] for row in csv.DictReader(f)]
    assert notes[0] == "" and "nan" in notes[1] and "must be a positive number" in notes[2]


#: Two trials on tiny.yaml: a learning rate that learns and one that cannot (1e-9).
ASHA_SWEEP = """\
name: asha
base: tiny.yaml
parameters:
  compile.optimizer.SGD.lr: [0.5, 1.0e-9]
metric: loss
mode: min
scheduler: {asha: {grace_period: 1, reduction_factor: 2}}
"""


def test_asha_stops_a_clearly_bad_trial(tmp_path):
    write(tmp_path, "tiny.yaml", tiny_config(samples=400, epochs=3))
    path = write(tmp_path, "asha.yaml", ASHA_SWEEP)
    result = invoke("sweep", path, "--workers", "1", "--output-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    folder = the_folder(tmp_path / "runs", "asha")
    good, bad = folder / "trial_000", folder / "trial_001"
    assert [r["epoch"] for r in rows_of(good)] == [1, 2, 3]
    assert status_of(good)["status"] == "finished"
    assert [r["epoch"] for r in rows_of(bad)] == [1]  # stopped at the first rung
    status = status_of(bad)
    assert status["status"] == "stopped" and status["reason"].startswith(
        "ASHA: loss ") and "at the 1-epoch rung" in status["reason"]
    assert (bad / "evaluation.json").is_file() and (bad / "weights.npz").is_file()
    assert trial_json(bad)["status"] == "stopped"
    with open(folder / "leaderboard.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["trial"], r["status"], r["rank"]) for r in table] == [
        ("trial_000", "finished", "1"), ("trial_001", "stopped", "2")]
    assert "trial_001 stopped after 1 epoch: loss" in result.output


def test_asha_rungs_and_cutoffs_follow_ray_tunes_rules():
    asha = Asha("val_accuracy", "max", max_t=9, grace_period=1, reduction_factor=3)
    assert asha.milestones == [1, 3]
    assert asha.on_result("a", 1, 0.5) is None        # the first at a rung always continues
    assert asha.on_result("b", 1, 0.7) is None        # better than the cutoff of [0.5]
    assert asha.on_result("c", 1, 0.55) is not None   # below the 2/3 quantile of [0.5, 0.7]
    assert asha.on_result("a", 2, 0.1) is None        # no rung at epoch 2
    assert asha.on_result("a", 3, 0.6) is None
    reason = asha.on_result("b", 3, 0.59)             # below a's 0.6 at the 3-epoch rung
    assert reason.startswith("ASHA: val_accuracy 0.59 at epoch 3") and ">= 0.6" in reason
    assert asha.on_result("a", 9, 0.9) == "ASHA: reached max_t=9 epochs"
    low = Asha("val_loss", "min", max_t=4, grace_period=1, reduction_factor=2)
    assert low.on_result("a", 1, 0.5) is None and low.on_result("b", 1, 0.7) is not None
    assert low.on_result("c", 1, 0.4) is None  # lower is better
    # a resumed sweep puts back what was ranked, so a replayed report is not ranked again
    again = Asha("val_loss", "min", max_t=4, grace_period=1, reduction_factor=2)
    again.restore("a", [{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.45}])
    again.restore("b", [{"epoch": 1, "val_loss": 0.7}])
    assert again.rungs == {1: {"a": -0.5, "b": -0.7}, 2: {"a": -0.45}}
    assert again.on_result("b", 1, 0.7) is None


def test_the_driver_records_run_folders_and_ranks_from_results_alone(tmp_path):
    """What a backend without a shared filesystem relies on: plain results in, the run
    folder's summary files and the leaderboard out."""
    results = [
        TrialResult("trial_000", "finished",
                    history=[{"epoch": 1, "loss": 0.9, "val_loss": 0.8},
                             {"epoch": 2, "loss": 0.7, "val_loss": 0.6}],
                    evaluation={"loss": 0.61}, node={"hostname": "node-a", "ip": "10.213.0.2"},
                    started=1.0, ended=2.0),
        TrialResult("trial_001", "stopped",
                    history=[{"epoch": 1, "loss": 0.95, "val_loss": 0.9}], evaluation={"loss": 0.88}, stop_reason="ASHA: ...",
                    node={"hostname": "node-b", "ip": "10.213.0.1"}),
        TrialResult("trial_002", "failed", error="training stopped: the loss became nan"),
    ]
    wire = [TrialResult.from_json(json.loads(json.dumps(r.to_json()))) for r in results]
    records = []
    for i, result in enumerate(wire):
        record = TrialRecord(result.trial_id, i, {"fit.batch_size": 2 ** (i + 4)}, planned=2)
        record.apply(result)
        records.append(record)
        record_run_files(tmp_path / result.trial_id, result)
    info = read_run(tmp_path / "trial_000")
    assert (info.status, info.epochs, info.main.final) == ("finished", 2, 0.6)
    assert read_run(tmp_path / "trial_001").status == "stopped"
    assert status_of(tmp_path / "trial_000")["ip"] == "10.213.0.2"
    rows = leaderboard(records, "val_loss", "min")
    assert [(r.trial_id, r.rank, r.value, r.hostname) for r in rows] == [
        ("trial_000", 1, 0.6, "node-a"), ("trial_001", 2, 0.9, "node-b"),
        ("trial_002", None, None, None)]
    best = leaderboard(records, "val_loss", "max", scope="all")
    assert [(r.trial_id, r.value, r.epoch) for r in best][:2] == [
        ("trial_001", 0.9, 1), ("trial_000", 0.8, 1)]


# --- resuming ------------------------------------------------------------------------------------

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}


def sweep_command(path: Path, output: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "kconf.cli", "sweep", str(path), "--workers", str(workers),
            "--quiet", "--output-dir", str(output)]


def record_status(run_dir: Path) -> str | None:
    try:
        return trial_json(run_dir)["status"]
    except (OSError, ValueError):
        return None


def wait_until(proc: subprocess.Popen, ready, timeout: float = 120) -> bool:
    """Poll ``ready()`` while ``proc`` runs; True once it holds."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if ready():
            return True
        time.sleep(0.005)
    return False


def write_slow_sweep(tmp_path, epochs: int = 8):
    """Two trials of ``epochs`` epochs on 6,000 samples: long enough to interrupt; returns the
    sweep file's path."""
    write(tmp_path, "slow.yaml", tiny_config(samples=6000, epochs=epochs, batch_size=8,
                                             units=64, name="slow"))
    return write(tmp_path, "int.yaml", """\
name: int
base: slow.yaml
parameters:
  compile.optimizer.SGD.lr: [0.05, 0.01]
metric: val_loss
mode: min
""")


def test_ctrl_c_interrupts_the_running_trials_cleanly(tmp_path):
    path = write_slow_sweep(tmp_path)
    command = sweep_command(path, tmp_path / "runs", workers=2)
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def both_training():  # each with an epoch checkpointed
        return len(list((tmp_path / "runs").glob("int/*/trial_00[01]/checkpoints/last.npz"))) == 2

    assert wait_until(proc, both_training), "the trials ended before the interruption"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"carry on with: kconf sweep {path}" in stderr and "Traceback" not in stderr
    folder = the_folder(tmp_path / "runs", "int")
    for trial in ("trial_000", "trial_001"):
        run_dir = folder / trial
        assert status_of(run_dir)["status"] == "interrupted"  # saved by the trial itself
        assert record_status(run_dir) == "interrupted"
        assert trial_json(run_dir)["history"] == rows_of(run_dir)
    assert json.loads((folder / "sweep.json").read_text())["status"] == "interrupted"
    assert list_sweeps(tmp_path / "runs")[0].status == "interrupted"
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for trial in ("trial_000", "trial_001"):
        record = trial_json(folder / trial)
        assert record["status"] == "finished" and record["initial_epoch"] >= 1
        assert [r["epoch"] for r in rows_of(folder / trial)] == list(range(1, 9))


def test_a_killed_sweep_carries_on_where_it_stopped(tmp_path):
    base = tiny_config(samples=6000, epochs=8, batch_size=8, units=64, name="slow")
    write(tmp_path, "slow.yaml", base)
    path = write(tmp_path, "kill.yaml", """\
name: kill
base: slow.yaml
parameters:
  compile.optimizer.SGD.lr: [0.05, 0.02, 0.01, 0.005]
metric: val_loss
mode: min
""")
    command = sweep_command(path, tmp_path / "runs", workers=1)
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def third_training():
        found = list((tmp_path / "runs").glob("kill/*/trial_002/checkpoints/last.npz"))
        if not found:
            return False
        folder = found[0].parents[2]
        return (record_status(folder / "trial_001") == "finished"
                and record_status(folder / "trial_002") == "running"
                and 1 <= len(rows_of(folder / "trial_002")) <= 6)

    if wait_until(proc, third_training):
        os.kill(proc.pid, signal.SIGKILL)  # mid-epoch, or even mid-write
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    folder = the_folder(tmp_path / "runs", "kill")
    third = folder / "trial_002"
    worker = status_of(third)["pid"]
    for _ in range(500):  # the worker dies with its driver: no orphan writes on
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    else:
        pytest.fail("the worker outlived its driver")
    done = {t: {p: p.stat().st_mtime_ns for p in (folder / t).rglob("*") if p.is_file()}
            for t in ("trial_000", "trial_001")}
    epochs_before = len(rows_of(third))
    assert record_status(folder / "trial_003") is None  # not started yet

    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "runs" / "kill").iterdir()) == [folder]  # the same sweep folder
    for trial, mtimes in done.items():  # finished trials were not run again
        assert {p: p.stat().st_mtime_ns for p in (folder / trial).rglob("*")
                if p.is_file()} == mtimes
    record = trial_json(third)
    assert record["status"] == "finished"
    assert record["initial_epoch"] >= max(1, epochs_before - 1)  # from its last checkpoint
    assert [r["epoch"] for r in rows_of(third)] == list(range(1, 9))
    assert record["history"] == rows_of(third)
    # resumed from its checkpoint, it ends exactly as an uninterrupted run of the same trial
    cfg = load_config(tmp_path / "slow.yaml", overrides={"compile.optimizer.SGD.lr": 0.01})
    whole = prepare_run(cfg, tmp_path / "whole")
    whole.fit()
    with np.load(third / "weights.npz") as a, np.load(whole.run_dir / "weights.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert status_of(folder / "trial_003")["status"] == "finished"
    assert json.loads((folder / "sweep.json").read_text())["status"] == "finished"
    with open(folder / "leaderboard.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
