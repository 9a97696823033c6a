"""The pooling and shape layers against Keras 3's numbers, and their arguments in configs.

The fixtures (tests/fixtures/layers/pooling_shape.{npz,json}, made by
``make_pooling_shape.py`` with Keras 3.15 + JAX) hold, per case, Keras's output and input
gradient for a fixed input, and the layer's Keras config. None of these layers behaves
differently in training, which is checked too.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.cli import app
from kconf.keras_io.layers import layer_args
from tests.layer_test import engine_form, make_layer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "layers"
META = json.loads((FIXTURES / "pooling_shape.json").read_text())
CASES = [case for case, entry in META.items() if not entry.get("unsupported")]
UNSUPPORTED = [case for case, entry in META.items() if entry.get("unsupported")]


def _arrays() -> dict[str, dict[str, np.ndarray]]:
    """Each case's x, r, y, dx, cut from the fixture's flat arrays in case order."""
    with np.load(FIXTURES / "pooling_shape.npz") as data:
        flat = {key: data[key] for key in ("x", "r", "y", "dx")}
    out, at = {}, {"x": 0, "r": 0, "y": 0, "dx": 0}
    for case in CASES:
        shapes = {"x": META[case]["x_shape"], "dx": META[case]["x_shape"],
                  "y": META[case]["y_shape"], "r": META[case]["y_shape"]}
        out[case] = {}
        for key, shape in shapes.items():
            size = math.prod(shape)
            out[case][key] = flat[key][at[key]:at[key] + size].astype(np.float32).reshape(shape)
            at[key] += size
    assert all(at[key] == flat[key].size for key in at)  # every number read, none left over
    return out


ARRAYS = _arrays()


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("case", CASES)
def test_output_and_input_gradient_equal_keras(case, training):
    entry, arrays = META[case], ARRAYS[case]
    layer = make_layer(entry["class"], entry["args"])
    layer.build((None, *entry["x_shape"][1:]), np.random.default_rng(0), dtype=np.float32)
    y, backward = layer.forward(arrays["x"], training=training, rng=np.random.default_rng(0))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, arrays["y"], rtol=1e-4, atol=1e-5)
    dx = backward(arrays["r"])
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, arrays["dx"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_keras_config_imports_to_the_same_layer(case):
    entry = META[case]
    reported = []
    args = layer_args(entry["class"], entry["keras_config"], 3,
                      lambda key, message: reported.append((key, message)))
    assert reported == []
    assert engine_form(entry["class"], args) == engine_form(entry["class"], entry["args"])
    # only what differs from kconf's defaults is written
    assert set(args) <= set(entry["args"])


@pytest.mark.parametrize("case", UNSUPPORTED)
def test_unsupported_keras_arguments_are_reported(case):
    entry = META[case]
    reported = []
    layer_args(entry["class"], entry["keras_config"], 3,
               lambda key, message: reported.append((key, message)))
    assert len(reported) == 1
    key, message = reported[0]
    if key == "interpolation":
        assert message == "interpolation 'bicubic' is not supported by kconf (only nearest " \
                          "and bilinear)"
    else:
        assert key == "data_format" and "channels_last" in message


def test_average_pooling_same_divides_by_the_cells_inside():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    layer = make_layer("AveragePooling2D", {"pool_size": 2, "padding": "same"})
    y, _ = layer.forward(x)
    # windows [[1, 2], [4, 5]], [[3], [6]], [[7, 8]], [[9]]
    assert y[0, :, :, 0].tolist() == [[3.0, 4.5], [7.5, 9.0]]


def test_global_max_gradient_goes_to_the_first_maximum():
    x = np.array([[[1.0], [3.0], [3.0], [2.0]]], dtype=np.float32)
    layer = make_layer("GlobalMaxPooling1D", {})
    y, backward = layer.forward(x)
    assert y.tolist() == [[3.0]]
    assert backward(np.array([[5.0]], dtype=np.float32))[0, :, 0].tolist() == [0, 5, 0, 0]


# --- arguments in configs ------------------------------------------------------------------

runner = CliRunner()

CONFIG = """\
name: t
model:
  sequential:
    - Reshape: {target_shape: TARGET, input_shape: [4, 6]}
    - LAYER
    - Flatten: {}
    - Dense: {units: 2, activation: softmax}
compile: {optimizer: sgd, loss: categorical_crossentropy}
data:
  train: {random: {samples: 8, x: [4, 6], classes: 2, one_hot: true}}
fit: {epochs: 1, batch_size: 4}
"""


def _validate(tmp_path: Path, target: str, layer: str = "Identity: {}"):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace("TARGET", target).replace("LAYER", layer))
    return path, runner.invoke(app, ["validate", str(path)])


def test_a_valid_config_of_these_layers_validates(tmp_path):
    _, result = _validate(tmp_path, "[-1, 4, 2]", "UpSampling2D: {size: 2, interpolation: "
                                                  "bilinear}")
    assert result.exit_code == 0, result.output


def test_reshape_of_the_wrong_size_is_a_located_error(tmp_path):
    path, result = _validate(tmp_path, "[5, 5]")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{path}:4:" in result.output
    assert "target_shape (5, 5) holds 25 numbers, but a sample of input shape (None, 4, 6) " \
           "has 24" in result.output


@pytest.mark.parametrize("layer, path, message", [
    ("Reshape: {target_shape: [-1, -1]}", "Reshape.target_shape",
     "only one dimension of target_shape can be -1"),
    ("Permute: {dims: [0, 1]}", "Permute.dims", "expected a permutation of the axes 1..k"),
    ("MaxPooling3D: {pool_size: [2, 2]}", "MaxPooling3D.pool_size",
     "expected a positive integer or a list of 3 positive integers, got [2, 2]"),
    ("Cropping2D: {cropping: [1, 2, 3]}", "Cropping2D.cropping",
     "expected a non-negative integer, a list of 2 (one per axis) or a list of 2 [before, "
     "after] pairs"),
    ("UpSampling2D: {interpolation: bicubic}", "UpSampling2D.interpolation",
     "interpolation 'bicubic' is not supported by kconf (only nearest and bilinear)"),
    ("UpSampling2D: {interpolation: bilinera}", "UpSampling2D.interpolation",
     "did you mean 'bilinear'?"),
])
def test_unsupported_or_wrong_arguments_are_located_errors(tmp_path, layer, path, message):
    file, result = _validate(tmp_path, "[4, 6, 1]", layer)
    assert result.exit_code == 2, result.output
    assert f"{file}:5:" in result.output and f"model.sequential[1].{path}" in result.output
    assert message in result.output
