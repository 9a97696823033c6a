"""Real data: CSV files, scikit-learn's digits, the seeded split of one source, the
preprocessing steps (fitted on the training split only), and digits configs that learn."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.cli import app
from kconf.config import load_config
from kconf.config.data import PREPROCESS_STEPS
from kconf.data.preprocess import FITTERS
from kconf.data.sources import load_splits, shuffle_rng
from kconf.data.split import split_indices
from kconf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
needs_sklearn = pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn is not installed "
                                                         "(pip install -e '.[dev]')")

HEAD = """\
name: t
model:
  sequential:
    - Dense: {units: 3, activation: softmax, input_dim: INPUT_DIM}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
data:
"""


def config(tmp_path: Path, data: str, input_dim: int = 2, name: str = "c.yaml") -> Path:
    """A config file whose data section is ``data`` (indented by the caller), on line 10."""
    path = tmp_path / name
    path.write_text(HEAD.replace("INPUT_DIM", str(input_dim)) + data, encoding="utf-8")
    return path


def where(path: Path, needle: str, nth: int = 0) -> str:
    """``file:line:col`` of the ``nth`` (from 0) ``needle`` in a file."""
    text = path.read_text(encoding="utf-8")
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    before = text[:index]
    return f"{path}:{before.count(chr(10)) + 1}:{index - before.rfind(chr(10))}"


def data_errors(path: Path) -> list[str]:
    """The problems that loading the config's data reports."""
    with pytest.raises(ConfigError) as info:
        load_splits(load_config(path))
    return [p.format() for p in info.value.problems]


PEOPLE = """\
age,income,label
31,2.5,0
45,3.25,2
27,1.0,1
52,4.0,2
"""


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_columns_by_name_with_a_header(tmp_path):
    (tmp_path / "people.csv").write_text(PEOPLE)
    path = config(tmp_path, "  train: {csv: {path: people.csv, x: [age, income], y: label}}\n")
    train = load_splits(load_config(path))["train"]
    (x,), (y,) = train.x, train.y
    assert x.dtype == np.float32 and x.shape == (4, 2)
    np.testing.assert_array_equal(x[:, 0], [31, 45, 27, 52])
    np.testing.assert_array_equal(x[:, 1], [2.5, 3.25, 1.0, 4.0])
    assert y.dtype == np.int64 and y.shape == (4, 1)  # whole numbers in y are labels
    np.testing.assert_array_equal(y[:, 0], [0, 2, 1, 2])


def test_csv_without_x_takes_every_column_but_the_targets(tmp_path):
    (tmp_path / "people.csv").write_text(PEOPLE)
    path = config(tmp_path, "  train: {csv: {path: people.csv, y: label}}\n")
    (x,) = load_splits(load_config(path))["train"].x
    np.testing.assert_array_equal(x[1], [45, 3.25])


