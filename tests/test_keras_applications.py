"""What keras.applications need beyond plain layers, imported as Keras computes it.

The fixture app_blocks (tests/fixtures/keras/make_app_blocks.py) holds those building blocks
in one small model; tests/test_keras_import.py checks its predictions, gradients and one SGD
step against Keras's numbers with the other fixtures (it is one of ``CASES``). Here: what the
import makes of each block, the exported archive, and the refusals. bench/applications.py
runs the full-size applications where Keras is installed.
"""
from __future__ import annotations

import numpy as np
import pytest

import kconf
from kconf.engine.layers.dropout import Dropout
from kconf.errors import ConfigError, ShapeError
from kconf.keras_io.layers import INITIALIZER
from tests.keras_support import APP_BLOCKS, imported_model, model_inputs, reference

h5py = pytest.importorskip("h5py", reason="Keras weight files need h5py ('.[keras]')")


def _layers():
    return kconf.from_keras(APP_BLOCKS.model_path)["model"]["functional"]


def test_operations_with_a_constant_import_as_rescaling_layers():
    model = _layers()
    layers = model["layers"]
    assert layers["add_layer"] == {"Rescaling": {"scale": 1.0, "offset": 3.0}}  # x + 3
    assert layers["multiply_layer"] == {"Rescaling": {"scale": 1.0 / 6.0}}     # x * (1/6)
    assert layers["subtract_layer"] == {"Rescaling": {"scale": 1.0, "offset": -0.5}}
    assert layers["true_divide"] == {"Rescaling": {"scale": 0.25}}             # x / 4
    assert layers["multiply_2"] == {"Rescaling": {"scale": 2.0}}               # 2 * x
    # the operation of two tensors (hard swish x * hard_sigmoid(x)) stays a Multiply
    assert "merged = multiply(batch_normalization, x)" in model["graph"]


