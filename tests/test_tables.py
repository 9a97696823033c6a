"""Table sources: CSV and Parquet columns by name, glob or index; categorical columns (a
vocabulary fitted on the training split, Keras's StringLookup order, an out-of-vocabulary
id); missing values filled by the training split's mean, median or a constant; every mistake
located in the YAML."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.cli import app
from kconf.config import load_config
from kconf.data.problem import DataWarning
from kconf.data.sources import load_prepared
from kconf.errors import ConfigError
from tests.test_data_real import where

pa = pytest.importorskip("pyarrow")  # the dev extra installs it; CI always has it
import pyarrow.parquet as pq  # noqa: E402

TRAIN = """\
age,income,city,plan,score_a,score_b,label
30,100,paris,basic,1,2,yes
40,,rome,pro,3,4,no
,300,paris,basic,5,6,yes
50,400,oslo,pro,7,8,no
60,500,paris,NA,9,10,yes
"""
TEST = """\
age,income,city,plan,score_a,score_b,label
31,,lyon,basic,1,2,yes
41,200,rome,pro,3,4,no
,250,nice,pro,5,6,no
"""
SOURCE = ("{path: FILE, x: [age, income, city, plan, 'score_*'], y: label, "
          "categorical: {city: one_hot, plan: ids, label: ids}, fill: {age: mean, income: median}"
          "EXTRA}")


def write_config(tmp_path: Path, kind: str = "csv", extra: str = "", units: int = 2,
                 input_dim: int = 9, train: str = "train", test: str | None = "test") -> Path:
    suffix = "csv" if kind == "csv" else "parquet"
    source = SOURCE.replace("EXTRA", extra)
    lines = [
        "name: tables", "seed: 0", "model:", "  sequential:",
        f"    - Dense: {{units: {units}, activation: softmax, input_dim: {input_dim}}}",
        "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}",
        "data:",
        f"  train: {{{kind}: {source.replace('FILE', f'{train}.{suffix}')}}}",
    ]
    if test:
        lines.append(f"  test: {{{kind}: {source.replace('FILE', f'{test}.{suffix}')}}}")
    lines.append("fit: {epochs: 2, batch_size: 2}")
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tables(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text(TRAIN)
    (tmp_path / "test.csv").write_text(TEST)


def errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_prepared(load_config(path))
    return [p.format() for p in info.value.problems]


def test_categorical_fill_and_globs_are_fitted_on_the_training_split(tmp_path):
    write_tables(tmp_path)
    path = write_config(tmp_path)
    with pytest.warns(DataWarning) as caught:
        prepared = load_prepared(load_config(path))
    train, test = prepared.splits["train"], prepared.splits["test"]
    # columns: age, income, city one-hot (oov, paris, rome, oslo), plan id, score_a, score_b
    assert train.x[0].dtype == np.float32 and train.x[0].shape == (5, 9)
    assert train.x[0][:, 0].tolist() == [30, 40, 45, 50, 60]  # the mean of 30, 40, 50, 60
    assert train.x[0][:, 1].tolist() == [100, 350, 300, 400, 500]  # the median of the four
    # StringLookup's order: most frequent first, ties by the value, descending; 0 is OOV
    assert train.x[0][:, 2:6].tolist() == [[0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0],
                                           [0, 0, 0, 1], [0, 1, 0, 0]]
    assert train.x[0][:, 6].tolist() == [2, 1, 2, 1, 0]  # pro, basic (a tie: descending); NA
    assert train.x[0][:, 7:].tolist() == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
    assert train.y[0].tolist() == [[1], [0], [1], [0], [1]] and train.y[0].dtype == np.int64
    # the test split: the training split's fills, vocabulary and label classes
    assert test.x[0][:, 0].tolist() == [31, 41, 45] and test.x[0][:, 1].tolist() == [350, 200, 250]
    assert test.x[0][:, 2:6].tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]
    assert test.y[0].tolist() == [[1], [0], [0]]
    assert [str(w.message) for w in caught] == [
        f"{where(path, '{city: one_hot')}: data.train.csv.categorical: column 'city': 2 value(s) "
        "of the test data that the training split never had ('lyon', 'nice'): mapped to the "
        "out-of-vocabulary id 0"]
    table = prepared.preprocessing.tables()[0].params
    assert table["columns"][2] == {"name": "city", "encoding": "one_hot",
                                   "vocabulary": ["paris", "rome", "oslo"]}
    assert table["columns"][0] == {"name": "age", "fill": 45.0}


def test_unknown_error_and_oov_policies(tmp_path):
    write_tables(tmp_path)
    path = write_config(tmp_path, extra=", unknown: error")
    assert errors(path) == [
        f"{where(path, '{city: one_hot')}: data.train.csv.categorical: column 'city': 2 value(s) "
        "of the test data that the training split never had ('lyon', 'nice') (unknown: error; "
        "unknown: warn maps them to the out-of-vocabulary id 0)"]
    path = write_config(tmp_path, extra=", unknown: oov")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        test = load_prepared(load_config(path)).splits["test"]
    assert test.x[0][:, 2].tolist() == [1, 0, 1]


def test_a_label_never_seen_in_training_is_an_error(tmp_path):
    write_tables(tmp_path)
    (tmp_path / "test.csv").write_text(TEST.replace(",no\n", ",maybe\n", 1))
    path = write_config(tmp_path, extra=", unknown: oov")
    assert errors(path) == [
        f"{where(path, '{city: one_hot')}: data.train.csv.categorical: column 'label': the test "
        "data has label 'maybe' that the training split never had; its classes: no, yes"]


def test_constant_fill_and_a_missing_value_without_fill(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tables(tmp_path)
    source = ("{path: train.csv, x: [age, income], y: score_a, fill: constant, "
              "fill_value: -1}")
    path = tmp_path / "c.yaml"
    path.write_text("name: t\nmodel:\n  sequential:\n    - Dense: {units: 1, input_dim: 2}\n"
                    f"compile: {{optimizer: sgd, loss: mse}}\ndata:\n  train: {{csv: {source}}}\n")
    x = load_prepared(load_config(path)).splits["train"].x[0]
    assert x.tolist() == [[30, 100], [40, -1], [-1, 300], [50, 400], [60, 500]]
    path.write_text(path.read_text().replace(", fill: constant, fill_value: -1", ""))
    assert errors(path) == [
        f"{where(path, '{path')}: data.train.csv: train.csv:4: column 'age': missing value "
        "(give fill: mean, median or constant)",
        f"{where(path, '{path')}: data.train.csv: train.csv:3: column 'income': missing value "
        "(give fill: mean, median or constant)"]


def test_column_mistakes_are_located(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tables(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text("name: t\nmodel:\n  sequential:\n    - Dense: {units: 1, input_dim: 2}\n"
                    "compile: {optimizer: sgd, loss: mse}\ndata:\n"
                    "  train: {csv: {path: train.csv, x: ['rank_*', city], y: label, "
                    "categorical: [town], fill: {label: mean}}}\n")
    found = errors(path)
    quoted = "'rank_*'"
    assert found[0] == (f"{where(path, quoted)}: data.train.csv.x[0]: no column matches "
                        "'rank_*'; the columns of train.csv: age, income, city, plan, score_a, "
                        "score_b, label")
    assert found[1] == (f"{where(path, 'town')}: data.train.csv.categorical[0]: unknown column "
                        "'town'; the columns of train.csv: age, income, city, plan, score_a, "
                        "score_b, label")
    assert found[2] == (f"{where(path, 'mean')}: data.train.csv.fill.label: column 'label' is not "
                        "a numeric feature: fill fills missing values of features (x) that are "
                        "not categorical")
    assert len(found) == 3


def write_parquet(tmp_path: Path) -> None:
    for name, text in (("train", TRAIN), ("test", TEST)):
        rows = [line.split(",") for line in text.strip().splitlines()]
        head, body = rows[0], rows[1:]
        columns = {}
        for j, column in enumerate(head):
            cells = [r[j] for r in body]
            if column in ("city", "plan", "label"):
                columns[column] = pa.array([None if c in ("", "NA") else c for c in cells])
            else:
                columns[column] = pa.array([None if c == "" else float(c) for c in cells])
        pq.write_table(pa.table(columns), tmp_path / f"{name}.parquet")


def test_parquet_gives_what_csv_gives(tmp_path):
    write_tables(tmp_path)
    write_parquet(tmp_path)
    with pytest.warns(DataWarning):
        from_csv = load_prepared(load_config(write_config(tmp_path)))
    with pytest.warns(DataWarning):
        from_parquet = load_prepared(load_config(write_config(tmp_path, "parquet")))
    for split in ("train", "test"):
        for a, b in zip((*from_csv.splits[split].x, *from_csv.splits[split].y),
                        (*from_parquet.splits[split].x, *from_parquet.splits[split].y)):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    assert from_csv.preprocessing.to_json() == from_parquet.preprocessing.to_json()


def test_parquet_column_that_does_not_exist_exits_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_parquet(tmp_path)
    path = write_config(tmp_path, "parquet", test=None)
    path.write_text(path.read_text().replace("x: [age, income,", "x: [agee, income,"))
    result = CliRunner().invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[0] == (
        f"{where(path, 'agee')}: data.train.parquet.x[0]: unknown column 'agee' (did you mean "
        "'age'?); the columns of train.parquet: age, income, city, plan, score_a, score_b, label")
    assert not (tmp_path / "r").exists()


def test_parquet_strings_in_a_numeric_column_and_a_missing_label(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_parquet(tmp_path)
    path = write_config(tmp_path, "parquet", test=None)
    path.write_text(path.read_text().replace("categorical: {city: one_hot, plan: ids, label: ids}",
                                             "categorical: {city: one_hot, label: ids}"))
    assert errors(path) == [
        f"{where(path, '{path')}: data.train.parquet: train.parquet: row 1: column 'plan': holds "
        "strings (string) (a column of text: list it in categorical)"]


def test_a_categorical_target_stratifies_and_trains_from_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = ["size,color,label"] + [f"{i % 7},{'red' if i % 3 else 'blue'},"
                                   f"{'cat' if i % 2 else 'dog'}" for i in range(40)]
    (tmp_path / "pets.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: pets\nseed: 0\nmodel:\n  sequential:\n"
        "    - Dense: {units: 2, activation: softmax, input_dim: 4}\n"
        "compile: {optimizer: adam, loss: categorical_crossentropy, metrics: [accuracy]}\n"
        "data:\n  source: {csv: {path: pets.csv, y: label, categorical: [color, label]}}\n"
        "  split: {test: 0.25, stratify: true}\nfit: {epochs: 1, batch_size: 8}\n")
    prepared = load_prepared(load_config(path))
    test = prepared.splits["test"]
    assert test.y[0].shape == (10, 2) and test.y[0].sum(axis=0).tolist() == [5, 5]
    assert prepared.splits["train"].x[0].shape == (30, 4)  # size + color (oov, red, blue)
    result = CliRunner().invoke(app, ["train", str(path), "--quiet",
                                      "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