def test_csv_without_a_header_by_index_with_options(tmp_path):
    (tmp_path / "raw.txt").write_text("# exported by a tool\n\n1;2;0\n\n3;4;1\n5;6;2\n")
    path = config(tmp_path, "  train: {csv: {path: raw.txt, header: false, delimiter: ';', "
                            "skip_rows: 1, x: [0, 1], y: 2}}\n")
    train = load_splits(load_config(path))["train"]
    np.testing.assert_array_equal(train.x[0], [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(train.y[0][:, 0], [0, 1, 2])


def test_csv_float_targets_stay_floats(tmp_path):
    (tmp_path / "r.csv").write_text("a,b,t\n1,2,0.5\n3,4,1.5\n")
    path = config(tmp_path, "  train: {csv: {path: r.csv, y: t}}\n")
    (y,) = load_splits(load_config(path))["train"].y
    assert y.dtype == np.float32 and y[:, 0].tolist() == [0.5, 1.5]


def test_csv_bad_cell_names_the_file_and_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data files are shown relative to the working directory
    (tmp_path / "people.csv").write_text(PEOPLE.replace("45,", "abc,").replace("1.0", "n/a"))
    path = config(tmp_path, "  train: {csv: {path: people.csv, x: [age, income], y: label}}\n")
    assert data_errors(path) == [
        f"{where(path, '{path')}: data.train.csv: people.csv:3: column 'age': cannot read 'abc' "
        "as a number (a column of text: list it in categorical)",
        f"{where(path, '{path')}: data.train.csv: people.csv:4: column 'income': missing value "
        "(give fill: mean, median or constant)",
    ]


def test_csv_empty_and_infinite_cells_are_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.csv").write_text("a,b\n1,0\n,1\n")
    (tmp_path / "q.csv").write_text("a,b\n1,0\ninf,1\n")
    for name, message in (("p.csv", "p.csv:3: column 'a': missing value (give fill: mean, "
                                    "median or constant)"),
                          ("q.csv", "q.csv:3: column 'a': 'inf' is not a finite number")):
        path = config(tmp_path, f"  train: {{csv: {{path: {name}, x: a, y: b}}}}\n",
                      input_dim=1)
        (error,) = data_errors(path)
        assert error.endswith(message)


def test_csv_unknown_column_suggests_and_lists_the_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "people.csv").write_text(PEOPLE)
    path = config(tmp_path, "  train: {csv: {path: people.csv, x: [age, incme], y: lable}}\n")
    assert data_errors(path) == [
        f"{where(path, 'incme')}: data.train.csv.x[1]: unknown column 'incme' (did you mean "
        "'income'?); the columns of people.csv: age, income, label",
        f"{where(path, 'lable')}: data.train.csv.y: unknown column 'lable' (did you mean "
        "'label'?); the columns of people.csv: age, income, label",
    ]


def test_csv_column_index_out_of_range_and_label_as_feature(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "people.csv").write_text(PEOPLE)
    path = config(tmp_path, "  train: {csv: {path: people.csv, x: [age, 7], y: label}}\n")
    assert data_errors(path) == [f"{where(path, '7]')}: data.train.csv.x[1]: column index 7 is "
                                 "out of range: people.csv has 3 columns (0-2)"]
    path = config(tmp_path, "  train: {csv: {path: people.csv, x: [age, label], y: label}}\n")
    assert data_errors(path) == [f"{where(path, 'label]')}: data.train.csv.x[1]: column "
                                 "'label' is also a target (y); a feature must not be the label"]


def test_csv_ragged_row_is_reported_with_its_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "people.csv").write_text(PEOPLE + "60,5.0\n")
    path = config(tmp_path, "  train: {csv: {path: people.csv, y: label}}\n")
    assert data_errors(path) == [f"{where(path, 'people.csv')}: data.train.csv.path: "
                                 "people.csv:6: expected 3 values (the header has), got 2"]


def test_csv_missing_file_is_located_in_the_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = config(tmp_path, "  train: {csv: {path: missing.csv, y: label}}\n")
    assert data_errors(path) == [f"{where(path, 'missing.csv')}: data.train.csv.path: data "
                                 "file not found: missing.csv"]
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "data.train.csv.path: data file not found" in result.output


def test_csv_names_without_a_header_are_a_config_error(tmp_path):
    path = config(tmp_path, "  train: {csv: {path: p.csv, header: false, x: [0, age], y: 2}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [p.format() for p in info.value.problems] == [
        f"{where(path, 'age')}: data.train.csv.x[1]: 'age' names a column, but the file has no "
        "header (header: false): give its 0-based index"]


