"""Losses and metrics with arguments in configs: validation with located errors, training with
streamed metrics in the logs, ``mode: auto``, ``kconf runs``, and the Keras round trip of the
compile section."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app
from kconf.config import load_config
from kconf.engine import metric_classes
from kconf.errors import ConfigError
from kconf.train.callbacks import mode_op
from kconf.train.listing import read_run

runner = CliRunner()


def config_text(compile_lines: str, units: int = 1, activation: str = "sigmoid",
                y: str = "classes: 2") -> str:
    """A small sequential config; ``compile_lines`` go under ``compile:`` after the
    optimizer."""
    compile_part = textwrap.indent(textwrap.dedent(compile_lines), "  ")
    return (
        "name: lm\nseed: 0\nmodel:\n  sequential:\n"
        "    - Dense: {units: 8, activation: relu, input_dim: 5}\n"
        f"    - Dense: {{units: {units}, activation: {activation}}}\n"
        f"compile:\n  optimizer: adam\n{compile_part}\n"
        f"data:\n  train: {{random: {{samples: 96, x: [5], {y}}}}}\n"
        f"  validation: {{random: {{samples: 40, x: [5], {y}}}}}\n"
        f"  test: {{random: {{samples: 30, x: [5], {y}}}}}\n"
        "fit: {epochs: 2, batch_size: 32}\n")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def locate(text: str, needle: str) -> str:
    """``LINE:COL`` (1-based) of the first ``needle`` in ``text``."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return f"{i}:{line.index(needle) + 1}"
    raise AssertionError(needle)


def test_loss_class_with_arguments_is_one_loss_for_every_output(tmp_path):
    cfg = load_config(write(tmp_path, config_text("""\
        loss: {Huber: {delta: 0.5}}
        metrics: [mae]""")))
    (loss,) = cfg.compile.loss_for(["out"])
    assert loss.tag == "Huber" and loss.args.delta == 0.5
    model = build_model(cfg)
    assert type(model.loss_fns[0]).__name__ == "Huber" and model.loss_fns[0].delta == 0.5


def test_training_logs_streamed_metrics_that_equal_keras_accumulation(tmp_path):
    cfg = load_config(write(tmp_path, config_text("""\
        loss: {BinaryCrossentropy: {label_smoothing: 0.1}}
        metrics: [auc, {Precision: {thresholds: 0.4}}, {AUC: {curve: PR, name: pr_auc}}]""")))
    model = build_model(cfg)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(70, 5)).astype(np.float32)
    y = rng.integers(0, 2, (70, 1)).astype(np.float32)
    history = model.fit(x, y, batch_size=32, epochs=2, validation_data=(x, y))
    assert {"auc", "precision", "pr_auc", "val_auc", "val_precision", "val_pr_auc"} <= set(
        history.history)
    logs = model.evaluate(x, y, batch_size=32, return_dict=True)
    pred = model.predict(x, batch_size=32)
    for name, spec in (("auc", "auc"), ("precision", {"Precision": {"thresholds": 0.4}}),
                       ("pr_auc", {"AUC": {"curve": "PR"}})):
        metric = metric_classes.get(spec)
        for start in range(0, 70, 32):  # Keras: the state accumulates over the batches
            metric.update(y[start:start + 32], pred[start:start + 32])
        assert logs[name] == pytest.approx(metric.result(), rel=1e-9)
    one = model.train_on_batch(x[:32], y[:32], return_dict=True)
    assert 0 <= one["auc"] <= 1 and set(one) == {"loss", "auc", "precision", "pr_auc"}


def test_cli_train_writes_metrics_csv_evaluation_and_runs_listing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, config_text("""\
        loss: binary_crossentropy
        metrics: [auc, {F1Score: {average: micro, threshold: 0.5}}]"""))
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs" / "lm").iterdir()
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"auc", "f1_score", "val_auc", "val_f1_score"} <= set(header)
    assert {"auc", "f1_score"} <= set(json.loads((run / "evaluation.json").read_text()))
    info = read_run(run)
    assert info.accuracy is not None and info.accuracy.name == "val_auc"


def test_mode_auto_follows_the_metrics_direction():
    for name in ("val_auc", "pr_auc", "val_precision", "f1_score", "r2_score", "mean_io_u",
                 "out_recall", "top_k_categorical_accuracy", "cosine_similarity"):
        assert mode_op(name, "auto") == "max", name
    for name in ("val_loss", "out_loss", "root_mean_squared_error", "kl_divergence",
                 "mean_absolute_percentage_error", "binary_crossentropy"):
        assert mode_op(name, "auto") == "min", name


