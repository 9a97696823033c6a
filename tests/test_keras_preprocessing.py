"""kconf's preprocessing layers against Keras 3's numbers (``tests/fixtures/layers/
preprocessing.npz``, written by ``make_preprocessing.py`` beside it), and the random layers'
draws: their distributions in kconf, and Keras's semantics read from Keras's own draws."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kconf.engine.layers.random_contrast import factor_bounds
from kconf.keras_io.layers import layer_args
from tests.layer_test import engine_form, make_layer

FIXTURES = Path(__file__).parent / "fixtures" / "layers"
META = json.loads((FIXTURES / "preprocessing.json").read_text())
ARRAYS = dict(np.load(FIXTURES / "preprocessing.npz"))


def _layer(case: str, x):
    """The kconf layer of a fixture case, built for x, with Keras's weights."""
    meta = META["cases"][case]
    layer = make_layer(meta["layer"], meta["args"])
    layer.build((None, *x.shape[1:]), np.random.default_rng(0))
    if meta["weights"]:
        layer.set_weights([ARRAYS[f"{case}/w{i}"] for i in range(meta["weights"])])
    return layer


@pytest.mark.parametrize("case", list(META["cases"]))
def test_output_equals_keras(case):
    x, want = ARRAYS[f"{case}/x"], ARRAYS[f"{case}/y"]
    layer = _layer(case, x)
    y, backward = layer.forward(x, training=META["cases"][case]["training"],
                                rng=np.random.default_rng(0))
    assert y.dtype == np.float32 and y.shape == want.shape
    assert layer.compute_output_shape((None, *x.shape[1:]))[1:] == want.shape[1:]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    assert backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize("case", [c for c, m in META["cases"].items() if m["weights"]])
def test_adapt_equals_keras(case):
    """``adapt`` on the same data gives Keras's mean and variance (its count untouched)."""
    x = ARRAYS[f"{case}/x"]
    layer = _layer(case, x)
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    layer.adapt(ARRAYS[f"{case}/data"])
    names = list(layer.weights)
    assert names == ["mean", "variance", "count"]
    for i, name in enumerate(names):
        np.testing.assert_allclose(layer.weights[name], ARRAYS[f"{case}/w{i}"], rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    np.testing.assert_allclose(layer.forward(x)[0], ARRAYS[f"{case}/y"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, args", [
    ("RandomFlip", {}), ("RandomCrop", {"height": 2, "width": 3}),
    ("RandomContrast", {"factor": 0.5}), ("RandomCrop", {"height": 4, "width": 4}),
])
def test_random_layers_are_identity_in_inference_with_gradients(name, args):
    x = np.random.default_rng(1).standard_normal((3, 4, 4, 2)).astype(np.float32)
    layer = make_layer(name, args)
    y, backward = layer.forward(x, training=False, rng=None)
    if y.shape == x.shape:
        assert y is x
        dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
        assert backward(dy) is dy


# --- Keras's semantics, from Keras's draws --------------------------------------------------


def test_keras_flips_both_axes_of_the_same_images():
    x, y = ARRAYS["random_flip_sample/x"], ARRAYS["random_flip_sample/y"]
    same = np.all(y == x, axis=(1, 2, 3))
    both = np.all(y == x[:, ::-1, ::-1], axis=(1, 2, 3))
    assert np.all(same | both) and 0 < same.sum() < len(x)


def test_keras_crops_one_window_per_batch():
    x, y = ARRAYS["random_crop_sample/x"], ARRAYS["random_crop_sample/y"]
    windows = {(t, l) for t in range(4) for l in range(5)
               if np.array_equal(x[:, t:t + 2, l:l + 2], y)}
    assert len(windows) == 1


def test_keras_contrast_factor_grows_only_for_a_number():
    """Keras 3.15 reads ``factor: 0.5`` as (0, 0.5): factors drawn in [1, 1.5]."""
    x, y = ARRAYS["random_contrast_sample/x"], ARRAYS["random_contrast_sample/y"]
    mean = x.mean(axis=(1, 2), keepdims=True)
    f = ((y - mean) * (x - mean)).sum(axis=(1, 2, 3)) / ((x - mean) ** 2).sum(axis=(1, 2, 3))
    assert np.all(f >= 1 - 1e-5) and np.all(f <= 1.5 + 1e-5) and f.std() > 0.05
    assert factor_bounds(0.5) == (0.0, 0.5)


# --- kconf's draws ----------------------------------------------------------------------------


def test_random_flip_draws_half_the_images_per_mode():
    x = np.random.default_rng(3).standard_normal((4000, 2, 3, 1)).astype(np.float32)
    for mode, flipped in (("horizontal", x[:, :, ::-1]), ("vertical", x[:, ::-1]),
                          ("horizontal_and_vertical", x[:, ::-1, ::-1])):
        y, backward = make_layer("RandomFlip", {"mode": mode}).forward(
            x, training=True, rng=np.random.default_rng(4))
        same = np.all(y == x, axis=(1, 2, 3))
        assert np.all(same | np.all(y == flipped, axis=(1, 2, 3)))
        assert abs(1 - same.mean() - 0.5) < 0.03
        np.testing.assert_array_equal(backward(y), x)  # the gradient flips back


def test_random_crop_windows_are_uniform_and_shared_by_the_batch():
    x = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6, 1)
    layer = make_layer("RandomCrop", {"height": 3, "width": 4})
    rng = np.random.default_rng(5)
    corners = []
    for _ in range(600):
        y, _ = layer.forward(x, training=True, rng=rng)
        top, left = divmod(int(y[0, 0, 0, 0]), 6)
        np.testing.assert_array_equal(y, x[:, top:top + 3, left:left + 4])
        corners.append((top, left))
    counts = np.bincount([t * 3 + l for t, l in corners], minlength=9)
    assert counts.min() > 600 / 9 * 0.6  # every one of the 3 × 3 corners, about as often


