"""``kconf bench`` and ``bench/run.py`` on tiny configs: the result's keys and their consistency,
the CLI's JSON and errors, thread limits, lazy start-up. No timing thresholds: speed is
measured by the benchmarks, not asserted by unit tests.
"""
from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.bench import bench
from kconf.engine.threads import THREAD_VARIABLES, limit_threads
from kconf.cli import app
from kconf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

TINY = """\
name: tiny
seed: 0
model:
  sequential:
    - Dense: {units: 8, activation: relu, input_dim: 4}
    - Dense: {units: 1, activation: sigmoid}
compile:
  optimizer: sgd
  loss: binary_crossentropy
  metrics: [accuracy]
data:
  train: {random: {samples: 64, x: [4], classes: 2}}
  test: {random: {samples: 16, x: [4], classes: 2}}
fit: {epochs: 1, batch_size: 16}
"""
TINY_FORWARD_FLOPS = 2 * (4 * 8 + 8 * 1)

KEYS = {"config", "name", "epochs", "warmup", "samples", "batch_size", "steps_per_epoch",
        "epoch_seconds", "steady_epochs", "median_epoch_seconds", "samples_per_second",
        "peak_rss_mb", "epoch_rss_mb", "forward_flops_per_sample", "flops_per_epoch",
        "gflops_per_second", "threads", "threads_limited", "workers", "numpy_matmul_peak_gflops",
        "fraction_of_peak", "final_loss", "setup_seconds", "machine", "kconf_version",
        "unix_time"}


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(autouse=True)
def restore_thread_variables(monkeypatch):
    """``--threads`` writes the BLAS variables into os.environ; undo that after each test."""
    for name in THREAD_VARIABLES:
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)


def test_bench_returns_every_key_with_consistent_values(tiny):
    result = bench(tiny, epochs=3, warmup=1, peak_size=64)
    assert KEYS <= set(result)
    json.dumps(result)  # serialisable as it is
    assert result["epochs"] == 3 and result["samples"] == 64 and result["batch_size"] == 16
    assert result["steps_per_epoch"] == 4
    seconds = result["epoch_seconds"]
    assert len(seconds) == 3 and all(s > 0 for s in seconds)
    assert result["steady_epochs"] == 2
    assert result["median_epoch_seconds"] == statistics.median(seconds[1:])
    assert result["samples_per_second"] == pytest.approx(64 / result["median_epoch_seconds"])
    assert result["forward_flops_per_sample"] == TINY_FORWARD_FLOPS
    assert result["flops_per_epoch"] == 3 * TINY_FORWARD_FLOPS * 64
    assert result["gflops_per_second"] == pytest.approx(
        result["flops_per_epoch"] / result["median_epoch_seconds"] / 1e9)
    assert result["numpy_matmul_peak_gflops"] > 0
    assert result["fraction_of_peak"] == pytest.approx(
        result["gflops_per_second"] / result["numpy_matmul_peak_gflops"])
    assert result["peak_rss_mb"] > 0 and len(result["epoch_rss_mb"]) == 3
    assert result["threads"] >= 1
    assert np.isfinite(result["final_loss"])
    machine = result["machine"]
    assert machine["numpy"] == np.__version__ and machine["cpu_count"] >= 1


def test_without_steady_epochs_the_median_is_over_all(tiny):
    result = bench(tiny, epochs=2, warmup=5, peak_size=0)
    assert result["steady_epochs"] == 2
    assert result["median_epoch_seconds"] == statistics.median(result["epoch_seconds"])
    assert result["numpy_matmul_peak_gflops"] is None and result["fraction_of_peak"] is None


def test_samples_and_batch_size_override_the_config(tiny):
    result = bench(tiny, epochs=1, samples=40, batch_size=8, peak_size=0)
    assert result["samples"] == 40 and result["batch_size"] == 8
    assert result["steps_per_epoch"] == 5
    assert result["flops_per_epoch"] == 3 * TINY_FORWARD_FLOPS * 40


