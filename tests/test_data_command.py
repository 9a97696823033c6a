"""``kconf data CONFIG``: each split as the model will see it."""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kconf.cli import app

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_data_shows_sizes_shapes_classes_columns_and_rows():
    result = invoke("data", ROOT / "configs" / "tabular_csv.yaml", "--json", "--rows", "2")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    splits = summary["splits"]
    assert {n: s["samples"] for n, s in splits.items()} == {"train": 280, "validation": 40,
                                                             "test": 80}
    assert splits["test"]["x"] == {"x": {"shape": [80, 11], "dtype": "float32"}}
    assert splits["test"]["y"] == {"y": {"shape": [80, 1], "dtype": "int64"}}
    assert splits["test"]["classes"] == {"y": {"0 (no)": 44, "1 (yes)": 36}}
    assert sum(splits["train"]["classes"]["y"].values()) == 280
    assert len(splits["train"]["rows"]) == 2 and len(splits["train"]["rows"][0]["x"][0]) == 11
    columns = summary["columns"]["x"]
    assert columns[:2] == ["age (fill 50.0463)", "income (fill 32.7)"]
    assert columns[4:7] == ["city=[OOV]", "city=paris", "city=lyon"] and columns[-1] == "plan (id)"

    text = invoke("data", ROOT / "configs" / "tabular_csv.yaml", "--rows", "1").output
    assert "│ test       │      80 │ (80, 11) float32  │ (80, 1) int64  │ 0 (no): 44 (55.0%), " \
           "1 (yes): 36 (45.0%)" in text
    assert "Columns of x (11): age (fill 50.0463), income (fill 32.7), visits_web" in text
    assert "First rows of train" in text


def test_data_of_a_multi_io_model_and_a_bad_config(tmp_path):
    summary = json.loads(invoke("data", ROOT / "configs" / "twitter_multi_io.yaml", "--json",
                                "--rows", "0").output)
    train = summary["splits"]["train"]
    assert list(train["x"]) == ["main_input", "aux_input"]
    assert train["x"]["main_input"]["dtype"] == "int32"
    assert set(train["classes"]) == {"main_output", "auxiliary_output"} and train["rows"] == []
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "configs" / "tabular_csv.yaml").read_text()
                   .replace("path: data/customers.csv", f"path: {ROOT}/configs/data/customers.csv")
                   .replace("y: churned", "y: churnd"))
    result = invoke("data", bad)
    assert result.exit_code == 2
    assert "data.source.csv.y: unknown column 'churnd' (did you mean 'churned'?)" in result.output
