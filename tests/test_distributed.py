"""Data-parallel training on MPI (``kconf.distributed``): ranks started by MPICH's ``mpiexec``
(the mpi extra, in dev), each a ``python -m kconf.cli train`` process.

Two ranks train to the weights of one process with the same global batch (a Dense model with
uneven shards, a convnet with synchronized BatchNormalization); a resumed 2-rank run is
bit-identical to an uninterrupted one; a rank that fails, hangs or is killed ends the run as
``failed``; bad input is one line and exit 2. The two-"machine" test puts the ranks in two
network (and host name) namespaces joined by a veth pair, as root.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.cli import app
from kconf.distributed import default_threads, launched_ranks
from kconf.distributed.data_parallel import shard_bounds
from kconf.distributed.launch import find_mpiexec, without_ranks
from kconf.engine.threads import THREAD_VARIABLES, available_cpus

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
KCONF = [sys.executable, "-m", "kconf.cli"]
runner = CliRunner()

DENSE = """\
name: dense
seed: 5
model:
  sequential:
    - Dense: {units: 16, activation: tanh, input_dim: 6, kernel_regularizer: {L2: {l2: 0.01}},
              activity_regularizer: {L1: {l1: 0.01}}}
    - Dense: {units: 3, activation: softmax}
compile:
  optimizer: {Adam: {learning_rate: 0.02}}
  loss: categorical_crossentropy
  metrics: [accuracy]
data:
  train: {random: {samples: 150, x: [6], classes: 3, one_hot: true}}
  test: {random: {samples: 40, x: [6], classes: 3, one_hot: true}}
fit: {epochs: 3, batch_size: 25, validation_split: 0.2}
"""

CONVNET = """\
name: convnet
seed: 1
model:
  sequential:
    - Conv2D: {filters: 4, kernel_size: 3, input_shape: [8, 8, 2]}
    - BatchNormalization: {synchronized: SYNC}
    - Activation: {activation: relu}
    - MaxPooling2D: {pool_size: 2}
    - Flatten: {}
    - Dense: {units: 8}
    - BatchNormalization: {synchronized: SYNC}
    - Dense: {units: 3, activation: softmax}
compile:
  optimizer: {SGD: {learning_rate: 0.05, momentum: 0.9}}
  loss: categorical_crossentropy
data:
  train: {random: {samples: 64, x: [8, 8, 2], classes: 3, one_hot: true}}
fit: {epochs: 2, batch_size: 16}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def mpiexec(ranks: int, *args, timeout: float = 240) -> subprocess.CompletedProcess:
    """``mpiexec -n RANKS python -m kconf.cli ARGS``."""
    return subprocess.run([find_mpiexec(), "-n", str(ranks), *KCONF, *map(str, args)],
                          capture_output=True, text=True, env=ENV, timeout=timeout)


def one_process(*args) -> None:
    result = runner.invoke(app, [*map(str, args)])
    assert result.exit_code == 0, result.output


def the_run(output: Path) -> Path:
    (name,) = output.iterdir()
    (run,) = name.iterdir()  # one folder: the ranks other than 0 write none
    return run


def weights(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "weights.npz") as data:
        return {k: data[k] for k in data.files}


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=atol, err_msg=key)


def test_two_ranks_train_a_dense_model_as_one_process_with_the_global_batch(tmp_path):
    """Uneven shards weighted by their size; a weight penalty (the same on every rank, added
    once) and an activity penalty (a mean over each shard) as in one process."""
    # 120 training samples in batches of 25: shards of 13 and 12, the last batch 20 (10/10)
    config = write(tmp_path, "dense.yaml", DENSE)
    one_process("train", config, "--output-dir", tmp_path / "one", "-q")
    done = mpiexec(2, "train", config, "--output-dir", tmp_path / "two", "-q")
    assert done.returncode == 0, done.stderr
    one, two = the_run(tmp_path / "one"), the_run(tmp_path / "two")
    assert_same_weights(weights(one), weights(two), atol=1e-6)
    for a, b in zip(metrics(one), metrics(two), strict=True):  # logs over every rank
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], rtol=1e-5)
    info = status(two)
    assert info["status"] == "finished"
    assert info["ranks"] == 2 and len(info["hosts"]) == 2 and len(set(info["pids"])) == 2
    assert (two / "evaluation.json").is_file()
    assert done.stdout.count("Run folder:") == 1  # rank 0 alone reports


