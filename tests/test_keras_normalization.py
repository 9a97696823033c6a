"""The normalization layers against Keras 3 (fixtures of tests/fixtures/layers/
make_normalization.py): outputs at inference, BatchNormalization's output and moving statistics
after one training call, and the gradients of the input and trainable weights in training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app
from kconf.keras_io.layers import layer_args
from tests.layer_test import make_layer

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "fixtures" / "layers"
TABLE = json.loads((HERE / "normalization.json").read_text())
NUMBERS = np.load(HERE / "normalization.npz")["numbers"]
TOL = {"rtol": 1e-4, "atol": 1e-5}


def array(key: str) -> np.ndarray:
    """One of Keras's arrays, by its key (``bn/x``)."""
    offset, shape = TABLE["arrays"][key]
    return NUMBERS[offset:offset + int(np.prod(shape))].reshape(shape)


def layer_of(case: str):
    """kconf's layer of the case, from its arguments as a config writes them, with Keras's
    weights set; and its input."""
    entry = TABLE["cases"][case]
    x = array(f"{case}/x")
    layer = make_layer(entry["layer"], entry["args"])
    layer.build((None, *x.shape[1:]), np.random.default_rng(0))
    assert list(layer.weights) == entry["weights"]  # Keras's names, in Keras's order
    layer.set_weights([array(f"{case}/w/{name}") for name in entry["weights"]])
    return layer, x


@pytest.mark.parametrize("case", sorted(TABLE["cases"]))
def test_inference_output_equals_keras(case):
    layer, x = layer_of(case)
    before = layer.get_weights()
    y, _ = layer.forward(x, training=False)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, array(f"{case}/y"), **TOL)
    for old, new in zip(before, layer.get_weights()):  # inference moves no state
        assert np.array_equal(old, new)


@pytest.mark.parametrize("case", sorted(TABLE["cases"]))
def test_training_call_and_its_gradients_equal_keras(case):
    entry = TABLE["cases"][case]
    layer, x = layer_of(case)
    y, backward = layer.forward(x, training=True)
    expected = f"{case}/y_train" if f"{case}/y_train" in TABLE["arrays"] else f"{case}/y"
    np.testing.assert_allclose(y, array(expected), **TOL)
    for name in entry["weights"]:
        if name in layer.state_names:  # moving = moving·momentum + batch·(1 − momentum)
            np.testing.assert_allclose(layer.weights[name], array(f"{case}/after/{name}"),
                                       err_msg=name, **TOL)
    layer.zero_grads()
    r = array(f"{case}/r")
    dx = backward(r)
    keras_dx = array(f"{case}/grad/x")
    if case == "unit":  # a zero sample: y = x·1e12 there; JAX's rsqrt(0) gradient is NaN
        zero = np.isnan(keras_dx)
        assert zero.any() and np.all(x[zero] == 0)
        np.testing.assert_allclose(dx[zero], 1e12 * r[zero], rtol=1e-6)
        dx, keras_dx = dx[~zero], keras_dx[~zero]
    np.testing.assert_allclose(dx, keras_dx, err_msg="x", **TOL)
    for name in entry["trainable_weights"]:
        np.testing.assert_allclose(layer.grads[name], array(f"{case}/grad/{name}"),
                                   err_msg=name, **TOL)


def test_batch_normalization_fixtures_cover_training_frozen_and_state():
    cases = TABLE["cases"]
    bn = [c for c, e in cases.items() if e["layer"] == "BatchNormalization"]
    assert all(f"{c}/after/moving_mean" in TABLE["arrays"] for c in bn)
    assert cases["bn_frozen"]["trainable_weights"] == []  # Keras: frozen, nothing trained
    # a frozen layer runs in inference mode in training: its state does not move
    assert np.array_equal(array("bn_frozen/after/moving_mean"), array("bn_frozen/w/moving_mean"))
    assert np.array_equal(array("bn_frozen/y_train"), array("bn_frozen/y"))
    assert not np.allclose(array("bn/after/moving_mean"), array("bn/w/moving_mean"))


