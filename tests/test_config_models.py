"""The example configs of issue 13 (``configs/resnet_small.yaml``,
``configs/conv_autoencoder.yaml``, ``configs/transformer_text.yaml``) against Keras: their
summaries show Keras's layers, output shapes and parameter counts (trainable and not), from
``tests/fixtures/configs/config_models.json`` (made by Keras 3 with
``make_config_models.py`` there); and they train (the autoencoder to a stated loss).
Every config also validates and trains one epoch in tests/test_cli.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app

ROOT = Path(__file__).resolve().parents[1]
KERAS = json.loads((ROOT / "tests" / "fixtures" / "configs" / "config_models.json").read_text())
MODELS = ["resnet_small", "conv_autoencoder", "transformer_text"]


def shape_text(shape) -> str:
    """A Keras output shape as the summary prints it: ``(None, 8, 8, 64)``."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


@pytest.mark.parametrize("name", MODELS)
def test_summary_shows_keras_layers_shapes_and_parameter_counts(name):
    keras = KERAS[name]
    result = CliRunner().invoke(app, ["summary", str(ROOT / "configs" / f"{name}.yaml")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"Total params: {keras['total']:,} " in out
    assert f"Trainable params: {keras['trainable']:,} " in out
    assert f"Non-trainable params: {keras['non_trainable']:,} " in out
    lines = out.splitlines()
    place = -1
    for layer, class_name, shape, params in keras["layers"]:
        (row,) = [i for i, line in enumerate(lines) if f"│ {layer} ({class_name})" in line]
        cells = [c.strip() for c in lines[row].split("│")]
        assert cells[2] == shape_text(shape), layer
        assert cells[3] == f"{params:,}", layer
        assert row > place, f"{layer} is out of Keras's order"
        place = row


@pytest.mark.parametrize("name", MODELS)
def test_model_has_keras_layers_in_keras_order_and_counts(name):
    keras = KERAS[name]
    model = build_model(ROOT / "configs" / f"{name}.yaml")
    names = [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]
    assert names == [row[0] for row in keras["layers"]]
    assert model.param_counts() == (keras["trainable"], keras["non_trainable"])
    assert model.count_params() == keras["total"]


def test_resnet_small_has_residual_adds_batch_normalization_and_global_pooling():
    model = build_model(ROOT / "configs" / "resnet_small.yaml")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Add") == 3 and kinds.count("BatchNormalization") == 9
    assert "GlobalAveragePooling2D" in kinds
    # the moving statistics are the non-trainable parameters: 2 per channel of each BN
    bn_channels = sum(layer.weights["gamma"].size for layer in model.layers
                      if type(layer).__name__ == "BatchNormalization")
    assert model.param_counts()[1] == 2 * bn_channels


def test_conv_autoencoder_learns_to_redraw_its_images(tmp_path):
    """The config's comment: the test loss ends near 0.02 after its 30 epochs (binary
    crossentropy per pixel; the first epoch's is about 0.68)."""
    result = CliRunner().invoke(app, ["train", str(ROOT / "configs" / "conv_autoencoder.yaml"),
                                      "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    evaluation = json.loads((run / "evaluation.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["loss"] > 0.5
    assert evaluation["loss"] < 0.05, evaluation


def test_transformer_text_is_the_keras_example_and_takes_token_ids():
    model = build_model(ROOT / "configs" / "transformer_text.yaml")
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 20000, (3, 200)).astype(np.int32)
    positions = np.broadcast_to(np.arange(200, dtype=np.int32), (3, 200))
    probs = model.predict([tokens, positions])
    assert probs.shape == (3, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    mha = model.get_layer("attention")
    assert (mha.num_heads, mha.key_dim) == (2, 32)
