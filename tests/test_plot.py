"""Learning curves of a run folder (``kconf plot``) and ``kconf train``'s terminal loss chart."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kconf.cli import app
from kconf.report.chart import loss_chart, run_loss_chart
from kconf.report.plot import (INSTALL_HINT, PlotError, learning_curves, plot_file_name,
                               read_metrics)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()

TINY = """name: tiny
seed: 0
model:
  sequential:
    - Dense: {units: 8, activation: relu, input_dim: 4}
    - Dense: {units: 3, activation: softmax}
compile:
  optimizer: adam
  loss: categorical_crossentropy
  metrics: [accuracy]
data:
  train: {random: {samples: 48, x: [4], classes: 3, one_hot: true}}
fit: {epochs: EPOCHS, batch_size: 16, validation_split: 0.25}
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def train_tiny(root: Path, epochs: int):
    config = root / f"tiny_{epochs}.yaml"
    config.write_text(TINY.replace("EPOCHS", str(epochs)))
    result = invoke("train", config, "--output-dir", root / "runs")
    assert result.exit_code == 0, result.output
    (run_dir,) = sorted((root / "runs" / "tiny").iterdir())
    return run_dir, result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained by the CLI for 2 epochs with validation_split: val_ curves exist."""
    return train_tiny(tmp_path_factory.mktemp("plot"), epochs=2)


def write_metrics(run_dir: Path, rows, tail: str = "") -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return run_dir


# --- kconf plot ---------------------------------------------------------------------------
def test_plot_writes_one_png_per_quantity_into_the_run_folder(trained):
    pytest.importorskip("matplotlib")
    run_dir, _ = trained
    result = invoke("plot", run_dir)
    assert result.exit_code == 0, result.output
    plots = run_dir / "plots"
    assert sorted(p.name for p in plots.iterdir()) == ["accuracy.png", "loss.png"]
    for png in plots.iterdir():
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
        assert f"wrote {png}" in result.output


def test_plot_output_folder_option(trained, tmp_path):
    pytest.importorskip("matplotlib")
    run_dir, _ = trained
    result = invoke("plot", run_dir, "-o", tmp_path / "figs")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "figs" / "loss.png").read_bytes().startswith(PNG_SIGNATURE)


def test_plot_without_matplotlib_says_how_to_install_it(trained, monkeypatch):
    run_dir, _ = trained
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    result = invoke("plot", run_dir, "-o", run_dir / "no_plots")
    assert result.exit_code == 2
    assert INSTALL_HINT in result.output
    assert "kconf plot needs matplotlib: pip install -e '.[plot]'" in result.output
    assert "Traceback" not in result.output
    assert not (run_dir / "no_plots").exists()


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["missing", "empty", "blank"])
def test_plot_without_metrics_is_a_clear_error(tmp_path, content):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if content is not None:
        (run_dir / "metrics.jsonl").write_text(content)
    result = invoke("plot", run_dir)
    assert result.exit_code == 2
    assert "metrics.jsonl" in result.output and "Traceback" not in result.output


def test_plot_of_a_path_that_is_not_a_folder(tmp_path):
    result = invoke("plot", tmp_path / "nope")
    assert result.exit_code == 2 and "is not a folder" in result.output


def test_read_metrics_keeps_the_last_row_of_an_epoch_and_skips_a_cut_last_line(tmp_path):
    run_dir = write_metrics(tmp_path, [{"epoch": 1, "loss": 3.0}, {"epoch": 2, "loss": 2.0},
                                       {"epoch": 2, "loss": 1.5}, {"epoch": 3, "loss": 1.0}],
                            tail='{"epoch": 4, "lo')
    rows = read_metrics(run_dir)
    assert [(r["epoch"], r["loss"]) for r in rows] == [(1, 3.0), (2, 1.5), (3, 1.0)]


def test_read_metrics_rejects_a_broken_line_in_the_middle(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "loss": 1}\nnot json\n'
                                            '{"epoch": 2, "loss": 1}\n')
    with pytest.raises(PlotError, match=r"metrics.jsonl:2: not a JSON object"):
        read_metrics(tmp_path)


def test_learning_curves_pair_train_and_validation_loss_first():
    rows = [{"epoch": 1, "accuracy": 0.5, "loss": 2.0, "val_loss": 2.5, "val_accuracy": 0.4,
             "out_loss": 1.0},
            {"epoch": 2, "accuracy": 0.6, "loss": float("nan"), "val_loss": 2.1,
             "val_accuracy": 0.5, "out_loss": 0.9}]
    curves = learning_curves(rows)
    assert list(curves) == ["loss", "accuracy", "out_loss"]
    assert curves["loss"] == {"train": ([1], [2.0]), "validation": ([1, 2], [2.5, 2.1])}
    assert curves["accuracy"]["validation"] == ([1, 2], [0.4, 0.5])
    assert set(curves["out_loss"]) == {"train"}
    assert plot_file_name("kconf_examples.metrics:mean pred") == \
        "kconf_examples.metrics_mean_pred.png"


# --- the terminal chart -------------------------------------------------------------------
LOSS = [1.0, 0.5, 0.25, 0.125]
VAL = [1.1, 0.7, 0.6, 0.65]


def scripted(loss=LOSS, val=VAL):
    rows = [{"epoch": i + 1, "loss": v} for i, v in enumerate(loss)]
    for row, v in zip(rows, val or []):
        row["val_loss"] = v
    return rows


def plot_rows(text: str) -> list[str]:
    """The chart's plot-area rows: what follows the axis tick of each line."""
    return [line.split("┤" if "┤" in line else "│", 1)[1] for line in text.splitlines()
            if "┤" in line or "│" in line]