def test_csv_columns_by_input_name_for_a_functional_model(tmp_path):
    (tmp_path / "people.csv").write_text(PEOPLE)
    path = tmp_path / "f.yaml"
    path.write_text("""\
model:
  functional:
    inputs: {a: {shape: [1]}, b: {shape: [1]}}
    layers: {merge: {Concatenate: {}}, out: {Dense: {units: 3, activation: softmax}}}
    graph:
      - m = merge(a, b)
      - p = out(m)
    outputs: [p]
compile: {optimizer: adam, loss: sparse_categorical_crossentropy}
data:
  train: {csv: {path: people.csv, x: {b: income, a: [age]}, y: label}}
""")
    (a, b) = load_splits(load_config(path))["train"].x
    np.testing.assert_array_equal(a[:, 0], [31, 45, 27, 52])
    np.testing.assert_array_equal(b[:, 0], [2.5, 3.25, 1.0, 4.0])
    path.write_text(path.read_text().replace("x: {b: income, a: [age]}", "x: [age, income]"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "give x as a mapping input name -> columns" in str(info.value)


# --- digits ------------------------------------------------------------------------------------

DIGITS = "  source: {digits: {}}\n"


@needs_sklearn
def test_digits_are_1797_images_of_64_pixels_from_0_to_16(tmp_path):
    train = load_splits(load_config(config(tmp_path, DIGITS, input_dim=64)))["train"]
    (x,), (y,) = train.x, train.y
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert x.min() == 0 and x.max() == 16
    assert y.shape == (1797, 1) and y.dtype == np.int64
    assert sorted(np.unique(y)) == list(range(10))


def test_digits_without_sklearn_is_a_located_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    path = config(tmp_path, DIGITS, input_dim=64)
    assert data_errors(path) == [f"{where(path, '{}')}: data.source.digits: the digits data "
                                 "set needs scikit-learn: pip install -e '.[digits]'"]


# --- the split of one source -------------------------------------------------------------------


def test_split_sizes_disjoint_complete_and_deterministic():
    parts = split_indices(1797, 0.1, 0.2, shuffle_rng(0))
    assert {k: len(v) for k, v in parts.items()} == {"train": 1257, "validation": 180,
                                                     "test": 360}
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(1797))  # disjoint, and every sample once
    again = split_indices(1797, 0.1, 0.2, shuffle_rng(0))
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    other = split_indices(1797, 0.1, 0.2, shuffle_rng(1))
    assert not np.array_equal(np.sort(parts["test"]), np.sort(other["test"]))
    assert set(split_indices(10, 0.0, 0.3, shuffle_rng(0))) == {"train", "test"}
    with pytest.raises(ValueError, match="none for training"):
        split_indices(3, 0.5, 0.4, shuffle_rng(0))


def test_stratified_split_keeps_each_class_share():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    parts = split_indices(100, 0.1, 0.2, shuffle_rng(0), labels)
    assert {k: len(v) for k, v in parts.items()} == {"train": 70, "validation": 10, "test": 20}
    for name, fraction in (("test", 0.2), ("validation", 0.1)):
        counts = np.bincount(labels[parts[name]], minlength=3)
        assert np.all(np.abs(counts - fraction * np.array([50, 30, 20])) <= 1), (name, counts)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(100))
    assert not np.all(np.diff(labels[parts["train"]]) >= 0)  # shuffled, not grouped by class


def test_source_split_in_a_config_follows_the_seed(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", np.arange(40, dtype=np.float32).reshape(20, 2))
    np.save(tmp_path / "y.npy", rng.integers(3, size=(20, 1)))
    data = "  source: {npy: {x: x.npy, y: y.npy}}\n  split: {validation: 0.25, test: 0.25}\n"
    path = config(tmp_path, data)
    splits = load_splits(load_config(path))
    assert {k: len(s.x[0]) for k, s in splits.items()} == {"train": 10, "validation": 5,
                                                           "test": 5}
    firsts = [set(s.x[0][:, 0].tolist()) for s in splits.values()]
    assert set.union(*firsts) == set(range(0, 40, 2)) and sum(map(len, firsts)) == 20
    same = load_splits(load_config(path))
    assert all(np.array_equal(splits[k].x[0], same[k].x[0]) for k in splits)
    reseeded = load_splits(load_config(path, {"seed": 1}))
    by_split = load_splits(load_config(path, {"data.split.seed": 1}))
    assert np.array_equal(reseeded["test"].x[0], by_split["test"].x[0])
    assert not np.array_equal(splits["test"].x[0], reseeded["test"].x[0])
    assert load_config(config(tmp_path, data + "  preprocess: []\n")).data.split.seed is None


def test_split_validation_and_fit_validation_split_together_are_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((20, 2), np.float32))
    np.save(tmp_path / "y.npy", np.zeros((20, 1), np.int64))
    path = config(tmp_path, "  source: {npy: {x: x.npy, y: y.npy}}\n"
                            "  split: {validation: 0.25}\nfit: {validation_split: 0.2}\n")
    assert data_errors(path) == [f"{where(path, '0.2}')}: fit.validation_split: give "
                                 "data.split.validation or fit.validation_split, not both"]


