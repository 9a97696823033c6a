"""Streamed data (``stream: true``): the same training as in memory, block shuffles, bit-exact
resume, files that change under a run, and what a stream refuses."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf import load_config
from kconf.cli import app
from kconf.data.sources import load_splits
from kconf.data.stream import MmapRows, epoch_order, is_stream, rows_of
from kconf.train.callbacks import Callback
from kconf.train.checkpoint import load_checkpoint
from kconf.train.run import prepare_run

runner = CliRunner()
N, FEATURES, CLASSES = 300, 6, 3


def write_data(folder: Path, dtype="float32") -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, FEATURES)).astype(dtype)
    y = (x[:, :CLASSES].argmax(1)).reshape(-1, 1)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)


def write_config(folder: Path, stream: str = "stream: true", epochs: int = 3,
                 extra: str = "") -> Path:
    if not (folder / "x.npy").exists():
        write_data(folder)
    path = folder / "c.yaml"
    path.write_text(f"""name: streamed
seed: 0
model:
  sequential:
    - Dense: {{units: 8, activation: relu, input_shape: [{FEATURES}]}}
    - Dropout: {{rate: 0.2}}
    - Dense: {{units: {CLASSES}, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
data:
  source: {{npy: {{x: x.npy, y: y.npy, {stream}}}}}
  split: {{validation: 0.2, test: 0.1}}
{extra}fit: {{epochs: {epochs}, batch_size: 16}}
""")
    return path


def train(*args) -> Path:
    out = Path(args[-1])
    result = runner.invoke(app, ["train", *map(str, args[:-1]), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    (run,) = sorted(out.glob("*/*"))
    return run


def weights(run: Path) -> dict:
    with np.load(run / "weights.npz") as w:
        return dict(w)


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_a_stream_trains_bit_for_bit_as_the_same_data_in_memory(tmp_path):
    path = write_config(tmp_path)
    streamed = train(path, tmp_path / "a")
    cfg = load_config(path)
    splits = load_splits(cfg)
    assert all(is_stream(s.x[0]) for s in splits.values())
    memory = train(path, "data.source.npy.stream=false", tmp_path / "b")
    assert_same(weights(streamed), weights(memory))
    assert (json.loads((streamed / "evaluation.json").read_text())
            == json.loads((memory / "evaluation.json").read_text()))


def test_a_float64_file_is_read_as_float32_rows(tmp_path):
    write_data(tmp_path, dtype="float64")
    rows = MmapRows(tmp_path / "x.npy")
    x = np.load(tmp_path / "x.npy")
    assert rows.dtype == np.float32 and rows.shape == x.shape
    np.testing.assert_array_equal(rows.read(slice(10, 20)), x[10:20].astype(np.float32))
    picked = np.array([7, 3, 199, 0])
    np.testing.assert_array_equal(rows_of(rows[100:], picked), x[100:][picked].astype(np.float32))
    view = rows[np.array([5, 1, 9])]
    np.testing.assert_array_equal(view.read(slice(None)), x[[5, 1, 9]].astype(np.float32))
    np.testing.assert_array_equal(view[1:].read(np.array([1, 0])), x[[9, 1]].astype(np.float32))


def test_a_shuffle_buffer_permutes_blocks_of_neighbours():
    order = epoch_order(np.random.default_rng(1), 103, [type("S", (), {})()])
    assert sorted(order) == list(range(103))  # no buffer: a permutation
    rows = MmapRows.__new__(MmapRows)
    rows.shuffle_buffer = 10
    first = epoch_order(np.random.default_rng(1), 103, [rows])
    again = epoch_order(np.random.default_rng(1), 103, [rows])
    assert np.array_equal(first, again) and sorted(first) == list(range(103))
    blocks = first // 10
    runs = [int(b) for i, b in enumerate(blocks) if i == 0 or b != blocks[i - 1]]
    assert sorted(runs) == list(range(11))  # each block read once, all its samples together
    assert runs != list(range(11))  # in a random order of blocks
    assert not np.array_equal(first[:10], np.sort(first[:10]))  # shuffled inside a block


def test_interrupted_and_resumed_equals_uninterrupted_bit_for_bit(tmp_path):
    path = write_config(tmp_path, stream="stream: true, shuffle_buffer: 40", epochs=4)
    whole = train(path, tmp_path / "whole")
    part = train(path, "fit.epochs=2", tmp_path / "part")
    assert load_checkpoint(part / "checkpoints" / "last.npz").meta["stream"]["files"]
    result = runner.invoke(app, ["train", "--resume", str(part), "fit.epochs=4"])
    assert result.exit_code == 0, result.output
    assert_same(weights(whole), weights(part))
    rows = lambda run: [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("time", "seconds")} for r in rs]
    assert strip(rows(whole)) == strip(rows(part))


def test_resume_refuses_files_changed_since_the_checkpoint(tmp_path):
    path = write_config(tmp_path, epochs=2)
    run = train(path, "fit.epochs=1", tmp_path / "runs")
    rewrite(tmp_path / "x.npy")
    result = runner.invoke(app, ["train", "--resume", str(run), "fit.epochs=2"])
    assert result.exit_code == 2, result.output
    assert "x.npy changed (size" in result.output and "modified" in result.output
    assert "since the checkpoint of epoch 1: the run cannot continue" in result.output


def rewrite(file: Path) -> None:
    """New values of the same shape, and a later modification time."""
    np.save(file, np.load(file) + 1)
    st = os.stat(file)
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


class Rewrite(Callback):
    """Rewrites x.npy (same shape, new values) when an epoch ends."""

    def __init__(self, file: Path, at_epoch: int = 0):
        super().__init__()
        self.file, self.at_epoch = file, at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            rewrite(self.file)


def test_a_file_changed_between_epochs_stops_the_run_located(tmp_path):
    path = write_config(tmp_path)
    run = prepare_run(load_config(path), tmp_path / "runs")
    try:
        with pytest.raises(Exception) as caught:
            run.fit(callbacks=[Rewrite(tmp_path / "x.npy")])
    finally:
        run.close()
    from kconf.data.stream import DataChanged

    assert isinstance(caught.value, DataChanged)
    text = caught.value.format()
    assert text.startswith(f"{path}:10:17: ") and "data.source.npy: " in text
    assert "x.npy changed (size" in text and "before epoch 2" in text
    status = json.loads((run.run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "x.npy changed" in status["error"]
    assert load_checkpoint(run.run_dir / "checkpoints" / "last.npz").epoch == 1
    rows = (run.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1  # the epoch done is kept, nothing of the next


def test_the_cli_exits_2_when_a_stream_changes_mid_run(tmp_path, monkeypatch):
    from kconf.train import run as run_module

    path = write_config(tmp_path)
    original = run_module.Run.fit

    def fit(self, callbacks=()):
        return original(self, callbacks=[*callbacks, Rewrite(tmp_path / "x.npy")])

    monkeypatch.setattr(run_module.Run, "fit", fit)
    result = runner.invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "x.npy changed" in result.output and "Traceback" not in result.output
    assert "what was written so far is in" in result.output


def test_what_a_stream_refuses_and_checks(tmp_path):
    path = write_config(tmp_path, extra="  preprocess: [{standardize: {x: true}}]\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "data.preprocess[0].standardize.x: standardize changes x, which is streamed" in \
        result.output
    x = np.load(tmp_path / "x.npy")
    x[123, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    path = write_config(tmp_path)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "x.npy (x) has 1 NaN or infinite values (the first in sample" in result.output
    np.save(tmp_path / "x.npy", np.asfortranarray(x[:, :4]))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "Fortran (column) order" in result.output


def test_normalization_adapts_on_a_stream_batch_by_batch(tmp_path):
    from kconf import build_model
    from kconf.train.adapt import adapt_preprocessing

    write_data(tmp_path)
    path = write_config(tmp_path)
    text = path.read_text().replace(
        f"    - Dense: {{units: 8, activation: relu, input_shape: [{FEATURES}]}}",
        f"    - Normalization: {{input_shape: [{FEATURES}]}}\n"
        "    - Dense: {units: 8, activation: relu}")
    path.write_text(text)
    cfg = load_config(path)
    train = load_splits(cfg)["train"]
    model = build_model(cfg)
    adapt_preprocessing(model, train.x)
    (layer,) = [l for l in model.graph.layers if type(l).__name__ == "Normalization"]
    x = train.x[0].read(slice(None)).astype(np.float64)
    np.testing.assert_allclose(layer.weights["mean"], x.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.weights["variance"], x.var(0), rtol=1e-5)


# --- streamed tables ------------------------------------------------------------------------

def write_table(folder: Path) -> None:
    """A CSV with a header, a categorical column, missing ages, blank lines; and the same
    rows as Parquet in row groups of 64."""
    rng = np.random.default_rng(0)
    n = 400
    city = rng.choice(["oslo", "rome", "lima", "nara"], n)
    age = rng.integers(18, 80, n)
    income = rng.normal(50, 10, n).round(2)
    label = ((age > 40) ^ (city == "rome")).astype(int)
    lines = ["age,income,city,churned"]
    for i in range(n):
        lines.append(f"{'' if i % 37 == 0 else age[i]},{income[i]},{city[i]},{label[i]}")
        if i % 100 == 0:
            lines.append("  ")
    (folder / "t.csv").write_text("\n".join(lines) + "\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({
        "age": [None if i % 37 == 0 else float(a) for i, a in enumerate(age)],
        "income": income, "city": city.tolist(), "churned": label}),
        folder / "t.parquet", row_group_size=64)


def table_config(folder: Path, kind: str = "csv", stream: str = "stream: true") -> Path:
    path = folder / f"{kind}.yaml"
    path.write_text(f"""name: table
seed: 0
model:
  sequential:
    - Dense: {{units: 8, activation: relu, input_shape: [7]}}
    - Dense: {{units: 1, activation: sigmoid}}
compile: {{optimizer: adam, loss: binary_crossentropy}}
data:
  source: {{{kind}: {{path: t.{kind}, x: [age, income, city], y: churned, categorical: [city],
           fill: mean, {stream}}}}}
  split: {{validation: 0.2, test: 0.1, stratify: true}}
fit: {{epochs: 2, batch_size: 16}}
""")
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_streamed_table_is_encoded_and_trains_as_in_memory(tmp_path, kind):
    from kconf.data.sources import load_prepared
    from kconf.data.table_stream import TableRows

    write_table(tmp_path)
    streamed = load_prepared(load_config(table_config(tmp_path, kind)))
    memory = load_prepared(load_config(table_config(tmp_path, "csv", "stream: false")))
    assert ([s.to_json() for s in streamed.preprocessing.steps]
            == [s.to_json() for s in memory.preprocessing.steps])
    for name, split in memory.splits.items():
        rows = streamed.splits[name].x[0]
        assert isinstance(rows, TableRows) and rows.shape == split.x[0].shape
        assert np.array_equal(rows.read(slice(None)), split.x[0]), name
        assert np.array_equal(streamed.splits[name].y[0], split.y[0]), name
    a = train(table_config(tmp_path, kind), tmp_path / "a")
    b = train(table_config(tmp_path, "csv", "stream: false"), tmp_path / "b")
    assert_same(weights(a), weights(b))


def test_what_a_streamed_table_refuses(tmp_path):
    write_table(tmp_path)
    path = table_config(tmp_path)
    path.write_text(path.read_text().replace("fill: mean", "fill: median"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "data.source.csv.fill: fill: median needs every value of a column at once" in \
        result.output
    path = table_config(tmp_path)
    text = (tmp_path / "t.csv").read_text().splitlines()
    text[150] = "33,abc,rome,1"
    (tmp_path / "t.csv").write_text("\n".join(text) + "\n")
    result = runner.invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "t.csv:151: column 'income': cannot read 'abc' as a number" in result.output
    assert "Traceback" not in result.output


def test_the_memory_bench_runs_and_reports_peak_rss(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "table.md"
    proc = subprocess.run(
        [sys.executable, "bench/stream_memory.py", "--gib", "0.002", "--small-mib", "0.5",
         "--budget-gib", "2", "--features", "16", "--batch-size", "64",
         "--dir", str(tmp_path / "data"), "--out", str(out)],
        cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith("| small")
            or line.startswith("| large")]
    assert len(rows) == 2 and "MiB" in rows[1]
    peak = float(rows[1].split("|")[4].split()[0])
    assert 20 < peak < 2048  # a real process's RSS, within the stated budget
    assert not (tmp_path / "data").exists()  # the data is removed unless --keep


def test_a_checkpoint_keeps_a_digest_of_many_stream_files(tmp_path, monkeypatch):
    from kconf.data import stream

    write_data(tmp_path)
    rows = MmapRows(tmp_path / "x.npy")
    splits = {"train": type("S", (), {"x": [rows], "y": []})()}
    named = stream.split_fingerprints(splits)
    assert list(named) == [str(tmp_path / "x.npy")]
    monkeypatch.setattr(stream, "NAMED_FILES", 0)
    digest = stream.split_fingerprints(splits)
    assert digest["count"] == 1 and len(digest["digest"]) == 64
    assert stream.changed_since(digest, stream.split_fingerprints(splits)) == []
    rewrite(tmp_path / "x.npy")
    changed = MmapRows(tmp_path / "x.npy")
    after = stream.split_fingerprints({"train": type("S", (), {"x": [changed], "y": []})()})
    (message,) = stream.changed_since(digest, after)
    assert message.startswith("the 1 streamed files changed")