STREAMED = """\
name: streamed
seed: 5
model:
  sequential:
    - Dense: {units: 16, activation: tanh, input_dim: 6}
    - Dense: {units: 3, activation: softmax}
compile:
  optimizer: {Adam: {learning_rate: 0.02}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
data:
  source: {npy: {x: x.npy, y: y.npy, stream: true}}
  split: {validation: 0.2}
fit: {epochs: 3, batch_size: 25}
"""


def test_two_ranks_train_on_a_streamed_source_as_one_process(tmp_path):
    """A streamed ``.npy`` source (memory-mapped, drawn a block at a time): every rank reads
    its shard of each global batch from the files, and the run trains as one process does
    on the same stream."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(150, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", x[:, :3].argmax(1).astype(np.int32))
    config = write(tmp_path, "streamed.yaml", STREAMED)
    one_process("train", config, "--output-dir", tmp_path / "one", "-q")
    done = mpiexec(2, "train", config, "--output-dir", tmp_path / "two", "-q")
    assert done.returncode == 0, done.stderr
    one, two = the_run(tmp_path / "one"), the_run(tmp_path / "two")
    assert_same_weights(weights(one), weights(two), atol=1e-6)
    for a, b in zip(metrics(one), metrics(two), strict=True):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], rtol=1e-5)


EMBEDDING = """\
name: embedding
seed: 2
model:
  sequential:
    - Embedding: {input_dim: 50, output_dim: 4, input_shape: [6]}
    - GlobalAveragePooling1D: {}
    - Dense: {units: 3, activation: softmax}
compile:
  optimizer: {Adam: {learning_rate: 0.05}}
  loss: sparse_categorical_crossentropy
data:
  train: {random: {samples: 90, x: [6], dtype: int32, high: 50, classes: 3}}
fit: {epochs: 2, batch_size: 20}
"""


def test_two_ranks_gather_an_embeddings_row_gradients(tmp_path):
    """The row-sparse gradient of an Embedding is gathered from every rank (not in the flat
    buffer): the weights of one process."""
    config = write(tmp_path, "embedding.yaml", EMBEDDING)
    one_process("train", config, "--output-dir", tmp_path / "one", "-q")
    done = mpiexec(2, "train", config, "--output-dir", tmp_path / "two", "-q")
    assert done.returncode == 0, done.stderr
    assert_same_weights(weights(the_run(tmp_path / "one")), weights(the_run(tmp_path / "two")),
                        atol=1e-6)


@pytest.mark.parametrize("sync", [True, False])
def test_two_ranks_train_a_convnet_with_batch_normalization(tmp_path, sync):
    """Synchronized statistics give one process's weights; per-rank ones (the default, as
    Keras's per replica) do not."""
    config = write(tmp_path, "convnet.yaml", CONVNET.replace("SYNC", str(sync).lower()))
    one_process("train", config, "--output-dir", tmp_path / "one", "-q")
    done = mpiexec(2, "train", config, "--output-dir", tmp_path / "two", "-q")
    assert done.returncode == 0, done.stderr
    one, two = weights(the_run(tmp_path / "one")), weights(the_run(tmp_path / "two"))
    if sync:
        assert_same_weights(one, two, atol=1e-6)
    else:
        assert max(np.abs(one[k] - two[k]).max() for k in one) > 1e-4


def test_resume_under_two_ranks_is_bit_identical_and_any_number_of_ranks_resumes(tmp_path):
    config = write(tmp_path, "dense.yaml", DENSE)
    whole = mpiexec(2, "train", config, "--output-dir", tmp_path / "whole", "-q")
    part = mpiexec(2, "train", config, "fit.epochs=2", "--output-dir", tmp_path / "part", "-q")
    assert whole.returncode == 0 and part.returncode == 0, whole.stderr + part.stderr
    run = the_run(tmp_path / "part")
    other = tmp_path / "other"
    shutil.copytree(run, other)
    resumed = mpiexec(2, "train", "--resume", run, "fit.epochs=3", "-q")
    assert resumed.returncode == 0, resumed.stderr
    full = the_run(tmp_path / "whole")
    a, b = weights(full), weights(run)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert metrics(full) == metrics(run)
    one_process("train", "--resume", other, "fit.epochs=3", "-q")  # 2 ranks -> 1 process
    assert status(other)["epochs_completed"] == 3
    assert_same_weights(weights(other), a, atol=1e-5)


LONG = DENSE.replace("epochs: 3, batch_size: 25", "epochs: 100000, batch_size: 4")