@pytest.mark.parametrize("data, message", [
    ("  source: {digits: {}}\n  train: {digits: {}}\n",
     "data.train: give source (split by split) or train, not both; with source, split: "
     "{validation: 0.1, test: 0.2} makes the other splits"),
    ("  train: {digits: {}}\n  split: {test: 0.2}\n",
     "data.split: split divides data.source; with train, give validation and test as sources"),
    ("  preprocess: []\n", "data: give train (and optionally validation and test), or one "
                           "source with split"),
    ("  source: {digits: {}}\n  split: {validation: 0.5, test: 0.5}\n",
     "data.split.test: validation + test must leave samples for training, got 0.5 + 0.5"),
    ("  source: {digits: {}}\n  preprocess:\n    - scal: {x: minmax}\n",
     "data.preprocess[0]: unknown preprocessing step 'scal' (did you mean 'scale'?)"),
    ("  source: {digits: {}}\n  preprocess:\n    - scale: {x: minmaxx}\n",
     "data.preprocess[0].scale.x: unknown scaling 'minmaxx' (did you mean 'minmax'?)"),
    ("  source: {digits: {}}\n  preprocess:\n    - scale: {}\n",
     "data.preprocess[0].scale: give x (inputs) and/or y (targets): the arrays this step "
     "changes"),
    ("  source: {digits: {}}\n  preprocess:\n    - reshape: {x: [8, -1, -1]}\n",
     "data.preprocess[0].reshape.x: only one dimension can be -1 (inferred)"),
    ("  source: {digits: {}}\n  preprocess:\n    - one_hot: {y: {labels: 10}}\n",
     "data.preprocess[0].one_hot.y: a sequential model's output is named after its "
     "last layer, which has no name: give that layer a name to key y by it"),
])
def test_data_section_mistakes_are_located(tmp_path, data, message):
    path = config(tmp_path, data, input_dim=64)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [p.format().split(": ", 1)[1] for p in info.value.problems] == [message]


# --- preprocessing -----------------------------------------------------------------------------


def splits_of(tmp_path: Path, steps: str, train, test, y_train=None, y_test=None,
              extra: str = ""):
    """Load npy train/test splits through a config with the given preprocess steps."""
    train, test = np.asarray(train, np.float32), np.asarray(test, np.float32)
    np.save(tmp_path / "x.npy", train)
    np.save(tmp_path / "tx.npy", test)
    np.save(tmp_path / "y.npy", np.zeros((len(train), 1), np.int64) if y_train is None
            else np.asarray(y_train))
    np.save(tmp_path / "ty.npy", np.zeros((len(test), 1), np.int64) if y_test is None
            else np.asarray(y_test))
    data = ("  train: {npy: {x: x.npy, y: y.npy}}\n  test: {npy: {x: tx.npy, y: ty.npy}}\n"
            f"  preprocess:\n{steps}{extra}")
    return config(tmp_path, data, input_dim=train.shape[1])


def test_minmax_uses_the_training_splits_statistics_for_every_split(tmp_path):
    path = splits_of(tmp_path, "    - scale: {x: minmax}\n",
                     train=[[0, 10], [2, 30], [4, 20]], test=[[1, 40], [6, 0]])
    splits = load_splits(load_config(path))
    np.testing.assert_allclose(splits["train"].x[0], [[0, 0], [0.5, 1], [1, 0.5]])
    # the test split uses train's min (0, 10) and max (4, 30), not its own: values leave [0, 1]
    np.testing.assert_allclose(splits["test"].x[0], [[0.25, 1.5], [1.5, -0.5]])
    assert splits["test"].x[0].dtype == np.float32