def test_chart_draws_train_and_validation_with_min_and_max_labels():
    chart = loss_chart(scripted(), width=24, height=4)
    text = chart.plain
    lines = text.splitlines()
    assert lines[0] == "loss per epoch"
    assert lines[1].split("┤")[0].strip() == "1.1000"  # the maximum: val_loss at epoch 1
    assert lines[4].split("┤")[0].strip() == "0.1250"  # the minimum: loss at epoch 4
    rows = plot_rows(text)
    assert len(rows) == 4
    assert all(ch == " " or 0x2800 <= ord(ch) <= 0x28FF for row in rows for ch in row)
    assert rows[0][0] != " "  # epoch 1 starts at the top left (val_loss 1.1)
    assert len(rows[-1]) == 24 and rows[-1][-1] != " "  # loss ends at the bottom right
    assert "└" + "─" * 24 in text
    assert lines[-2].split() == ["1", "epoch", "4"]
    assert "loss  min 0.1250 (epoch 4)" in lines[-1]
    assert "val_loss  min 0.6000 (epoch 3)" in lines[-1]
    styles = {span.style for span in chart.spans}
    assert {"cyan", "magenta"} <= styles


def test_chart_of_a_falling_loss_falls():
    chart = loss_chart(scripted([4.0, 3.0, 2.0, 1.0, 0.5, 0.25], val=None), width=30, height=6)
    rows = plot_rows(chart.plain)
    # the first dotted row of each column never rises from left to right
    tops = [min(r for r, row in enumerate(rows) if c < len(row) and row[c] != " ")
            for c in range(30)]
    assert tops == sorted(tops) and tops[0] == 0 and tops[-1] == 5
    assert "val_loss" not in chart.plain


def test_chart_needs_two_epochs_and_ignores_non_finite_values():
    assert loss_chart(scripted([1.0], val=None)) is None
    assert loss_chart([]) is None
    assert loss_chart(scripted([1.0, math.nan], val=None)) is None
    chart = loss_chart(scripted([2.0, math.nan, 1.0], val=None), width=10, height=3)
    assert "min 1.0000 (epoch 3)" in chart.plain


def test_chart_of_a_flat_loss_has_a_range():
    chart = loss_chart(scripted([0.3, 0.3, 0.3], val=None), width=10, height=3)
    labels = [line.split("┤")[0].strip() for line in chart.plain.splitlines() if "┤" in line]
    assert labels == ["0.3150", "0.2850"]
    assert plot_rows(chart.plain)[1].strip()  # the line runs through the middle row


def test_run_loss_chart_reads_the_run_folder(tmp_path):
    assert run_loss_chart(tmp_path / "missing") is None
    write_metrics(tmp_path, scripted())
    assert run_loss_chart(tmp_path).plain == loss_chart(scripted()).plain


def test_train_ends_with_the_loss_chart(trained):
    _, output = trained
    tail = output[output.index("Run folder:"):]
    assert "loss per epoch" in tail and "val_loss  min" in tail
    assert any(0x2800 <= ord(ch) <= 0x28FF for ch in tail)


def test_train_of_one_epoch_shows_no_chart(tmp_path):
    _, output = train_tiny(tmp_path, epochs=1)
    assert "Run folder:" in output and "loss per epoch" not in output
