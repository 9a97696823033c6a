"""A fuzzer that keeps issue 16 closed: mutated configs, data files and checkpoints never end
in a traceback, a hang or a damaged run folder.

Every config in ``configs/`` (and two small file-fed ones made here) is mutated — keys
dropped, duplicated, renamed or retyped, values swapped between fields, the file truncated,
aliases inserted, tensor names in graph lines changed, data files and checkpoints corrupted
— and ``kconf validate`` runs on it; for a sample, ``kconf train`` with one step, or
``kconf train --resume`` of a run whose checkpoint was damaged. Each must exit 0 or 2 (a
training that stops on a NaN loss exits 1 and says so), print no traceback, and leave the
run folders that existed before exactly as they were.

CI runs a deterministic, short search (about a minute on two cores). A longer, random one:

    KCONF_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py     # KCONF_FUZZ_SEED=n to repeat one
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import traceback
from pathlib import Path

import numpy as np
import pytest
import yaml

from hypothesis import HealthCheck, given, seed, settings  # the dev extra
from hypothesis import strategies as st
from typer.testing import CliRunner

from kconf.cli import app

ROOT = Path(__file__).resolve().parents[1]
LONG = int(os.environ.get("KCONF_FUZZ_EXAMPLES", "0"))
#: Slow to validate (large data made at load time): only in the long run.
SLOW = {"digits_augment.yaml", "shared_lstm.yaml"}
CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.yaml")
                 if LONG or p.name not in SLOW)
#: Configs small enough to train a step of in the short run.
TRAINABLE = ["mlp_softmax.yaml", "mlp_binary.yaml", "regression_mse.yaml", "npz_model.yaml",
             "csv_model.yaml", "tabular_bn.yaml"]
#: Values a mutation puts in place of another (small: sizes stay small, so nothing runs long).
ODD = [None, True, 0, -1, 3, 2.5, float("nan"), float("inf"), "", "x", "relu", "Dense",
       [], [1, 2], [[3]], {}, {"a": 1}, {"Dense": {"units": 2}}, "1e-3", "-", "fit.epochs",
       "x = y(z)", "0b101", "~", "null", "2001-01-01"]

_settings = dict(deadline=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture])
if LONG:
    VALIDATE = settings(max_examples=LONG, **_settings)
    TRAIN = settings(max_examples=max(1, LONG // 10), **_settings)
else:  # CI: the same examples every time
    VALIDATE = settings(max_examples=60, derandomize=True, database=None, **_settings)
    TRAIN = settings(max_examples=8, derandomize=True, database=None, **_settings)


def _seeded(test):
    """``KCONF_FUZZ_SEED=n`` repeats one long run's search."""
    if LONG and os.environ.get("KCONF_FUZZ_SEED"):
        return seed(int(os.environ["KCONF_FUZZ_SEED"]))(test)
    return test


# --- the workspace: a copy of configs/, file-fed configs, and a finished run ---------------

def _folder_digest(folder: Path) -> str:
    """A digest of every file's path and bytes under ``folder``."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(ROOT / "configs", root / "configs")
    configs = root / "configs"
    rng = np.random.default_rng(0)
    np.savez(configs / "data" / "small.npz", x=rng.random((12, 4), dtype=np.float32),
             y=rng.integers(0, 3, 12))
    (configs / "npz_model.yaml").write_text("""name: npz_model
model:
  functional:
    inputs: {features: {shape: [4]}}
    layers:
      hidden: {Dense: {units: 5, activation: relu}}
      out: {Dense: {units: 3, activation: softmax}}
    graph:
      - h = hidden(features)
      - p = out(h)
    outputs: [p]
compile: {optimizer: {Adam: {learning_rate: 0.01}}, loss: sparse_categorical_crossentropy,
          metrics: [accuracy]}
data:
  source: {npz: {path: data/small.npz}}
  split: {validation: 0.25}
fit: {epochs: 2, batch_size: 4}
""")
    rows = ["a,b,c,label"] + [f"{i % 5},{i * 0.5},{(i * 7) % 3},{i % 2}" for i in range(12)]
    (configs / "data" / "small.csv").write_text("\n".join(rows) + "\n")
    (configs / "csv_model.yaml").write_text("""name: csv_model
model:
  sequential:
    - Dense: {units: 4, activation: relu, input_dim: 3}
    - Dense: {units: 1, activation: sigmoid}