def test_samples_need_random_training_data(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 4), "f4"), y=np.zeros((10, 1), "f4"))
    path = tmp_path / "npz.yaml"
    path.write_text(TINY.replace("{random: {samples: 64, x: [4], classes: 2}}",
                                 "{npz: {path: d.npz, x: x, y: y}}"))
    with pytest.raises(ConfigError, match="'npz' data"):
        bench(path, epochs=1, samples=5, peak_size=0)
    assert bench(path, epochs=1, peak_size=0)["samples"] == 10  # as configured: fine
    result = runner.invoke(app, ["bench", str(path), "--samples", "5"])
    assert result.exit_code == 2
    assert f"{path}:12:" in result.output and "data.train.npz" in result.output
    assert "Traceback" not in result.output


def test_bad_arguments_are_value_errors(tiny):
    with pytest.raises(ValueError):
        bench(tiny, epochs=0)
    with pytest.raises(ValueError):
        limit_threads(0)


def test_cli_json_is_one_parseable_object(tiny):
    result = runner.invoke(app, ["bench", str(tiny), "--json", "--epochs", "2",
                                 "--samples", "32", "--peak-size", "0"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["samples"] == 32 and len(data["epoch_seconds"]) == 2
    assert data["flops_per_epoch"] == 3 * TINY_FORWARD_FLOPS * 32


def test_cli_table(tiny):
    result = runner.invoke(app, ["bench", str(tiny), "--epochs", "2", "--peak-size", "32"])
    assert result.exit_code == 0, result.output
    for text in ("seconds / epoch", "samples / s", "GFLOP/s", "peak RSS",
                 "NumPy float32 matmul peak", "64 × 2"):
        assert text in result.output, text


def test_cli_config_error_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(TINY.replace("units: 8", "units: -8"))
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2
    assert f"{path}:5:22: model.sequential[0].Dense.units:" in result.output


def test_threads_option_sets_the_blas_variables(tiny):
    result = runner.invoke(app, ["--threads", "1", "bench", str(tiny), "--json",
                                 "--epochs", "1", "--peak-size", "0"])
    assert result.exit_code == 0, result.output
    assert all(os.environ[name] == "1" for name in THREAD_VARIABLES)
    data = json.loads(result.stdout)
    # NumPy is loaded in this test process already: the limit cannot apply, and says so
    assert data["threads"] == 1 and data["threads_limited"] is False
    result = runner.invoke(app, ["train", "--help"])
    assert "--threads" in result.output


def test_threads_apply_in_a_fresh_process(tiny):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    proc = subprocess.run([sys.executable, "-m", "kconf.cli", "bench", str(tiny), "--json",
                           "--epochs", "1", "--peak-size", "0", "--threads", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["threads"] == 1 and data["threads_limited"] is True
    assert data["workers"] == 1  # a Dense model: no parallel blocks


def test_start_up_imports_no_numpy():
    code = ("import sys, kconf, kconf.cli, kconf.bench; "
            "assert 'numpy' not in sys.modules, 'numpy imported at start-up'; "
            "assert 'pydantic' not in sys.modules, 'pydantic imported at start-up'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "kconf.cli", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "bench" in proc.stdout


def test_help_renders_without_rich_markdown():
    """``kconf --help`` is click's plain help: typer's rich help imports rich.markdown and
    markdown-it (a third of the command's time; issue 13's start-up target)."""
    code = ("import sys\n"
            "from kconf.cli import app\n"
            "try:\n"
            "    app(['--help'], prog_name='kconf')\n"
            "except SystemExit as exit:\n"
            "    assert exit.code == 0, exit.code\n"
            "slow = {'typer.rich_utils', 'rich.markdown', 'markdown_it'} & set(sys.modules)\n"
            "assert not slow, slow\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: kconf [OPTIONS] COMMAND" in proc.stdout and "validate" in proc.stdout


def test_startup_bench_times_an_installed_kconf(tmp_path):
    out = tmp_path / "startup.md"
    proc = subprocess.run([sys.executable, "bench/startup.py", "--runs", "1", "--installed",
                           sys.executable, "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|")[1].strip() for line in out.read_text().splitlines()
            if line.startswith("| ") and "command" not in line]
    assert rows == ["python -c pass", "floor (numpy, pydantic, typer, rich, yaml)",
                    "kconf --help", "kconf validate configs/vgg.yaml",
                    "kconf --help (installed)", "kconf validate configs/vgg.yaml (installed)"]


def test_lazy_public_names():
    import kconf

    from kconf.api import build_model
    from kconf.model import Model

    assert kconf.build_model is build_model and kconf.Model is Model
    assert set(kconf.__all__) <= set(dir(kconf))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kconf.nope


# --- bench/run.py -------------------------------------------------------------------------

FAKE_REFERENCE = """\
import json, os, sys
workload = sys.argv[1]
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
backend = os.environ.get("KERAS_BACKEND")
print("some log line")
print(json.dumps({"workload": workload, "framework": FRAMEWORK, "version": "0.fake",
                  "samples": int(args["--n"]), "batch": int(args["--batch"]),
                  "threads": int(args["--threads"]),
                  "epoch_seconds": [9.0] + [SECONDS] * (int(args["--epochs"]) - 1)}))
"""


def test_run_py_help():
    proc = subprocess.run([sys.executable, "bench/run.py", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--ref-python" in proc.stdout and "--rounds" in proc.stdout


def test_run_py_interleaves_kconf_and_references(tmp_path):
    refs = tmp_path / "ref"
    refs.mkdir()
    (refs / "torch_ref.py").write_text(
        FAKE_REFERENCE.replace("FRAMEWORK", '"torch"').replace("SECONDS", "0.001"))
    (refs / "keras_ref.py").write_text(
        FAKE_REFERENCE.replace("FRAMEWORK", '"keras-" + backend').replace("SECONDS", "1000.0"))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--workloads", "mlp_binary", "--scale", "0.001",
         "--epochs", "2", "--rounds", "2", "--threads", "1", "--peak-size", "0",
         "--ref-python", sys.executable, "--ref-dir", str(refs), "--out-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["runner"] for r in records] == ["kconf", "torch", "keras-torch", "keras-jax"] * 2
    assert [r["round"] for r in records] == [1] * 4 + [2] * 4
    assert all(r["error"] is None for r in records)
    kconf_run = records[0]["result"]
    assert kconf_run["samples"] == 128 and kconf_run["batch_size"] == 128  # one batch minimum
    assert kconf_run["threads"] == 1 and kconf_run["threads_limited"] is True
    assert records[2]["result"]["framework"] == "keras-torch"  # KERAS_BACKEND passed on
    assert records[3]["result"]["framework"] == "keras-jax"
    assert records[1]["result"]["samples"] == 128 and records[1]["result"]["threads"] == 1
    table = (out / "results.md").read_text()
    assert "| workload | size | kconf s/epoch | torch s/epoch | keras-torch s/epoch |" in table
    row = next(line for line in table.splitlines() if line.startswith("| mlp_binary"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3].startswith("0.001 ") and cells[4].startswith("1e+03 ")
    kconf_median = statistics.median(
        [s for r in records if r["runner"] == "kconf" for s in r["result"]["epoch_seconds"][1:]])
    assert cells[6] == f"{kconf_median / 0.001:.2f}"  # ratio to the fastest reference


def _bench_script(monkeypatch, name):
    """A script of bench/ (not part of the package) imported as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, f"bench_{name}", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_run_py_table_notes_skipped_workloads_and_failures(monkeypatch):
    run = _bench_script(monkeypatch, "run")
    workloads = [w for w in run.WORKLOADS if w.name in ("vgg", "shared_lstm")]
    records = [{"workload": "vgg", "runner": "kconf", "round": 1, "error": None,
                "result": {"epoch_seconds": [3.0, 2.0, 4.0], "warmup": 1, "samples": 320,
                           "epochs": 3, "batch_size": 32, "flops_per_epoch": 300e9,
                           "numpy_matmul_peak_gflops": 130.0, "peak_rss_mb": 700.0}},
               {"workload": "vgg", "runner": "torch", "round": 1, "error": "exit status 1: x",
                "result": None}]
    table = run.markdown(records, workloads, ["kconf", "torch"],
                         {"shared_lstm": "configs/shared_lstm.yaml does not exist yet"}, "# t")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| workload")}
    cells = [c.strip() for c in rows["vgg"].strip("|").split("|")]
    assert cells == ["vgg", "320 × 3 ep, batch 32", "3 (2–4)", "failed", "-", "100.0", "130",
                     "700"]
    assert "skipped: configs/shared_lstm.yaml does not exist yet" in rows["shared_lstm"]
    assert rows["shared_lstm"].count("|") == rows["vgg"].count("|")
    assert "- vgg / torch (round 1): exit status 1: x" in table


def test_run_py_runs_issue_13_workloads_with_the_references_in_this_repository(monkeypatch):
    """resnet_small and transformer_classifier: their configs exist, and their reference
    scripts are bench/reference/'s (the shared folder holds only the first five)."""
    run = _bench_script(monkeypatch, "run")
    args = run.parse_args(["--workloads", "vgg,resnet_small,transformer_classifier",
                           "--ref-python", "python", "--ref-dir", "/elsewhere",
                           "--threads", "2"])
    by_name = {w.name: w for w in run.WORKLOADS}
    for name, config in (("resnet_small", "configs/resnet_small.yaml"),
                         ("transformer_classifier", "configs/transformer_text.yaml")):
        workload = by_name[name]
        assert workload.config == config and (ROOT / config).is_file()
        assert workload.batch_size == 32
        jobs = run.plan(args, workload)
        assert [j.runner for j in jobs] == ["kconf", "torch", "keras-torch", "keras-jax"]
        assert jobs[0].command[4] == config
        for job in jobs[1:]:
            script = Path(job.command[1])
            assert script.parent == ROOT / "bench" / "reference" and script.is_file()
            assert job.command[2] == name
    vgg_ref = run.plan(args, by_name["vgg"])[1].command[1]
    assert vgg_ref == "/elsewhere/torch_ref.py"


# --- bench/parallel_bound.py --------------------------------------------------------------

def test_parallel_bound_runs_two_half_batches_at_once_and_tables_the_medians(monkeypatch):
    bound = _bench_script(monkeypatch, "parallel_bound")
    # both record shapes: kconf bench's JSON and the reference scripts'
    assert bound.step_ms('log line\n{"median_epoch_seconds": 0.64, "steps_per_epoch": 16}') \
        == pytest.approx(40.0)
    assert bound.step_ms('{"median_steady_epoch_s": 1.28, "steps_per_epoch": 32}') \
        == pytest.approx(40.0)
    calls = []
    per_step = {("kconf", "32", "1"): 70.0, ("kconf", "32", "2"): 60.0,
                ("kconf", "16", "1"): 40.0, ("torch", "32", "1"): 64.0,
                ("torch", "32", "2"): 40.0, ("torch", "16", "1"): 34.0}

    def fake_run(commands):
        calls.append(commands)
        results = []
        for i, c in enumerate(commands):
            if "--thread-split" in c:  # this script again, in the mode that splits in threads
                assert c[1] == str(ROOT / "bench" / "parallel_bound.py")
                results.append(50.0)
                continue
            framework = "kconf" if "kconf.cli" in c else "torch"
            batch = c[c.index("--batch-size" if framework == "kconf" else "--batch") + 1]
            threads = c[c.index("--threads") + 1]
            results.append(per_step[framework, batch, threads] + i)  # the second is slower
        return results

    times = bound.measure(2, "/ref/python", run=fake_run)
    assert len(calls) == 14  # a round: three ways for both, the thread split for kconf
    together = [c for c in calls if len(c) == 2]  # the bound: two processes at once
    assert len(together) == 4 and all(c[0] == c[1] for c in together)
    assert all("16" in c[0] and c[0][c[0].index("--threads") + 1] == "1" for c in together)
    assert times["kconf", "bound"] == [41.0, 41.0]  # the slower of the two processes
    assert times["torch", "2 threads"] == [40.0, 40.0]
    assert times["kconf", "thread split"] == [50.0, 50.0]
    assert ("torch", "thread split") not in times
    text = bound.table(times)
    assert "| ms per 32 images | 1 thread | 2 threads | bound | thread split |" in text
    assert ("| kconf | 70.0 (70.0–70.0) | 60.0 (60.0–60.0) | 41.0 (41.0–41.0) "
            "| 50.0 (50.0–50.0) |") in text
    assert "| torch | 64.0 (64.0–64.0) | 40.0 (40.0–40.0) | 35.0 (35.0–35.0) | – |" in text
    assert "| kconf / torch | 1.09 | 1.50 | 1.17 | – |" in text
    assert text.endswith("kconf's bound against PyTorch's two threads: 1.02")


def test_step_profile_takes_the_batch_size_and_lists_no_layers_at_top_zero(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    command = [sys.executable, "bench/step_profile.py", str(config), "--steps", "2",
               "--threads", "1"]
    listed = subprocess.run(command + ["--top", "2"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("per step: wall ")
    assert len(listed.stdout.splitlines()) == 4  # the step, the header, two layers
    bare = subprocess.run(command + ["--top", "0", "--batch", "16"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert bare.returncode == 0, bare.stderr
    assert len(bare.stdout.splitlines()) == 1
    bad = subprocess.run(command + ["--batch", "0"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 and "batch_size" in bad.stderr


def test_parallel_bound_thread_split_trains_two_models_side_by_side():
    proc = subprocess.run([sys.executable, "bench/parallel_bound.py", "--thread-split"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(record["epoch_seconds"]) == 4 and record["steps_per_epoch"] == 16
    assert record["median_epoch_seconds"] == statistics.median(record["epoch_seconds"][1:])
    assert all(seconds > 0 for seconds in record["epoch_seconds"])
    first, second = record["losses"]  # each thread trained its own model on its own half
    assert 0 < first < 10 and 0 < second < 10 and first != second


def _app_row(model, backend, sgd_ok, **extra):
    return {"model": model, "backend": backend, "size": 96, "params": 1000, "import_ok": True,
            "predict_ok": True, "export_ok": True, "sgd_ok": sgd_ok, "predict_err": 1e-8,
            "export_err": 0.0, "keras_loss": 2.3, "loss_err": 1e-6, "weight_err": 1e-3,
            "step_rel": 1e-2, "import_s": 1.0, "step_s": 1.0, **extra}


def test_applications_table_verdicts_and_backend_footnote(monkeypatch, tmp_path):
    apps = _bench_script(monkeypatch, "applications")
    f64 = {"f64_same_ok": True, "f64_same_weight_err": 1e-12, "f64_same_loss_err": 1e-14,
           "f64_keras_loss_err": 1e-6}
    rows = [_app_row("VGG16", "jax", True),
            _app_row("ResNet50", "torch", False),
            _app_row("ResNet50", "jax", False, **f64, f64_kconf_weight_err=1e-3,
                     f64_keras_weight_err=1e-3, f64_kconf_loss_err=1e-6),
            _app_row("ResNet50", "torch", True),  # later, but the JAX line counts
            _app_row("MobileNet", "jax", False, **f64, f64_kconf_weight_err=5e-3,
                     f64_keras_weight_err=1e-3, f64_kconf_loss_err=1e-6),
            _app_row("DenseNet121", "jax", False, **{**f64, "f64_same_ok": False},
                     f64_kconf_weight_err=1e-3, f64_keras_weight_err=1e-3,
                     f64_kconf_loss_err=1e-6),
            _app_row("Xception", "jax", False)]
    jsonl, table = tmp_path / "apps.jsonl", tmp_path / "apps.md"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    apps.write_table(table, jsonl)
    text = table.read_text()
    verdict = {line.split("|")[1].strip(): line.split("|")[11].strip()
               for line in text.splitlines() if line.startswith("| ")
               and not line.startswith("| model")}
    assert verdict == {"VGG16": "yes", "ResNet50": "rounding", "MobileNet": "rounding (5.0×)",
                       "DenseNet121": "**differs**", "Xception": "**no**"}
    assert "1 of 5 models pass every check; 2 more pass" in text
    assert "Not run yet: VGG19," in text
    assert "(torch): Keras on its torch backend" not in text
    jsonl.write_text(json.dumps(_app_row("VGG19", "torch", True)) + "\n")
    apps.write_table(table, jsonl)
    text = table.read_text()
    assert "| VGG19 (torch) | 96 | 1,000 | yes |" in text
    assert "(torch): Keras on its torch backend" in text
