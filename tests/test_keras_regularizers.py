"""Regularizers and constraints against Keras 3's numbers (``tests/fixtures/weighting/
regularizers.npz``, written by ``make_regularizers.py``): the loss Keras shows while training
(``loss``), in validation (``val_loss``) and ``evaluate``, ``train_on_batch``'s values, the
penalty alone, and the weights after an epoch, for every regularizer and constraint on the
layers that take them; float64 gradient checks of every penalty."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app
from kconf.engine import constraints, regularizers
from kconf.engine.added_losses import collecting
from kconf.config import load_config
from kconf.errors import ConfigError
from kconf.keras_io.export import _layer_entry, keras_json
from kconf.keras_io.importer import convert

FIXTURES = Path(__file__).parent / "fixtures" / "weighting"
DATA = np.load(FIXTURES / "regularizers.npz")
META = json.loads((FIXTURES / "regularizers.json").read_text())
CASES = META["cases"]


def config(name: str) -> dict:
    """The case as a kconf config."""
    case = CASES[name]
    layers = [{cls: dict(args)} for cls, args in case["layers"]]
    first = next(iter(layers[0].values()))
    first["input_shape"] = case["input"]
    return {"name": name, "seed": 0, "model": {"sequential": layers},
            "compile": {"optimizer": case["optimizer"], "loss": "mse"},
            "data": {"train": {"random": {"samples": 8, "x": case["input"], "y": [2]}}}}


def fixture(name: str, key: str):
    return DATA[f"{name}/{key}"]


def weights(name: str, which: str) -> list:
    n = sum(1 for k in DATA.files if k.startswith(f"{name}/{which}/"))
    return [fixture(name, f"{which}/{i}") for i in range(n)]


def model_of(name: str):
    model = build_model(config(name))
    model.set_weights(weights(name, "w0"))
    return model


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_matches_keras(name):
    model = model_of(name)
    x, y = fixture(name, "x"), fixture(name, "y")
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, validation_data=(x, y))
    np.testing.assert_allclose(history.history["loss"][0], fixture(name, "loss"), rtol=2e-5)
    np.testing.assert_allclose(history.history["val_loss"][0], fixture(name, "val_loss"),
                               rtol=2e-5)
    for got, want in zip(model.get_weights(), weights(name, "w1"), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=4), fixture(name, "eval_loss"),
                               rtol=2e-5)
    with collecting() as added:
        model.predict(x)  # predict collects nothing: the layers' losses of a call, here
    terms = model.weight_terms.penalty() if model.weight_terms else 0.0
    with collecting() as added:
        model._forward([np.asarray(x)], training=False)
    np.testing.assert_allclose(terms + sum(added), fixture(name, "penalty"), rtol=2e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_train_on_batch_matches_keras(name):
    model = model_of(name)
    x, y = fixture(name, "x")[:4], fixture(name, "y")[:4]
    got = [model.train_on_batch(x, y) for _ in range(3)]
    np.testing.assert_allclose(got, fixture(name, "batch_losses"), rtol=2e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_export_writes_keras_args(name):
    model = build_model(config(name))
    for layer, want in zip(model.layers, META["keras_args"][name], strict=True):
        entry = _layer_entry(layer)["config"]
        got = {k: v for k, v in entry.items() if k.endswith(("_regularizer", "_constraint"))}
        assert _numbers(got) == _numbers(want), layer.name


def _numbers(value):
    """Keras's floats as written (``L1`` keeps a float32 factor) rounded to float32; a null
    ``activity_regularizer`` left out (some Keras layers write it, others do not)."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items() if k != "registered_name"
                and not (k == "activity_regularizer" and v is None)}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, float):
        return float(np.float32(value))
    return value


# --- float64 gradient checks of the penalties ----------------------------------------------

REGULARIZERS = [regularizers.L1L2(0.03, 0.0, "L1"), regularizers.L1L2(0.0, 0.05, "L2"),
                regularizers.L1L2(0.02, 0.04), regularizers.OrthogonalRegularizer(0.3),
                regularizers.OrthogonalRegularizer(0.2, "columns")]


@pytest.mark.parametrize("reg", REGULARIZERS, ids=lambda r: f"{r.class_name}-"
                         f"{getattr(r, 'mode', '')}{getattr(r, 'l1', '')}")
