"""``sample_weight``, ``class_weight`` and ``weighted_metrics`` against Keras 3's numbers
(``tests/fixtures/weighting/weighting.npz``, written by ``make_weighting.py``): the logs of a
training epoch and of its validation, ``evaluate``, and the weights after the epoch; then the
same options through a config (data arrays, ``fit.class_weight``), and their bad values."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app
from kconf.errors import ConfigError
from kconf.train.weighting import class_sample_weights, output_weights

FIXTURES = Path(__file__).parent / "fixtures" / "weighting"
DATA = np.load(FIXTURES / "weighting.npz")
CASES = json.loads((FIXTURES / "weighting.json").read_text())["cases"]


def arrays(name: str, key: str) -> list:
    n = sum(1 for k in DATA.files if k.startswith(f"{name}/{key}/"))
    return [DATA[f"{name}/{key}/{i}"] for i in range(n)]


def logs(name: str, key: str) -> dict[str, float]:
    prefix = f"{name}/{key}/"
    return {k[len(prefix):]: float(DATA[k]) for k in DATA.files if k.startswith(prefix)}


def class_weight_of(case: dict):
    """The case's class_weight with integer classes (JSON keys are text)."""
    cw = case["fit"].get("class_weight")
    if cw is None:
        return None
    if all(k.isdigit() for k in cw):
        return {int(k): v for k, v in cw.items()}
    return {out: {int(k): v for k, v in inner.items()} for out, inner in cw.items()}


def config(name: str) -> dict:
    case = CASES[name]
    y = [2] if "sequential" in case["model"] else {"pa": [2], "pb": [1]}
    return {"name": name, "model": case["model"], "compile": case["compile"],
            "data": {"train": {"random": {"samples": 4, "x": [4], "y": y}}}}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_and_evaluate_match_keras(name):
    case = CASES[name]
    model = build_model(config(name))
    model.set_weights(arrays(name, "w0"))
    (x,), ys = arrays(name, "x"), arrays(name, "y")
    y = ys[0] if len(ys) == 1 else ys
    sw = DATA[f"{name}/sample_weight"] if case["fit"].get("sample_weight") else None
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False,
                        validation_data=(x, y, sw), sample_weight=sw,
                        class_weight=class_weight_of(case))
    want = logs(name, "history")
    got = {k: v[0] for k, v in history.history.items()}
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=2e-5, atol=1e-7, err_msg=key)
    for got_w, want_w in zip(model.get_weights(), arrays(name, "w1"), strict=True):
        np.testing.assert_allclose(got_w, want_w, rtol=2e-4, atol=2e-6)
    evaluated = model.evaluate(x, y, batch_size=4, return_dict=True, sample_weight=sw)
    want = logs(name, "evaluate")
    assert sorted(evaluated) == sorted(want)
    for key in want:
        np.testing.assert_allclose(evaluated[key], want[key], rtol=2e-5, atol=1e-7,
                                   err_msg=key)


def test_weighted_loss_divides_by_the_batch_size_not_the_weights():
    """Keras 3's sum_over_batch_size: Σ w·l / N (weights 0 and 2 halve nothing)."""
    model = build_model(config("sample_weight_softmax"))
    x, y = np.ones((2, 4), np.float32), np.array([0, 1])
    plain = model.evaluate(x, y, return_dict=True)["loss"]
    per_sample = [model.evaluate(x[i:i + 1], y[i:i + 1], return_dict=True)["loss"]
                  for i in range(2)]
    weighted = model.evaluate(x, y, return_dict=True, sample_weight=[0.0, 2.0])["loss"]
    assert weighted == pytest.approx(per_sample[1], rel=1e-6)  # (0·l0 + 2·l1) / 2
    assert weighted != pytest.approx(plain)


def test_class_weights_are_keras_sample_weights():
    np.testing.assert_array_equal(class_sample_weights(np.array([0, 2, 1, 2]), {2: 3.0}),
                                  [1, 3, 1, 3])
    one_hot = np.eye(3)[[1, 0, 2]]
    np.testing.assert_array_equal(class_sample_weights(one_hot, {0: 0.5, 1: 2.0}),
                                  [2.0, 0.5, 1.0])
    binary = np.array([[0.0], [1.0], [1.0]])
    np.testing.assert_array_equal(class_sample_weights(binary, {1: 4.0}), [1, 4, 4])
    with pytest.raises(ValueError, match="not both"):
        output_weights(["out"], [binary], [1, 1, 1], {1: 2.0})
    with pytest.raises(ValueError, match="by output name"):
        output_weights(["a", "b"], [binary, binary], None, {1: 2.0})


# --- through a config: data arrays and fit.class_weight ------------------------------------