def test_minmax_over_all_values_and_to_a_range(tmp_path):
    path = splits_of(tmp_path, "    - scale: {x: minmax, per: all, range: [-1, 1]}\n",
                     train=[[0, 8], [16, 4]], test=[[4, 32]])
    splits = load_splits(load_config(path))
    np.testing.assert_allclose(splits["train"].x[0], [[-1, 0], [1, -0.5]])
    np.testing.assert_allclose(splits["test"].x[0], [[-0.5, 3]])


def test_standardize_uses_the_training_splits_mean_and_std(tmp_path):
    train = np.array([[1, 5], [3, 5], [5, 5]], np.float32)  # column 2 is constant
    path = splits_of(tmp_path, "    - standardize: {x: true}\n", train=train,
                     test=[[7, 6]])
    splits = load_splits(load_config(path))
    std = np.std([1, 3, 5])
    np.testing.assert_allclose(splits["train"].x[0][:, 0], np.array([-2, 0, 2]) / std,
                               rtol=1e-6)
    np.testing.assert_allclose(splits["train"].x[0][:, 1], 0)  # a constant keeps its scale
    np.testing.assert_allclose(splits["test"].x[0], [[4 / std, 1]], rtol=1e-6)


def test_statistics_leave_out_what_fit_validation_split_holds_out(tmp_path):
    path = splits_of(tmp_path, "    - scale: {x: minmax}\n", train=[[0], [2], [4], [100]],
                     test=[[1]], extra="fit: {validation_split: 0.25}\n")
    splits = load_splits(load_config(path))
    np.testing.assert_allclose(splits["train"].x[0][:, 0], [0, 0.5, 1, 25])