STEP_CONFIG = {
    "name": "bn_step",
    "seed": 0,
    "model": {"sequential": [
        {"Dense": {"units": 4, "activation": "relu", "input_dim": 3}},
        {"BatchNormalization": {"momentum": 0.8}},
        {"Dense": {"units": 2, "activation": "softmax"}},
    ]},
    "compile": {"optimizer": {"SGD": {"learning_rate": 0.1}},
                "loss": "categorical_crossentropy"},
    "data": {"train": {"random": {"samples": 6, "x": [3], "classes": 2, "one_hot": True}}},
    "fit": {"epochs": 1, "batch_size": 6},
}


def test_one_training_step_of_a_model_with_batch_normalization_equals_keras():
    model = build_model(STEP_CONFIG)
    n = len([k for k in TABLE["arrays"] if k.startswith("model/before/")])
    model.set_weights([array(f"model/before/{i}") for i in range(n)])
    assert model.param_counts() == (4 * 4 + 4 + 4 + 2 * 4 + 2, 2 * 4)  # Keras's counts
    loss = model.train_on_batch(array("model/x"), array("model/y"))
    np.testing.assert_allclose(loss, array("model/loss")[0], **TOL)
    # every weight after the step: the trained ones and the moving statistics
    for i, (got, want) in enumerate(zip(model.get_weights(), [array(f"model/after/{i}")
                                                              for i in range(n)])):
        np.testing.assert_allclose(got, want, err_msg=f"weight {i}", **TOL)


def test_tabular_bn_config_counts_the_moving_statistics_as_keras_non_trainable_params():
    result = CliRunner().invoke(app, ["summary", str(ROOT / "configs" / "tabular_bn.yaml")])
    assert result.exit_code == 0, result.output
    # Dense 20·64, BN 4·64, Dense 64·32, BN 4·32, Dense 32·3 + 3; the moving statistics
    # (2·64 + 2·32) are Keras's non-trainable params
    assert "Total params: 3,811" in result.output
    assert "Trainable params: 3,619" in result.output
    assert "Non-trainable params: 192" in result.output


@pytest.mark.parametrize("case", sorted(TABLE["cases"]))
def test_keras_config_of_the_built_layer_imports_to_the_case_arguments(case):
    entry = TABLE["cases"][case]
    reported = []
    args = layer_args(entry["layer"], entry["keras_config"], 3,
                      lambda key, message: reported.append((key, message)))
    assert reported == []
    expected = {k: v for k, v in entry["args"].items() if k != "trainable"}
    if expected.get("groups") == -1:  # Keras's build writes the count: one per channel
        expected["groups"] = array(f"{case}/x").shape[-1]
    # Keras writes a built LayerNormalization's axis=-1 as [-1]: read back as the default
    assert {k: v for k, v in args.items() if k != "trainable"} == expected
    assert args.get("trainable", True) == entry["args"].get("trainable", True)


def test_a_keras2_batch_normalization_config_imports():
    """tf.keras 2 wrote a built layer's axis as a list and had Keras-2-only arguments: the
    ones that change no number are read, the others refused by name."""
    config = {"name": "bn", "trainable": True, "dtype": "float32", "axis": [3],
              "momentum": 0.9, "epsilon": 0.001, "center": True, "scale": False,
              "beta_initializer": {"class_name": "Zeros", "config": {}},
              "gamma_initializer": {"class_name": "Ones", "config": {}},
              "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
              "moving_variance_initializer": {"class_name": "Ones", "config": {}},
              "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None,
              "gamma_constraint": None, "fused": True, "renorm": False,
              "renorm_clipping": None, "renorm_momentum": 0.99, "virtual_batch_size": 2,
              "adjustment": None}
    reported = []
    args = layer_args("BatchNormalization", config, 2,
                      lambda key, message: reported.append((key, message)))
    assert args == {"axis": 3, "momentum": 0.9, "scale": False}
    assert reported == [("virtual_batch_size", "virtual_batch_size=2 is not supported by "
                         "kconf (ghost batch normalization is not implemented in kconf)")]