def test_squeeze_excite_dropout_noise_shape_and_variance_scaling_are_kept():
    layers = _layers()["layers"]
    assert layers["se_excite"] == {"Multiply": {}}
    assert layers["drop"] == {"Dropout": {"rate": 0.3, "noise_shape": [None, 1, 1, 1]}}
    assert layers["conv2d"]["Conv2D"]["kernel_initializer"] == {
        "variance_scaling": {"scale": 2.0, "mode": "fan_out"}}
    assert layers["probs"]["Dense"]["kernel_initializer"] == {
        "variance_scaling": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"}}


def test_the_exported_archive_imports_back_and_predicts_the_same(tmp_path):
    _, model = imported_model(APP_BLOCKS)
    x = model_inputs(model, reference(APP_BLOCKS))
    path = model.save_keras(tmp_path / "blocks.keras")
    again = kconf.build_model(kconf.from_keras(path))
    named = model.named_weights()
    again.set_weights([named[k] for k in again.named_weights()])
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


# --- operations with a constant, one at a time -------------------------------------------------

_TENSOR = {"class_name": "__keras_tensor__",
           "config": {"shape": [None, 3], "dtype": "float32", "keras_history": ["x", 0, 0]}}


def _operation(op: str, args: list) -> dict:
    """A Keras 3 functional model's JSON: input x, then ``op(*args)``."""
    return {"class_name": "Functional", "keras_version": "3.15.1", "config": {
        "name": "m", "input_layers": [["x", 0, 0]], "output_layers": [["op", 0, 0]],
        "layers": [
            {"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
             "config": {"batch_shape": [None, 3], "dtype": "float32", "name": "x"}},
            {"module": "keras.src.ops.numpy", "class_name": op, "name": "op",
             "config": {"name": "op"}, "inbound_nodes": [{"args": args, "kwargs": {}}]}]}}


X = np.array([[-2.5, 0.1, 7.0], [1e-3, 3.0, -0.7]], dtype=np.float32)


@pytest.mark.parametrize("op, args, expected", [
    ("Add", [_TENSOR, 3.0], X + np.float32(3.0)),
    ("Add", [0.5, _TENSOR], X + np.float32(0.5)),
    ("Subtract", [_TENSOR, 0.25], X - np.float32(0.25)),
    ("Subtract", [1.5, _TENSOR], np.float32(1.5) - X),
    ("Multiply", [_TENSOR, 1.0 / 6.0], X * np.float32(1.0 / 6.0)),
    ("Multiply", [2, _TENSOR], X * np.float32(2.0)),
    ("TrueDivide", [_TENSOR, 4.0], X / np.float32(4.0)),
])
def test_each_operation_computes_what_keras_computes(op, args, expected):
    model = kconf.build_model(kconf.from_keras(_operation(op, args)))
    np.testing.assert_array_equal(model.predict(X), expected)


def test_division_by_a_constant_is_within_an_ulp():
    model = kconf.build_model(kconf.from_keras(_operation("TrueDivide", [_TENSOR, 3.0])))
    np.testing.assert_array_max_ulp(model.predict(X), X / np.float32(3.0), maxulp=1)


@pytest.mark.parametrize("op, args, message", [
    ("TrueDivide", [1.0, _TENSOR], "TrueDivide with the constant first (1.0 truedivide x) "
                                   "has no kconf layer"),
    ("Multiply", [_TENSOR, [1.0, 2.0, 3.0]], "Multiply of a tensor and [1.0, 2.0, 3.0]: kconf "
                                             "reads an operation with a constant only when "
                                             "the constant is one number"),
    ("TrueDivide", [_TENSOR, 0], "TrueDivide by zero"),
])
def test_constants_kconf_cannot_reproduce_are_reported_where_they_are(op, args, message):
    with pytest.raises(ConfigError) as err:
        kconf.from_keras(_operation(op, args))
    problem = err.value.problems[0]  # (then: the output no call computes)
    assert problem.format().startswith(
        f"<keras config>: config.layers[1].inbound_nodes: 'op': {message}")


# --- Dropout's noise_shape, VarianceScaling -----------------------------------------------------


def test_dropout_noise_shape_drops_whole_samples_in_training():
    layer = Dropout(0.5, noise_shape=(None, 1, 1, 1))
    x = np.ones((64, 3, 3, 2), dtype=np.float32)
    y, _ = layer.forward(x, training=True, rng=np.random.default_rng(0))
    per_sample = y.reshape(64, -1)
    assert set(np.unique(per_sample)) == {0.0, 2.0}
    assert (per_sample.min(axis=1) == per_sample.max(axis=1)).all()  # all or nothing
    assert 16 < (per_sample[:, 0] == 0).sum() < 48
    assert layer.forward(x, training=False)[0] is x


def test_a_noise_shape_that_does_not_broadcast_is_refused():
    with pytest.raises(ShapeError) as err:
        Dropout(0.2, noise_shape=(None, 2, 1)).compute_output_shape((None, 3, 4))
    assert "Dropout's noise_shape (None, 2, 1) does not broadcast to its input shape " \
           "(None, 3, 4)" in str(err.value)


@pytest.mark.parametrize("config, kconf_form", [
    ({"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal", "seed": None},
     {"variance_scaling": {"scale": 2.0, "mode": "fan_out"}}),
    ({"scale": 1 / 3, "mode": "fan_out", "distribution": "uniform"},
     {"variance_scaling": {"scale": 1 / 3, "mode": "fan_out", "distribution": "uniform"}}),
    ({"scale": 0.1, "mode": "fan_avg", "distribution": "untruncated_normal"},
     {"variance_scaling": {"scale": 0.1, "mode": "fan_avg",
                           "distribution": "untruncated_normal"}}),
    ({"scale": 2.0, "mode": "fan_in", "distribution": "normal"}, "he_normal"),  # Keras 2
    ({"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"}, "glorot_uniform"),
])
def test_variance_scaling_imports_and_exports(config, kconf_form):
    value = INITIALIZER.to_kconf({"class_name": "VarianceScaling", "config": config}, 3)
    assert value == kconf_form
    if isinstance(kconf_form, dict):
        back = INITIALIZER.to_keras(value)
        assert back["class_name"] == "VarianceScaling"
        expected = {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal",
                    **kconf_form["variance_scaling"]}
        assert {k: back["config"][k] for k in expected} == expected


def test_variance_scaling_that_keras_does_not_define_is_refused():
    with pytest.raises(Exception) as err:
        INITIALIZER.to_kconf({"class_name": "VarianceScaling",
                              "config": {"mode": "fan_sum"}}, 3)
    assert "VarianceScaling(mode='fan_sum', distribution='truncated_normal') is not one " \
           "Keras defines" in str(err.value)