def start_long(tmp_path: Path, *extra) -> tuple[subprocess.Popen, Path]:
    """A run that would go on for hours, once it has written an epoch (and its status lists
    its ranks' pids)."""
    config = write(tmp_path, "long.yaml", LONG)
    proc = subprocess.Popen([find_mpiexec(), "-n", "2", *KCONF, "train", str(config),
                             "--output-dir", str(tmp_path / "out"), "-q", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = list((tmp_path / "out").glob("*/*/status.json"))
        if runs and json.loads(runs[0].read_text() or "{}").get("epochs_completed"):
            return proc, runs[0].parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the run did not start")


def wait_failed(run: Path, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        info = status(run)
        if info["status"] != "running":
            return info
        time.sleep(0.1)
    return status(run)


def test_a_rank_killed_by_a_signal_ends_the_run_as_failed(tmp_path):
    proc, run = start_long(tmp_path)
    try:
        os.kill(status(run)["pids"][1], signal.SIGKILL)
        proc.wait(timeout=30)
        info = wait_failed(run, 10)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert info["status"] == "failed" and "killed" in info["error"]
    assert (run / "config.yaml").is_file() and (run / "metrics.jsonl").is_file()


def test_a_rank_that_hangs_ends_the_run_after_the_timeout(tmp_path):
    proc, run = start_long(tmp_path, "--mpi-timeout", "3")
    rank1 = status(run)["pids"][1]
    try:
        os.kill(rank1, signal.SIGSTOP)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    info = status(run)
    assert info["status"] == "failed"
    assert info["error"].startswith("rank 0 on ")  # it waited, in a step or an epoch's end
    assert "the other ranks did not join the " in info["error"]
    assert info["error"].endswith(" within 3 s (a rank hangs or was lost)")
    assert proc.returncode == 1 and "training stopped: rank 0" in err


def test_a_failing_rank_stops_the_run_with_its_message(tmp_path):
    """A NaN in the one sample that rank 1 takes: rank 1's loss stops the run."""
    x = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
    x[23] = np.nan  # batch 6 (rows 20-23), rank 1's half
    np.savez(tmp_path / "data.npz", x=x, y=np.eye(3, dtype="float32")[np.arange(40) % 3])
    config = write(tmp_path, "nan.yaml", DENSE.split("data:")[0] + f"""\
data:
  allow_nan: true
  train: {{npz: {{path: {tmp_path / 'data.npz'}}}}}
fit: {{epochs: 2, batch_size: 4, shuffle: false}}
""")
    done = mpiexec(2, "train", config, "--output-dir", tmp_path / "out", "-q")
    assert done.returncode == 1
    message = "rank 1 on "
    assert f"training stopped: {message}" in done.stderr
    info = status(the_run(tmp_path / "out"))
    assert info["status"] == "failed"
    assert info["error"].startswith(message)
    assert info["error"].endswith("epoch 1, batch 6: the loss became nan (not finite)")


def test_ranks_that_disagree_on_the_config_are_one_line_and_exit_2(tmp_path):
    config = write(tmp_path, "dense.yaml", DENSE)
    done = subprocess.run(
        [find_mpiexec(), "-n", "1", *KCONF, "train", str(config), "--output-dir",
         str(tmp_path / "out"), ":", "-n", "1", *KCONF, "train", str(config), "fit.epochs=4",
         "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()  # every rank knew: each ended on its own, no abort
    assert line.startswith(f"{config}: the ranks disagree on the config: rank 1 on ")
    assert not (tmp_path / "out").exists()  # refused before any folder


def test_a_mistake_of_one_rank_is_its_message_and_exit_2(tmp_path):
    good = write(tmp_path, "dense.yaml", DENSE)
    bad = write(tmp_path, "bad.yaml", DENSE.replace("units: 3,", "units: -3,"))
    done = subprocess.run(
        [find_mpiexec(), "-n", "1", *KCONF, "train", str(good), "--output-dir",
         str(tmp_path / "out"), ":", "-n", "1", *KCONF, "train", str(bad), "--output-dir",
         str(tmp_path / "out")], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(f"rank 1 on ")
    assert f"{bad}:" in done.stderr and "units: must be a positive integer, got -3" in \
        done.stderr
    assert "Abort" not in done.stderr and not (tmp_path / "out").exists()


def test_more_ranks_than_a_batch_has_samples_is_refused(tmp_path):
    config = write(tmp_path, "dense.yaml", DENSE)
    done = subprocess.run([*KCONF, "train", str(config), "fit.batch_size=1", "--ranks", "2",
                           "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 2
    assert ("fit.batch_size: 2 ranks need a sample each of every batch, and a batch has 1; "
            "use at most 1 ranks, or batch_size 2 or more") in done.stderr
    assert not (tmp_path / "out").exists()
    # 120 training samples in batches of 119: the last has 1, for 2 ranks
    done = mpiexec(2, "train", config, "fit.batch_size=119", "--output-dir", tmp_path / "out")
    assert done.returncode == 2
    assert ("the last batch of each epoch has 1 of the 120 training samples, fewer than the "
            "2 ranks (each needs one); nearest batch sizes that work: 118, 120") in done.stderr


def test_ranks_option_starts_mpiexec(tmp_path):
    config = write(tmp_path, "dense.yaml", DENSE)
    done = subprocess.run([*KCONF, "train", str(config), "--ranks", "2", "fit.epochs=1",
                           "--output-dir", str(tmp_path / "out"), "-q"],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert status(the_run(tmp_path / "out"))["ranks"] == 2


def test_missing_mpi4py_names_the_extra(tmp_path, monkeypatch):
    config = write(tmp_path, "dense.yaml", DENSE)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py fails
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real(name, *a))
    result = runner.invoke(app, ["train", str(config), "--ranks", "2"])
    assert result.exit_code == 2
    assert "--ranks 2 needs mpi4py: pip install 'kconf[mpi]'" in result.output
    for name in THREAD_VARIABLES:  # the ranks' default --threads sets them: recorded here,
        monkeypatch.setenv(name, "1")  # so that they are put back (or removed) after the test
        monkeypatch.delenv(name)
    monkeypatch.setenv("PMI_SIZE", "2")  # as if mpiexec had started this process
    monkeypatch.setenv("PMI_RANK", "0")
    result = runner.invoke(app, ["train", str(config), "--output-dir", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "started by mpiexec, but mpi4py is not installed: pip install 'kconf[mpi]'" in \
        result.output
    assert not (tmp_path / "o").exists()


def test_threads_default_to_the_cores_shared_by_the_local_ranks(monkeypatch):
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "PMIX_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert launched_ranks() == (1, 0, 1) and default_threads() is None
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")  # a batch script's step: no MPI launch
    assert launched_ranks() == (1, 0, 1)
    monkeypatch.setenv("PMIX_RANK", "1")  # srun --mpi=pmix
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_STEP_TASKS_PER_NODE", "2(x2)")
    assert launched_ranks() == (4, 1, 2)
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS")
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setenv("PMI_RANK", "3")
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")
    assert launched_ranks() == (4, 3, 2)
    assert default_threads() == max(1, available_cpus() // 2)


class OneRank:
    """The sums of a data-parallel run of one rank (what ``DataParallel.sum`` gives there)."""

    weight = 1.0

    def sum(self, arrays):
        return [np.asarray(a, dtype=np.float64) for a in arrays]


@pytest.mark.parametrize("case_id", ["bn_training", "bn_images_training", "bn_axis1_training",
                                     "bn_no_scale_training", "bn_no_center_training"])
def test_synchronized_batch_normalization_passes_the_float64_gradient_check(case_id):
    """The synchronized forward and backward (sums over the ranks, the rank's weight) of
    one rank: float64 finite differences, and the values of the local statistics."""
    from tests.layer_cases import CASES
    from tests.layer_test import built, check_gradients, inputs, make_layer, run

    (case,) = [c for c in CASES["BatchNormalization"] if c.id == case_id]

    def make():
        layer = make_layer("BatchNormalization", {**case.args, "synchronized": True})
        layer.sync = OneRank()
        return layer

    check_gradients(make, case)
    local = built(lambda: make_layer("BatchNormalization", case.args), case)
    synced = built(make, case)
    x = inputs(case)
    (a, back_a), (b, back_b) = run(case, local, x), run(case, synced, x)
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(4).standard_normal(a.shape)
    np.testing.assert_allclose(back_b(dy), back_a(dy), rtol=1e-10, atol=1e-12)
    for key in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(synced.weights[key], local.weights[key], rtol=1e-12)


def test_shards_cover_a_batch_once_and_differ_by_one_at_most():
    for n in (1, 7, 25, 120):
        for size in range(1, min(n, 5) + 1):
            bounds = [shard_bounds(n, r, size) for r in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert without_ranks(["train", "c.yaml", "--ranks", "2", "-q", "--ranks=3"]) == \
        ["train", "c.yaml", "-q"]