def _validate(tmp_path, text):
    path = write(tmp_path, text)
    result = runner.invoke(app, ["validate", str(path)])
    return path, result


def test_metric_that_does_not_fit_the_output_is_a_located_error(tmp_path):
    text = config_text("""\
        loss: categorical_crossentropy
        metrics: [accuracy, auc, {F1Score: {}}]""", units=10, activation="softmax",
                       y="classes: 10, one_hot: true")
    path, result = _validate(tmp_path, text)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[0] == (f"{path}:{locate(text, 'auc')}: compile.metrics[1]: AUC on an output "
                        "of 10 classes (None, 10) would flatten them into one binary problem; "
                        "set multi_label: true (one AUC per class, averaged) or use it on a "
                        "one-unit output")
    assert lines[1] == (f"{path}:{locate(text, '{F1Score')}: compile.metrics[2]: F1Score "
                        "without average gives one score per class; set average to micro, "
                        "macro or weighted")
    assert "Traceback" not in result.output
    fixed = text.replace("auc, {F1Score: {}}",
                         "{AUC: {multi_label: true}}, {F1Score: {average: macro}}")
    assert _validate(tmp_path, fixed)[1].exit_code == 0


@pytest.mark.parametrize("loss, needle, message", [
    ("{Huber: {deltaa: 0.5}}", "deltaa", "compile.loss.Huber: unknown key 'deltaa' (did you "
                                         "mean 'delta'?); valid keys: delta"),
    ("{Hubr: {delta: 0.5}}", "Hubr", "compile.loss: unknown loss 'Hubr' (did you mean "
                                     "'Huber'?)"),
    ("{Huber: {delta: -1}}", "-1", "compile.loss.Huber.delta: must be a positive number, "
                                   "got -1"),
    ("{BinaryCrossentropy: {label_smoothing: 2}}", "2}}",
     "compile.loss.BinaryCrossentropy.label_smoothing: must be in [0, 1], got 2"),
])
def test_bad_loss_arguments_are_located_errors(tmp_path, loss, needle, message):
    text = config_text(f"loss: {loss}")
    path, result = _validate(tmp_path, text)
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == f"{path}:{locate(text, needle)}: {message}"


def test_bad_metric_arguments_are_located_errors(tmp_path):
    text = config_text("""\
        loss: binary_crossentropy
        metrics: [{AUC: {curve: ROCC}}, {MeanIoU: {}}]""")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    paths = [".".join(map(str, p.path)) for p in err.value.problems]
    assert paths == ["compile.metrics.0.AUC.curve", "compile.metrics.1.MeanIoU"]
    assert "num_classes" in err.value.problems[1].message


def test_losses_and_metrics_by_output_keep_their_classes(tmp_path):
    text = textwrap.dedent("""\
        name: two
        model:
          functional:
            inputs: {x: {shape: [4]}}
            layers:
              a: {Dense: {units: 1, activation: sigmoid}}
              b: {Dense: {units: 3, activation: softmax}}
            graph: [p = a(x), q = b(x)]
            outputs: [p, q]
        compile:
          optimizer: sgd
          loss: {p: {BinaryFocalCrossentropy: {gamma: 1.0}}, q: categorical_crossentropy}
          metrics: {p: {AUC: {}}, q: [{TopKCategoricalAccuracy: {k: 2}}]}
        data:
          train: {random: {samples: 8, x: {x: [4]}, y: {p: [1], q: [3]}}}
        """)
    cfg = load_config(write(tmp_path, text))
    model = build_model(cfg)
    assert [type(f).__name__ for f in model.loss_fns][0] == "BinaryFocalCrossentropy"
    assert [[m.name for m in ms] for ms in model.metrics] == [
        ["a_auc"], ["b_top_k_categorical_accuracy"]]


