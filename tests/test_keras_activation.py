"""The activation family against Keras 3's numbers (``tests/fixtures/layers/activation.npz``,
written by ``make_activation.py``): every activation name, each layer in inference, the
structure of Keras's own training draws for the random layers (and statistics of ours), the
added loss of ActivityRegularization, and a Keras model with ConvNeXt's ``LayerScale`` and
InceptionResNetV2's ``CustomScaleLayer`` imported and run."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import kconf
from kconf.engine import activations
from kconf.engine.added_losses import collecting
from kconf.engine.layers.noise import ALPHA_P, AlphaDropout
from kconf.keras_io.export import _layer_entry
from kconf.keras_io.layers import layer_args
from tests.layer_test import make_layer

FIXTURES = Path(__file__).parent / "fixtures" / "layers"
DATA = np.load(FIXTURES / "activation.npz")
META = json.loads((FIXTURES / "activation.json").read_text())
CASES = META["cases"]
ACT_NAMES = sorted(k.split("/", 1)[1] for k in DATA.files
                   if k.startswith("act/") and k not in ("act/x", "act/gelu_approximate"))

TOL = {"rtol": 1e-5, "atol": 1e-6}


def _close(got, want, **tol):
    np.testing.assert_allclose(got, want, **{**TOL, **tol})


def test_fixture_covers_every_activation_name():
    assert set(ACT_NAMES) == set(activations.ACTIVATIONS)


@pytest.mark.parametrize("name", ACT_NAMES)
def test_activation_equals_keras(name):
    x = DATA["act/x"]
    y, _ = activations.get(name)(x.copy())
    assert y.dtype == np.float32
    _close(y, DATA[f"act/{name}"], rtol=1e-5, atol=1e-5 if name == "exponential" else 1e-6)


def test_gelu_approximate_equals_keras():
    y, _ = activations.gelu_approximate(DATA["act/x"])
    _close(y, DATA["act/gelu_approximate"])


def _layer(cid):
    """kconf's layer of a fixture case, built and holding Keras's weights; its input(s)."""
    case = CASES[cid]
    layer = make_layer(case["class"], case["args"])
    if f"{cid}/x" in DATA.files:
        x = DATA[f"{cid}/x"]
        shape = (None, *x.shape[1:])
    else:
        x = [DATA[f"{cid}/x{i}"] for i in range(2)]
        shape = [(None, *xi.shape[1:]) for xi in x]
    layer.build(shape, np.random.default_rng(0))
    weights = [DATA[f"{cid}/w{i}"] for i in range(len(layer.weights))]
    layer.set_weights(weights)
    return layer, x


@pytest.mark.parametrize("cid", sorted(CASES))
def test_inference_equals_keras(cid):
    layer, x = _layer(cid)
    y, backward = layer.forward(x, training=False, rng=np.random.default_rng(0))
    assert y.dtype == np.float32
    if f"{cid}/y_train" in DATA.files:  # a random layer: Keras's inference is the identity
        np.testing.assert_array_equal(y, x)
    else:
        _close(y, DATA[f"{cid}/y"])


def test_activity_regularization_adds_kerass_loss():
    layer, x = _layer("activity_regularization")
    with collecting() as added:
        y, _ = layer.forward(x)
    np.testing.assert_array_equal(y, x)
    assert len(added) == 1
    np.testing.assert_allclose(added[0], float(DATA["activity_regularization/loss"]), rtol=1e-6)
    # outside collecting() (predict) nothing is added anywhere
    layer.forward(x)


# --- training mode: Keras's draws are its own, so check their structure with our formula ---


@pytest.mark.parametrize("cid, rate", [("spatial_dropout1d", 0.5), ("spatial_dropout2d", 0.3),
                                       ("spatial_dropout3d", 0.4)])
def test_spatial_dropout_drops_whole_channels_like_keras(cid, rate):
    layer, x = _layer(cid)
    for y in (DATA[f"{cid}/y_train"],
              layer.forward(x, training=True, rng=np.random.default_rng(5))[0]):
        scaled = x / np.float32(1 - rate)
        zero = np.all(y == 0, axis=tuple(range(1, x.ndim - 1)))
        kept = np.all(np.isclose(y, scaled, rtol=1e-6, atol=1e-6),
                      axis=tuple(range(1, x.ndim - 1)))
        assert np.all(zero | kept)  # every (sample, channel) dropped or kept as a whole
        assert zero.any() and kept.any()


def test_spatial_dropout_rate_and_mean():
    layer = make_layer("SpatialDropout2D", {"rate": 0.3})
    x = np.ones((400, 2, 2, 50), np.float32)
    y, backward = layer.forward(x, training=True, rng=np.random.default_rng(1))
    dropped = (y[:, 0, 0, :] == 0).mean()
    assert abs(dropped - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02
    np.testing.assert_array_equal(backward(np.ones_like(y)), y)  # same mask and scale
    assert layer.forward(x, training=False)[0] is x


def test_alpha_dropout_values_follow_kerass_affine_constants():
    layer, x = _layer("alpha_dropout")
    a, b = layer.affine()
    rate = 0.2
    assert a == pytest.approx(((1 - rate) * (1 + rate * ALPHA_P ** 2)) ** -0.5)
    assert ALPHA_P == pytest.approx(-1.7580993408473766)
    for y in (DATA["alpha_dropout/y_train"],
              layer.forward(x, training=True, rng=np.random.default_rng(3))[0]):
        kept = np.isclose(y, a * x + b, rtol=1e-5, atol=1e-5)
        dropped = np.isclose(y, a * ALPHA_P + b, rtol=1e-5, atol=1e-5)
        assert np.all(kept | dropped) and kept.any() and dropped.any()


def test_alpha_dropout_keeps_selu_statistics():
    layer = AlphaDropout(0.2)
    x = np.random.default_rng(4).standard_normal((2000, 100)).astype(np.float32)
    y, _ = layer.forward(x, training=True, rng=np.random.default_rng(5))
    assert abs(y.mean()) < 0.01 and abs(y.std() - 1.0) < 0.01
    kept = ~np.isclose(y, layer.affine()[0] * ALPHA_P + layer.affine()[1])
    assert abs(kept.mean() - 0.8) < 0.01


def test_gaussian_noise_statistics():
    layer, x = _layer("gaussian_noise")
    np.testing.assert_array_equal(layer.forward(x)[0], x)
    assert not np.allclose(DATA["gaussian_noise/y_train"], x)  # Keras adds noise in training
    big = np.zeros((500, 200), np.float32)
    y, backward = layer.forward(big, training=True, rng=np.random.default_rng(6))
    assert y.dtype == np.float32
    assert abs(y.mean()) < 0.005 and abs(y.std() - 0.5) < 0.005
    np.testing.assert_array_equal(backward(big + 1), big + 1)


def test_gaussian_dropout_statistics():
    layer, x = _layer("gaussian_dropout")
    ones = np.ones((500, 200), np.float32)
    y, backward = layer.forward(ones, training=True, rng=np.random.default_rng(7))
    assert abs(y.mean() - 1.0) < 0.01
    assert abs(y.std() - math.sqrt(0.3 / 0.7)) < 0.01
    np.testing.assert_array_equal(backward(ones), y)


def test_random_layers_repeat_with_the_same_rng_and_differ_with_another():
    for cls, args in (("GaussianNoise", {"stddev": 0.3}), ("AlphaDropout", {"rate": 0.3}),
                      ("SpatialDropout1D", {"rate": 0.5}), ("GaussianDropout", {"rate": 0.3})):
        layer = make_layer(cls, args)
        x = np.random.default_rng(0).standard_normal((4, 5, 6)).astype(np.float32)
        y1 = layer.forward(x, training=True, rng=np.random.default_rng(1))[0]
        y2 = layer.forward(x, training=True, rng=np.random.default_rng(1))[0]
        y3 = layer.forward(x, training=True, rng=np.random.default_rng(2))[0]
        np.testing.assert_array_equal(y1, y2)
        assert not np.array_equal(y1, y3), cls


# --- Keras files in and out -------------------------------------------------------------------


def test_keras_model_with_application_layers_imports_and_predicts_like_keras():
    config = kconf.from_keras(META["model"])
    layers = config["model"]["functional"]["layers"]
    assert layers["layer_scale"] == {"LayerScale": {"init_values": 0.1, "projection_dim": 4}}
    assert layers["custom_scale"] == {"CustomScaleLayer": {"scale": 0.3}}
    model = kconf.build_model(config)
    n = len(model.get_weights())
    model.set_weights([DATA[f"model/w{i}"] for i in range(n)])
    _close(model.predict(DATA["model/x"]), DATA["model/y"])


def test_application_layers_export_with_their_keras_module():
    layer = make_layer("LayerScale", {"init_values": 0.5, "projection_dim": 3, "name": "ls"})
    entry = _layer_entry(layer)
    assert entry["module"] == "keras.src.applications.convnext"
    assert entry["registered_name"] == "LayerScale"
    assert entry["config"]["init_values"] == 0.5 and entry["config"]["projection_dim"] == 3
    assert _layer_entry(make_layer("ReLU", {}))["module"] == "keras.layers"


def test_spatial_dropout_exports_without_trainable():
    # Keras's SpatialDropout constructors take no ``trainable``: load_model would fail on it
    config = _layer_entry(make_layer("SpatialDropout2D", {"rate": 0.3, "name": "sd"}))["config"]
    assert "trainable" not in config and config["rate"] == 0.3
    assert "trainable" in _layer_entry(make_layer("GaussianNoise", {"stddev": 0.1}))["config"]


def test_leaky_relu_takes_keras2s_alpha():
    assert make_layer("LeakyReLU", {"alpha": 0.1}).negative_slope == 0.1
    report = []
    args = layer_args("LeakyReLU", {"name": "l", "alpha": 0.1}, 2,
                      lambda k, m: report.append((k, m)))
    assert args == {"negative_slope": 0.1} and report == []


@pytest.mark.parametrize("cls, config, key", [
    ("AlphaDropout", {"rate": 0.1, "noise_shape": [None, 1]}, "noise_shape"),
    ("PReLU", {"alpha_regularizer": {"class_name": "MyRegularizer"}}, "alpha_regularizer"),
    ("SpatialDropout2D", {"rate": 0.1, "data_format": "channels_first"}, "data_format"),
])
def test_unsupported_keras_arguments_are_listed(cls, config, key):
    report = []
    layer_args(cls, config, 3, lambda k, m: report.append((k, m)))
    assert [k for k, _ in report] == [key]