def test_reshape_and_one_hot(tmp_path):
    path = splits_of(tmp_path, "    - reshape: {x: [2, 2, 1]}\n    - one_hot: {y: 3}\n",
                     train=np.arange(8).reshape(2, 4), test=[[1, 2, 3, 4]],
                     y_train=[[2], [0]], y_test=[[1]])
    splits = load_splits(load_config(path))
    assert splits["train"].x[0].shape == (2, 2, 2, 1)
    np.testing.assert_array_equal(splits["train"].x[0][1, :, :, 0], [[4, 5], [6, 7]])
    np.testing.assert_array_equal(splits["train"].y[0], [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(splits["test"].y[0], [[0, 1, 0]])
    assert splits["test"].y[0].dtype == np.float32
    path = splits_of(tmp_path, "    - reshape: {x: [-1, 2]}\n", train=np.zeros((2, 4)),
                     test=np.zeros((1, 4)))
    assert load_splits(load_config(path))["test"].x[0].shape == (1, 2, 2)


def test_steps_apply_in_order(tmp_path):
    path = splits_of(tmp_path, "    - scale: {x: minmax, per: all}\n    - standardize: "
                               "{x: true, per: all}\n", train=[[0, 2], [4, 6]], test=[[2, 2]])
    x = load_splits(load_config(path))["train"].x[0]
    assert abs(float(x.mean())) < 1e-6 and abs(float(x.std()) - 1) < 1e-6


def test_preprocessing_that_does_not_fit_the_data_is_located(tmp_path):
    path = splits_of(tmp_path, "    - reshape: {x: [8, 8, 1]}\n", train=np.zeros((2, 4)),
                     test=np.zeros((1, 4)))
    assert data_errors(path) == [f"{where(path, '[8, 8, 1]')}: data.preprocess[0].reshape.x: "
                                 "cannot reshape samples of shape (4,) into (8, 8, 1): they "
                                 "have 4 values, that shape takes 64 values"]
    path = splits_of(tmp_path, "    - one_hot: {y: 3}\n", train=np.zeros((2, 4)),
                     test=np.zeros((1, 4)), y_train=[[2], [0]], y_test=[[3]])
    assert data_errors(path) == [f"{where(path, '3}')}: data.preprocess[0].one_hot.y: the test "
                                 "split has label 3, not a class of [0, 3): give the number of "
                                 "classes"]


def test_every_preprocessing_step_has_a_fitter():
    assert set(FITTERS) == set(PREPROCESS_STEPS)


# --- digits configs that learn -----------------------------------------------------------------


@needs_sklearn
@pytest.mark.parametrize("name, epochs", [("digits_mlp", 8), ("digits_cnn", 4)])
def test_digits_configs_learn_and_report_validation_metrics(tmp_path, name, epochs):
    result = CliRunner().invoke(app, ["train", str(ROOT / "configs" / f"{name}.yaml"),
                                      "--epochs", str(epochs), "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == epochs
    assert all({"loss", "accuracy", "val_loss", "val_accuracy"} <= set(row) for row in rows)
    assert rows[-1]["val_accuracy"] >= 0.85
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["accuracy"] >= 0.90, evaluation


@needs_sklearn
def test_fit_validation_split_reports_validation_metrics_too(tmp_path):
    cfg_text = (ROOT / "configs" / "digits_mlp.yaml").read_text().replace(
        "split: {validation: 0.1, test: 0.2, stratify: true}",
        "split: {test: 0.2, stratify: true}").replace(
        "fit: {epochs: 50, batch_size: 32}", "fit: {epochs: 2, batch_size: 32, "
                                             "validation_split: 0.1}")
    assert "validation_split: 0.1" in cfg_text and "validation: 0.1" not in cfg_text
    path = tmp_path / "digits_vs.yaml"
    path.write_text(cfg_text)
    result = CliRunner().invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in (tmp_path / "r").glob("*/*") if p.is_dir()]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all("val_loss" in r and "val_accuracy" in r for r in rows)


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_digits_configs_match_the_json_schema_and_round_trip(name):
    import yaml

    from kconf.config import json_schema

    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    path = ROOT / "configs" / f"{name}.yaml"
    cfg = load_config(path)
    for data in (yaml.safe_load(path.read_text()), cfg.to_data()):
        assert list(validator.iter_errors(data)) == []
    assert load_config(cfg.to_data()) == cfg


def test_csv_and_preprocess_round_trip_and_match_the_json_schema(tmp_path):
    import yaml

    from kconf.config import json_schema

    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    path = config(tmp_path, "  source: {csv: {path: p.csv, x: [0, 1], y: 2, header: false, "
                            "delimiter: ';'}}\n  split: {test: 0.25, seed: 3}\n"
                            "  preprocess:\n    - standardize: {x: true, per: all}\n"
                            "    - scale: {x: minmax, range: [-1, 1]}\n"
                            "    - reshape: {x: [2, -1]}\n    - one_hot: {y: 3}\n")
    cfg = load_config(path)
    for data in (yaml.safe_load(path.read_text()), cfg.to_data()):
        assert list(validator.iter_errors(data)) == []
    assert load_config(cfg.to_data()) == cfg
    bad = yaml.safe_load(path.read_text())
    bad["data"]["preprocess"][0]["standardize"]["mean"] = True
    assert list(validator.iter_errors(bad))


TWO_INPUTS = """\
model:
  functional:
    inputs: {a: {shape: [1]}, b: {shape: [1]}}
    layers: {merge: {Concatenate: {}}, out: {Dense: {units: 3, activation: softmax}}}
    graph:
      - m = merge(a, b)
      - p = out(m)
    outputs: [p]
compile: {optimizer: adam, loss: categorical_crossentropy}
data:
  train: {csv: {path: people.csv, x: {a: age, b: income}, y: label}}
  preprocess:
    - scale: {x: {b: minmax}}
    - one_hot: {y: {out: 3}}
"""


def test_steps_by_input_and_output_name(tmp_path):
    (tmp_path / "people.csv").write_text(PEOPLE)
    path = tmp_path / "f.yaml"
    path.write_text(TWO_INPUTS)
    train = load_splits(load_config(path))["train"]
    np.testing.assert_array_equal(train.x[0][:, 0], [31, 45, 27, 52])  # a: left alone
    np.testing.assert_allclose(train.x[1][:, 0], [0.5, 0.75, 0, 1])
    assert train.y[0].shape == (4, 3)  # keyed by the layer that computes output p
    path.write_text(TWO_INPUTS.replace("{b: minmax}", "{c: minmax}"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [p.format() for p in info.value.problems] == [
        f"{where(path, 'c: minmax')}: data.preprocess[0].scale.x.c: unknown input 'c'; the "
        "model's inputs: a, b"]