def test_compile_section_round_trips_through_keras_json(tmp_path):
    text = config_text("""\
        loss: {BinaryFocalCrossentropy: {gamma: 1.5, from_logits: true}}
        metrics: [accuracy, kld, {AUC: {curve: PR, name: pr_auc}}, {Recall: {thresholds: 0.3}}]""",
                       activation="linear")
    model = build_model(load_config(write(tmp_path, text)))
    from kconf.keras_io.compile import compile_section, keras_compile_config

    keras_cfg = keras_compile_config(model, report=lambda message: pytest.fail(message))
    assert keras_cfg["loss"] == {"module": "keras.losses", "class_name": "BinaryFocalCrossentropy",
                                 "config": {"from_logits": True, "gamma": 1.5},
                                 "registered_name": None}
    assert keras_cfg["metrics"][1] == "kl_divergence"  # Keras 3 has no 'kld'
    assert keras_cfg["metrics"][2]["config"] == {"name": "pr_auc", "curve": "PR"}

    problems = []

    class Findings:
        def add(self, path, message):
            problems.append((path, message))

    back = compile_section(keras_cfg, {"dense_1": "dense_1"}, ("compile_config",), Findings())
    assert not problems
    assert back["loss"] == {"BinaryFocalCrossentropy": {"from_logits": True, "gamma": 1.5}}
    assert back["metrics"] == ["accuracy", "kl_divergence",
                               {"AUC": {"name": "pr_auc", "curve": "PR"}},
                               {"Recall": {"thresholds": 0.3}}]


def test_keras_objects_with_unsupported_options_are_reported():
    from kconf.keras_io.compile import compile_section

    problems = []

    class Findings:
        def add(self, path, message):
            problems.append((".".join(map(str, path)), message))

    compile_section({"optimizer": "adam",
                     "loss": {"class_name": "Huber",
                              "config": {"reduction": "sum", "delta": 2.0, "fancy": 1}},
                     "metrics": [{"class_name": "AUC",
                                  "config": {"label_weights": [1, 2], "num_labels": 2}}]},
                    {"d": "d"}, ("c",), Findings())
    assert problems == [
        ("c.loss.config.reduction", "Huber reduction='sum' is not supported by kconf (kconf "
                                    "averages over the batch (sum_over_batch_size))"),
        ("c.loss.config.fancy", "Huber argument 'fancy' is not supported by kconf"),
        ("c.metrics.0.config.label_weights", "AUC label_weights=[1, 2] is not supported by "
                                             "kconf (label weights of AUC are not implemented "
                                             "in kconf)"),
    ]


def test_model_metrics_take_sample_weights_as_keras_weighted_metrics():
    from kconf.model import Metric

    y = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    p = np.array([[0.9], [0.6], [0.3], [0.2]], np.float32)
    w = np.array([1.0, 2.0, 0.0, 1.0])
    assert Metric("acc", "binary_accuracy").values(y, p, w) == (2.0, 4.0)
    streamed = Metric("precision", metric_classes.get("precision")).values(y, p, w)
    assert streamed.metric.result_of(streamed.stats) == pytest.approx(1 / 3)


def test_higher_is_better_names_are_the_registrys_up_metrics():
    from kconf.train.direction import HIGHER_IS_BETTER

    up = {cls.default_name for cls in metric_classes.METRIC_CLASSES.values()
          if cls.direction == "up"}
    assert set(HIGHER_IS_BETTER) == up | {"acc", "auc", "precision", "recall"}


def test_a_streamed_metric_is_a_sweep_objective(tmp_path):
    """A sweep may rank trials by a streamed metric the base config logs (``val_pr_auc``
    below), and a dry run checks it is logged."""
    base = config_text("""\
        loss: {CategoricalCrossentropy: {label_smoothing: 0.1}}
        metrics: [{AUC: {multi_label: true, curve: PR, name: pr_auc}}, f1_score]""",
                       units=3, activation="softmax", y="classes: 3, one_hot: true")
    base = base.replace("f1_score", "{F1Score: {average: macro}}")
    (tmp_path / "base.yaml").write_text(base)
    sweep = tmp_path / "s.yaml"
    sweep.write_text("base: base.yaml\nparameters:\n  fit.epochs: [1, 2]\n"
                     "metric: val_pr_auc\nmode: max\n")
    result = runner.invoke(app, ["sweep", str(sweep), "--dry-run"])
    assert result.exit_code == 0, result.output
    bad = sweep.read_text().replace("val_pr_auc", "val_pr_acu")
    sweep.write_text(bad)
    result = runner.invoke(app, ["sweep", str(sweep), "--dry-run"])
    assert result.exit_code == 2
    assert "'val_pr_acu' is not logged; logged: loss, pr_auc, f1_score, val_loss, val_pr_auc, " \
           "val_f1_score" in result.output