compile: {optimizer: adam, loss: binary_crossentropy, metrics: [accuracy]}
data:
  train: {csv: {path: data/small.csv, y: label}}
  preprocess: [{standardize: {x: true}}]
fit: {epochs: 1, batch_size: 4}
""")
    runs = root / "runs"
    result = CliRunner().invoke(app, ["train", str(configs / "npz_model.yaml"), "-q",
                                      "--output-dir", str(runs)])
    assert result.exit_code == 0, result.output
    existing = next((runs / "npz_model").iterdir())
    return {"root": root, "configs": configs, "runs": runs, "existing": existing,
            "digest": _folder_digest(existing), "count": 0}


def _invoke(args: list[str]):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"kconf {' '.join(map(str, args))} raised:\n{tb}\n{result.output}")
    return result


def _check(result, args, training: bool = False) -> None:
    """Exit 0 or 2 (1 only for a training stopped by its loss), no traceback."""
    allowed = {0, 1, 2} if training else {0, 2}
    assert result.exit_code in allowed, (args, result.exit_code, result.output)
    if result.exit_code == 1:
        assert "training stopped:" in result.output, (args, result.output)
    assert "Traceback" not in result.output, (args, result.output)


def _unchanged(ws) -> None:
    assert _folder_digest(ws["existing"]) == ws["digest"], "an existing run folder changed"


# --- mutations ---------------------------------------------------------------------------

def _paths(data, prefix=()):
    """Every path to a value, parents before children."""
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _get(data, path):
    for key in path:
        data = data[key]
    return data


def _set(data, path, value):
    _get(data, path[:-1])[path[-1]] = value


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _mutate_data(draw, data):
    """One structural mutation of the parsed config (in place); returns the data."""
    paths = [p for p in _paths(data) if p]
    if not paths:
        return draw(st.sampled_from(ODD))
    kind = draw(st.sampled_from(["drop", "retype", "swap", "rename", "duplicate", "graph",
                                 "alias"]))
    path = draw(st.sampled_from(paths))
    parent = _get(data, path[:-1])
    if kind == "drop":
        del parent[path[-1]]
    elif kind == "retype":
        parent[path[-1]] = draw(st.sampled_from(ODD))
    elif kind == "swap":
        other = draw(st.sampled_from(paths))
        if other[:len(path)] != path and path[:len(other)] != other:
            a, b = _get(data, path), _get(data, other)
            _set(data, path, b)
            _set(data, other, a)
    elif kind == "rename" and isinstance(parent, dict):
        keys = [p[-1] for p in paths if isinstance(p[-1], str)]
        new = draw(st.sampled_from(keys + [path[-1] + "s", path[-1][:-1], path[-1].upper()]))
        parent[new] = parent.pop(path[-1])
    elif kind == "duplicate" and isinstance(parent, list):
        parent.insert(path[-1], parent[path[-1]])
    elif kind == "graph":
        lines = [p for p in paths if isinstance(_get(data, p), str) and "=" in _get(data, p)]
        if lines:
            line_path = draw(st.sampled_from(lines))
            line = _get(data, line_path)
            names = NAME.findall(line)
            old = draw(st.sampled_from(names))
            new = draw(st.sampled_from(names + ["ghost", "x", "", "a(b)", "=", "1"]))
            _set(data, line_path, line.replace(old, new, 1))
    elif kind == "alias":  # the same object twice: yaml.safe_dump writes an anchor and alias
        other = draw(st.sampled_from(paths))
        if other[:len(path)] != path and path[:len(other)] != other:
            _set(data, other, _get(data, path))
    return data


def _mutate_text(draw, text):
    """One textual mutation: truncate, duplicate a line (duplicate keys), delete a line, or
    indent one wrongly."""
    lines = text.splitlines(keepends=True)
    kind = draw(st.sampled_from(["truncate", "dup_line", "drop_line", "indent", "tab"]))
    if kind == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    if not lines:
        return text
    i = draw(st.integers(0, len(lines) - 1))
    if kind == "dup_line":
        lines.insert(i, lines[i])
    elif kind == "drop_line":
        del lines[i]
    elif kind == "indent":
        lines[i] = "   " + lines[i]
    else:
        lines[i] = "\t" + lines[i]
    return "".join(lines)


def _mutated_config(draw, ws, name: str) -> Path:
    text = (ws["configs"] / name).read_text()
    data = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()) or not isinstance(data, (dict, list)):
            text = yaml.safe_dump(data, sort_keys=False) if data is not None else text
            text = _mutate_text(draw, text)
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                break  # broken YAML: no more structure to mutate
        else:
            data = _mutate_data(draw, data)
            text = yaml.safe_dump(data, sort_keys=False)
    ws["count"] += 1
    path = ws["configs"] / f"fuzz_{ws['count']}_{name}"
    path.write_text(text)
    return path


def _corrupt_bytes(draw, blob: bytes) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "garbage", "empty"]))
    if kind == "empty" or not blob:
        return b""
    if kind == "truncate":
        return blob[:draw(st.integers(0, len(blob) - 1))]
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=64))
    data = bytearray(blob)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


def _corrupt_arrays(draw, file: Path) -> None:
    """A data file replaced by damaged bytes, or by arrays of the wrong kind."""
    kind = draw(st.sampled_from(["bytes", "arrays"]))
    if kind == "bytes":
        file.write_bytes(_corrupt_bytes(draw, file.read_bytes()))
        return
    x = draw(st.sampled_from([np.zeros((0, 4), np.float32), np.full((12, 4), np.nan),
                              np.full((12, 4), "a"), np.zeros((12, 5), np.float32),
                              np.zeros((12,), np.float32), np.zeros((3, 4), np.float32)]))
    y = draw(st.sampled_from([np.arange(12) % 3, np.full(12, 9), np.full(12, -1),
                              np.zeros((12, 3)), np.full(12, 0.5)]))
    np.savez(file, **{draw(st.sampled_from(["x", "y", "z"])): x, "y": y})


# --- the properties ----------------------------------------------------------------------

@_seeded
@VALIDATE
@given(data=st.data(), name=st.sampled_from(CONFIGS))
def test_mutated_configs_validate_cleanly(workspace, data, name):
    path = _mutated_config(data.draw, workspace, name)
    args = ["validate", path]
    _check(_invoke(args), args)
    _unchanged(workspace)


@_seeded
@TRAIN
@given(data=st.data(), name=st.sampled_from(TRAINABLE), mutate=st.booleans())
def test_mutated_configs_train_one_step_cleanly(workspace, data, name, mutate):
    path = _mutated_config(data.draw, workspace, name) if mutate else \
        workspace["configs"] / name
    args = ["train", path, "fit.epochs=1", "fit.batch_size=100000", "fit.validation_split=0",
            "-q", "--output-dir", workspace["runs"]]
    _check(_invoke(args), args, training=True)
    _unchanged(workspace)


@_seeded
@TRAIN
@given(data=st.data(), which=st.sampled_from(["npz", "csv"]))
def test_corrupted_data_files_are_refused_cleanly(workspace, data, which):
    ws = workspace
    name = "small.npz" if which == "npz" else "small.csv"
    original = (ws["configs"] / "data" / name).read_bytes()
    try:
        if which == "npz":
            _corrupt_arrays(data.draw, ws["configs"] / "data" / name)
        else:
            (ws["configs"] / "data" / name).write_bytes(_corrupt_bytes(data.draw, original))
        config = ws["configs"] / ("npz_model.yaml" if which == "npz" else "csv_model.yaml")
        for args in (["validate", config],
                     ["train", config, "fit.epochs=1", "-q", "--output-dir", ws["runs"]]):
            _check(_invoke(args), args, training=args[0] == "train")
    finally:
        (ws["configs"] / "data" / name).write_bytes(original)
    _unchanged(ws)


@_seeded
@TRAIN
@given(data=st.data())
def test_damaged_run_folders_are_read_cleanly(workspace, data):
    """A run folder with one damaged file: listed, plotted, evaluated and resumed cleanly."""
    ws = workspace
    ws["count"] += 1
    copy = ws["root"] / f"resume_{ws['count']}"
    shutil.copytree(ws["existing"], copy)
    target = data.draw(st.sampled_from(["checkpoints/last.npz", "resolved.yaml",
                                        "status.json", "metrics.jsonl", "source.json",
                                        "weights.npz", "overrides.yaml"]))
    file = copy / target
    file.write_bytes(_corrupt_bytes(data.draw, file.read_bytes()))
    for args in (["runs", copy], ["runs", copy, "--json"], ["plot", copy, "-o", copy / "p"],
                 ["evaluate", copy], ["train", "--resume", copy, "fit.epochs=3", "-q"]):
        _check(_invoke(args), args, training=args[0] == "train")
    _unchanged(ws)