def _write_data(tmp_path: Path, rng) -> None:
    x = rng.standard_normal((24, 4)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    w = rng.uniform(0.2, 3.0, 24).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=y, w=w)
    rows = ["a,b,c,d,label,weight"] + [",".join(map(str, [*x[i], y[i], w[i]]))
                                       for i in range(24)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")


YAML = """name: weighted
model:
  sequential:
    - Dense: {units: 3, activation: softmax, input_dim: 4}
compile:
  optimizer: {SGD: {learning_rate: 0.1}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  weighted_metrics: [accuracy]
data:
  DATA
fit: {epochs: 2, batch_size: 8, shuffle: false FIT}
"""


def _run(tmp_path: Path, data: str, fit: str = ""):
    from kconf.config import load_config
    from kconf.train.run import prepare_run

    path = tmp_path / "c.yaml"
    path.write_text(YAML.replace("DATA", data).replace(" FIT", fit))
    run = prepare_run(load_config(path), output_dir=tmp_path / "runs")
    history = run.fit()
    return run, history.history


def test_sample_weight_from_npz_and_csv_trains_as_the_api(tmp_path):
    _write_data(tmp_path, np.random.default_rng(5))
    run, logged = _run(tmp_path, "train: {npz: {path: d.npz, sample_weight: w}}")
    d = np.load(tmp_path / "d.npz")
    model = build_model(str(tmp_path / "c.yaml"))
    want = model.fit(d["x"], d["y"], batch_size=8, epochs=2, shuffle=False,
                     sample_weight=d["w"]).history
    for key in ("loss", "accuracy", "weighted_accuracy"):
        np.testing.assert_allclose(logged[key], want[key], rtol=1e-6)
    assert logged["accuracy"] != pytest.approx(logged["weighted_accuracy"])
    _, from_csv = _run(tmp_path, "train: {csv: {path: d.csv, y: label, "
                                 "sample_weight: weight}}")
    np.testing.assert_allclose(from_csv["loss"], logged["loss"], rtol=1e-5)


def test_class_weight_from_the_config(tmp_path):
    _write_data(tmp_path, np.random.default_rng(6))
    _, logged = _run(tmp_path, "train: {npz: {path: d.npz}}",
                     ", class_weight: {0: 0.5, 2: 4.0}")
    d = np.load(tmp_path / "d.npz")
    model = build_model(str(tmp_path / "c.yaml"))
    want = model.fit(d["x"], d["y"], batch_size=8, epochs=2, shuffle=False,
                     class_weight={0: 0.5, 2: 4.0}).history
    np.testing.assert_allclose(logged["loss"], want["loss"], rtol=1e-6)
    np.testing.assert_allclose(logged["weighted_accuracy"], want["weighted_accuracy"])


@pytest.mark.parametrize("fit, where, message", [
    (", class_weight: {0: 1.0, 3: 2.0}", "12:72: fit.class_weight.3",
     "class 3 does not exist: output dense has classes 0 .. 2"),
    (", class_weight: {0: -1.0}", "12:64: fit.class_weight.0",
     "a class weight is a number >= 0, got -1"),
    (", class_weight: {0: 1.0, 1: x}", "12:72: fit.class_weight.1",
     "a class weight is a number >= 0, got 'x'"),
    (", class_weight: {out: {0: 1.0}}", "12:64: fit.class_weight.out",
     "'out' is not an output (dense)"),
])
def test_bad_class_weight_is_a_located_error(tmp_path, fit, where, message):
    path = tmp_path / "c.yaml"
    path.write_text(YAML.replace("DATA", "train: {random: {samples: 8, x: [4], classes: 3}}")
                    .replace(" FIT", fit))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[0]
    assert line.startswith(f"{path}:{where}"), line
    assert message in line and "Traceback" not in result.output


def test_bad_sample_weights_are_located(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((4, 4)), y=np.zeros(4), w=np.ones(3))
    path = tmp_path / "c.yaml"
    path.write_text(YAML.replace("DATA", "train: {npz: {path: d.npz, sample_weight: w}}")
                    .replace(" FIT", ""))
    result = CliRunner().invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "data.train.npz.sample_weight: sample_weight must be one number per sample" in (
        result.output)


def test_weighted_metrics_export_and_import_with_keras_compile_config():
    from kconf.keras_io.export import keras_json
    from kconf.keras_io.importer import convert

    model = build_model(config("class_weight_two_outputs"))
    compiled = keras_json(model)["compile_config"]
    assert compiled["weighted_metrics"] == {"a": ["accuracy"], "b": ["mae"]}
    back = convert(keras_json(model)).config["compile"]
    assert back["weighted_metrics"] == {"a": ["accuracy"], "b": ["mae"]}


def test_a_weighted_metric_that_does_not_fit_is_located(tmp_path):
    path = tmp_path / "c.yaml"
    text = YAML.replace("DATA", "train: {random: {samples: 8, x: [4], classes: 3}}").replace(
        " FIT", "").replace("weighted_metrics: [accuracy]", "weighted_metrics: [accuracy, auc]")
    path.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"{path}:9:32: compile.weighted_metrics[1]: AUC on an "
                                    "output of 3 classes")


def test_class_weight_by_class_needs_one_output(tmp_path):
    cfg = config("class_weight_two_outputs")
    cfg["fit"] = {"class_weight": {0: 1.0}}
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    assert "fit.class_weight: a class_weight by class is for a model with one output" in str(
        err.value)


@pytest.mark.parametrize("loss, shape", [("mse", (3, 4, 2)), ("categorical_crossentropy", (3, 4)),
                                         ({"Huber": {"delta": 0.5}}, (3, 2))])
def test_weighted_loss_gradients_float64(loss, shape):
    from kconf.engine import loss_classes
    from kconf.train.weighting import weighted_loss
    from tests.gradcheck import assert_close_grad, numeric_grad

    rng = np.random.default_rng(2)
    fn = loss_classes.get(loss)
    y_pred = rng.uniform(0.1, 0.9, shape)
    y_true = rng.uniform(0.0, 1.0, shape)
    w = rng.uniform(0.2, 2.0, shape[0])
    _, backward = weighted_loss(fn, y_true, y_pred, w)
    numeric = numeric_grad(lambda: float(weighted_loss(fn, y_true, y_pred, w)[0]), y_pred)
    assert_close_grad(backward(1.0), numeric, f"weighted {loss}")
