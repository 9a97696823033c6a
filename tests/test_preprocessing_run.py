"""Preprocessing layers in runs: a Normalization adapted on the training split before
training (sequential and after another layer), kept as given otherwise, and an image model
with the random augmentations training end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

import kconf
from kconf.train.adapt import adapt_preprocessing
from kconf.train.run import prepare_run

ROOT = Path(__file__).resolve().parents[1]


def config(tmp_path: Path, layers: list, x: list, name: str = "pre") -> Path:
    data = {
        "name": name,
        "seed": 2,
        "model": {"sequential": layers},
        "compile": {"optimizer": "adam", "loss": "categorical_crossentropy",
                    "metrics": ["accuracy"]},
        "data": {"train": {"random": {"samples": 96, "x": x, "classes": 3, "one_hot": True}},
                 "test": {"random": {"samples": 16, "x": x, "classes": 3, "one_hot": True}}},
        "fit": {"epochs": 2, "batch_size": 32},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_normalization_is_adapted_on_the_training_split(tmp_path):
    path = config(tmp_path, [
        {"Normalization": {"input_shape": [5], "name": "norm"}},
        {"Dense": {"units": 4, "name": "hidden"}},
        {"Normalization": {"name": "norm2"}},
        {"Dense": {"units": 3, "activation": "softmax"}},
    ], [5])
    run = prepare_run(kconf.load_config(path), tmp_path / "runs")
    x = run.splits["train"].x[0]
    norm, norm2 = run.model.get_layer("norm"), run.model.get_layer("norm2")
    np.testing.assert_allclose(norm.weights["mean"], x.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.weights["variance"], x.var(axis=0), rtol=1e-5)
    # the second sees the first's normalized output through the Dense
    hidden = run.model.get_layer("hidden")
    h = ((x - x.mean(0)) / x.std(0)) @ hidden.weights["kernel"] + hidden.weights["bias"]
    np.testing.assert_allclose(norm2.weights["mean"], h.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm2.weights["variance"], h.var(axis=0), rtol=1e-4)
    out = run.model.predict(x)
    assert out.shape == (len(x), 3) and np.isfinite(out).all()
    # state, not trained: unchanged by fit, saved with the weights
    before = norm.get_weights()
    run.fit()
    for a, b in zip(before, norm.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert run.model.param_counts()[1] == (5 + 5 + 1) + (4 + 4 + 1)  # Keras's non-trainable
    saved = run.model.named_weights()
    assert sum(np.array_equal(w, norm.weights["mean"]) for w in saved.values()) >= 1


def test_given_statistics_are_not_adapted(tmp_path):
    path = config(tmp_path, [
        {"Normalization": {"input_shape": [2], "mean": [1.0, 2.0], "variance": [4.0, 1.0]}},
        {"Dense": {"units": 3, "activation": "softmax"}},
    ], [2])
    model = kconf.build_model(kconf.load_config(path))
    assert adapt_preprocessing(model, [np.ones((4, 2), np.float32)]) == []
    assert model.param_counts()[1] == 0


def test_image_augmentation_model_trains(tmp_path):
    path = config(tmp_path, [
        {"RandomFlip": {"mode": "horizontal", "input_shape": [10, 12, 2]}},
        {"RandomCrop": {"height": 8, "width": 8}},
        {"RandomContrast": {"factor": 0.2, "value_range": [-5, 5]}},
        {"RandomTranslation": {"height_factor": 0.1, "width_factor": [-0.2, 0.1]}},
        {"RandomRotation": {"factor": 0.05, "fill_mode": "constant"}},
        {"RandomZoom": {"height_factor": [-0.2, 0.1], "interpolation": "nearest"}},
        {"Resizing": {"height": 6, "width": 6}},
        {"CenterCrop": {"height": 4, "width": 4}},
        {"Normalization": {"axis": -1}},
        {"Flatten": {}},
        {"Dense": {"units": 3, "activation": "softmax"}},
    ], [10, 12, 2], name="augment")
    run = prepare_run(kconf.load_config(path), tmp_path / "runs")
    history = run.fit()
    assert len(history.history["loss"]) == 2
    assert all(np.isfinite(history.history["loss"]))
    assert run.evaluate()["loss"] > 0