def test_random_contrast_factors_are_uniform_in_keras_range():
    x = np.random.default_rng(6).uniform(50, 200, (3000, 3, 3, 1)).astype(np.float32)
    layer = make_layer("RandomContrast", {"factor": [0.2, 0.4]})
    y, _ = layer.forward(x, training=True, rng=np.random.default_rng(7))
    mean = x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y.mean(axis=(1, 2), keepdims=True), mean, rtol=1e-4)
    f = ((y - mean) * (x - mean)).sum(axis=(1, 2, 3)) / ((x - mean) ** 2).sum(axis=(1, 2, 3))
    assert f.min() >= 0.8 - 1e-4 and f.max() <= 1.4 + 1e-4
    assert abs(f.mean() - 1.1) < 0.01 and abs(f.std() - 0.6 / np.sqrt(12)) < 0.01


def test_random_contrast_clips_to_value_range():
    x = np.random.default_rng(8).uniform(0, 255, (50, 4, 4, 3)).astype(np.float32)
    y, _ = make_layer("RandomContrast", {"factor": [0.0, 1.0]}).forward(
        x, training=True, rng=np.random.default_rng(9))
    assert y.min() >= 0 and y.max() <= 255 and np.any(y == 255)


# --- Keras configs in -------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(META["cases"]))
def test_keras_config_imports_as_the_case(case):
    """Keras's own config of each fixture layer reads back as the case's arguments, with
    nothing reported."""
    meta = META["cases"][case]
    reported = []
    args = layer_args(meta["layer"], meta["keras_config"], 3,
                      lambda key, message: reported.append(key))
    assert reported == []
    assert engine_form(meta["layer"], args) == engine_form(meta["layer"], meta["args"])


@pytest.mark.parametrize("name, config, key", [
    ("Resizing", {"height": 2, "width": 2, "antialias": True}, "antialias"),
    ("Resizing", {"height": 2, "width": 2, "pad_to_aspect_ratio": True}, "pad_to_aspect_ratio"),
    ("RandomFlip", {"data_format": "channels_first"}, "data_format"),
    ("CenterCrop", {"height": 2, "width": 2, "data_format": "channels_first"}, "data_format"),
])
def test_keras_arguments_kconf_lacks_are_reported(name, config, key):
    reported = []
    layer_args(name, config, 3, lambda k, message: reported.append((k, message)))
    assert [k for k, _ in reported] == [key] and reported[0][1]


# --- the affine layers, on Keras's outputs for given draws ------------------------------------

AFFINE = META["affine"]


@pytest.mark.parametrize("case", list(AFFINE))
def test_affine_layer_equals_keras_on_given_draws(case):
    meta = AFFINE[case]
    x, want, params = (ARRAYS[f"{case}/{k}"] for k in ("x", "y", "params"))
    layer = make_layer(meta["layer"], meta["args"])
    transform = {"RandomTranslation": "translate", "RandomRotation": "rotate",
                 "RandomZoom": "zoom"}[meta["layer"]]
    transform = getattr(layer, transform)
    y, backward = transform(x, *params)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    assert backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize("case", list(AFFINE))
def test_affine_keras_config_imports_as_the_case(case):
    meta = AFFINE[case]
    reported = []
    args = layer_args(meta["layer"], meta["keras_config"], 3,
                      lambda key, message: reported.append(key))
    assert reported == []
    assert engine_form(meta["layer"], args) == engine_form(meta["layer"], meta["args"])


def test_affine_draws_follow_the_factors():
    """Shifts, zooms and angles are drawn in the factor's range, read back from what a ramp
    image becomes (bilinear interpolation of a ramp is exact)."""
    from kconf.engine.layers import RandomRotation, RandomTranslation, RandomZoom

    n = 4000
    x = np.zeros((n, 9, 9, 1), np.float32)
    x[:, :, :, 0] = np.arange(9, dtype=np.float32)  # a ramp along the width
    layer = RandomTranslation(0.0, [-0.2, 0.1], fill_mode="constant")
    y, _ = layer.forward(x, training=True, rng=np.random.default_rng(1))
    shift = x[:, 4, 4, 0] - y[:, 4, 4, 0]  # the centre pixel moved right by the shift
    assert -0.2 * 9 - 1e-4 <= shift.min() and shift.max() <= 0.1 * 9 + 1e-4
    assert abs(shift.mean() + 0.05 * 9) < 0.05
    zoom = RandomZoom(0.0, width_factor=[0.2, 0.5], fill_mode="nearest")
    y, _ = zoom.forward(x, training=True, rng=np.random.default_rng(2))
    scale = y[:, 4, 5, 0] - y[:, 4, 4, 0]  # the ramp's slope is the zoom (about the centre)
    assert 1.2 - 1e-4 <= scale.min() and scale.max() <= 1.5 + 1e-4
    assert abs(scale.mean() - 1.35) < 0.01 and abs(scale.std() - 0.3 / np.sqrt(12)) < 0.01
    rot = RandomRotation([0.25, 0.25], fill_mode="constant")  # a quarter turn, always
    square = np.random.default_rng(3).standard_normal((2, 5, 5, 1)).astype(np.float32)
    y, _ = rot.forward(square, training=True, rng=np.random.default_rng(4))
    np.testing.assert_allclose(y, np.rot90(square, k=1, axes=(1, 2)), atol=1e-5)