def test_penalty_gradients_float64(reg):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 5))
    w[np.abs(w) < 0.05] += 0.1  # away from |w|'s kink
    grad = reg.gradient(w)
    eps = 1e-6
    numeric = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        up, down = w.copy(), w.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (reg(up) - reg(down)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(grad).max() > 0


def test_orthogonal_penalty_is_keras_formula():
    """Rows of an orthogonal matrix cost nothing; two equal rows cost factor·½·1/pairs each."""
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    assert regularizers.OrthogonalRegularizer(1.0)(q) == pytest.approx(0.0, abs=1e-12)
    w = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    # rows 0 and 1 parallel: |cos| = 1 twice (both orders), 3 pairs
    assert regularizers.OrthogonalRegularizer(0.6)(w) == pytest.approx(0.6 * 0.5 * 2 / 3)


def test_constraints_are_keras_projections():
    w = np.array([[3.0, -0.1], [4.0, 0.2]], np.float32)
    c = w.copy()
    constraints.MaxNorm(2.0)(c)  # column norms 5 and ~0.22
    np.testing.assert_allclose(np.linalg.norm(c, axis=0), [2.0, 0.2236068], rtol=1e-5)
    c = w.copy()
    constraints.UnitNorm(axis=1)(c)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), [1.0, 1.0], rtol=1e-5)
    c = w.copy()
    constraints.NonNeg()(c)
    assert (c >= 0).all() and c[0, 1] == 0 and c[1, 1] == np.float32(0.2)
    c = w.copy()
    constraints.MinMaxNorm(0.5, 1.0, rate=0.5)(c)
    np.testing.assert_allclose(np.linalg.norm(c, axis=0), [3.0, (0.5 + 0.2236068) / 2],
                               rtol=1e-5)
    assert c.dtype == np.float32


# --- import and export -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(META["keras_json"]))
def test_keras_model_imports_and_trains_as_keras(name):
    """Keras's own JSON (Keras 3's ``{module, class_name, config}`` objects) imports to a
    config that trains to Keras's numbers."""
    imported = convert(META["keras_json"][name]).config
    imported["compile"] = config(name)["compile"]
    model = build_model(imported)
    model.set_weights(weights(name, "w0"))
    x, y = fixture(name, "x"), fixture(name, "y")
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, validation_data=(x, y))
    np.testing.assert_allclose(history.history["loss"][0], fixture(name, "loss"), rtol=2e-5)
    np.testing.assert_allclose(history.history["val_loss"][0], fixture(name, "val_loss"),
                               rtol=2e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_export_import_round_trip(name):
    """kconf -> Keras JSON -> kconf gives every layer the same regularizers and constraints."""
    original = load_config(config(name))
    back = convert(keras_json(build_model(original))).config
    back["data"] = config(name)["data"]
    again = load_config(back)
    for a, b in zip(original.model.sequential, again.model.sequential, strict=True):
        assert a.args.weight_options() == b.args.weight_options()
    assert any(spec.args.weight_options() for spec in again.model.sequential)


def test_import_refuses_what_kconf_lacks():
    """A regularizer kconf does not have, or a string Keras 3 does not know, is reported at
    its place in the Keras JSON."""
    for value, words in ((
            {"module": "keras.regularizers", "class_name": "MyReg", "config": {}}, "MyReg"),
            ("l1_l2", "'l1_l2'")):
        model = json.loads(json.dumps(META["keras_json"]["dense_l1_l2_activity"]))
        model["config"]["layers"][1]["config"]["kernel_regularizer"] = value
        with pytest.raises(ConfigError) as err:
            convert(model)
        assert "kernel_regularizer" in str(err.value) and words in str(err.value)


# --- bad input: located errors, exit 2 ----------------------------------------------------------

BAD = "model:\n  sequential:\n    - Dense: {units: 2, input_dim: 3, ARG}\n" + (
    "compile: {optimizer: sgd, loss: mse}\n"
    "data: {train: {random: {samples: 8, x: [3], y: [2]}}}\n")


@pytest.mark.parametrize("arg, col, where, message", [
    ("kernel_regularizer: l3", 59, "kernel_regularizer",
     "unknown regularizer 'l3'; valid: l1, l2, l1_l2"),
    ("bias_constraint: max_nrom", 56, "bias_constraint",
     "unknown constraint 'max_nrom' (did you mean 'max_norm'?)"),
    ("kernel_constraint: {MaxNorm: {max_val: 2}}", 69, "kernel_constraint.MaxNorm",
     "unknown key 'max_val' (did you mean 'max_value'?)"),
    ("kernel_regularizer: {L2: {l2: -1}}", 69, "kernel_regularizer.L2.l2",
     "must be a non-negative number, got -1"),
    ("activity_regularizer: {L3: {}}", 62, "activity_regularizer",
     "unknown regularizer 'L3'; valid: L1, L2, L1L2, OrthogonalRegularizer"),
])
def test_a_bad_regularizer_or_constraint_is_a_located_error(tmp_path, arg, col, where,
                                                             message):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD.replace("ARG", arg))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[0]
    assert line.startswith(f"{path}:3:{col}: model.sequential[0].Dense.{where}: ")
    assert message in line
    assert "Traceback" not in result.output
