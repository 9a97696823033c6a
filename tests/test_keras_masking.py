"""Masks equal Keras 3's: small Keras models (``tests/fixtures/layers/masking.npz``, written by
``make_masking.py`` with Keras 3.15 + JAX) imported into kconf give Keras's predictions on
padded sequences and, after one step of SGD, Keras's weights (so the gradients are Keras's
too): a ``mask_zero`` Embedding into LSTM, GRU and SimpleRNN (with and without
return_sequences, forwards and backwards) and GlobalAveragePooling1D; Masking into stacked
LSTMs; masks through Dense, Add and Concatenate; MultiHeadAttention, Attention and
AdditiveAttention with masked queries or masked keys only."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kconf.api import build_model
from kconf.keras_io.importer import convert

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "layers"
META = json.loads((FIXTURES / "masking.json").read_text())
ARRAYS = np.load(FIXTURES / "masking.npz")
FLOATS = ARRAYS["floats"]
TOKENS = {"tokens": ARRAYS["tokens"][0], "other": ARRAYS["tokens"][1]}
MODELS = json.loads(ARRAYS["models_json"].tobytes())
CASES = {case["id"]: (case, model) for case, model in zip(META["cases"], MODELS)}


def _piece(where) -> np.ndarray:
    """One array of ``FLOATS``, named by ``[offset, shape]``."""
    offset, shape = where
    return FLOATS[offset:offset + int(np.prod(shape))].reshape(shape)


def _model(case_id: str):
    """The Keras model imported into kconf, compiled as the fixture trained it, with the
    fixture's weights."""
    case, keras_model = CASES[case_id]
    imported = convert(keras_model)
    imported.config["compile"] = {
        "optimizer": {"SGD": {"learning_rate": META["learning_rate"]}}, "loss": "mse"}
    model = build_model(imported.config)
    model.set_weights([_piece(w) for w in case["weights"]])
    return case, model


def _inputs(case) -> list[np.ndarray]:
    return [TOKENS[x] if isinstance(x, str) else _piece(x) for x in case["inputs"]]


@pytest.mark.parametrize("case_id", list(CASES))
def test_predictions_and_one_sgd_step_equal_keras(case_id):
    case, model = _model(case_id)
    xs = _inputs(case)
    np.testing.assert_allclose(model.predict(xs), _piece(case["pred"]), rtol=1e-5, atol=1e-6)
    model.train_on_batch(xs, _piece(case["target"]))
    trained = model.get_weights()
    assert len(trained) == len(case["trained"])
    for got, want in zip(trained, case["trained"]):
        np.testing.assert_allclose(got, _piece(want), rtol=1e-5, atol=1e-6)


def _unmask(value):
    """The config with no mask: ``mask_zero: false`` and a ``mask_value`` nothing equals."""
    if isinstance(value, dict):
        out = {k: _unmask(v) for k, v in value.items()}
        if "mask_zero" in out:
            out["mask_zero"] = False
        if "Masking" in out:
            out["Masking"] = {**(out["Masking"] or {}), "mask_value": 1234.5}
        return out
    if isinstance(value, list):
        return [_unmask(v) for v in value]
    return value


@pytest.mark.parametrize("case_id", ["lstm_seq_back", "gru", "simplernn_seq", "masking_lstm",
                                     "merges", "mha_masked_keys", "attention_self"])
def test_without_the_masks_the_numbers_differ(case_id):
    """The same model and weights without masks predict something else: the fixtures check
    the masks, not plain runs that padding happens not to change."""
    case, keras_model = CASES[case_id]
    config = _unmask(convert(keras_model).config)
    assert config != convert(keras_model).config
    model = build_model(config)
    model.set_weights([_piece(w) for w in case["weights"]])
    assert not np.allclose(model.predict(_inputs(case)), _piece(case["pred"]), atol=1e-3)


EXPORTED = """\
name: exported
seed: 3
model:
  functional:
    inputs:
      tokens: {shape: [6], dtype: int32}
      values: {shape: [6, 3]}
    layers:
      embed: {Embedding: {input_dim: 9, output_dim: 3, mask_zero: true}}
      masking: {Masking: {mask_value: 0.5}}
      rnn: {GRU: {units: 2, return_sequences: true, go_backwards: true}}
      lstm: {LSTM: {units: 2, zero_output_for_mask: true}}
      join: {Concatenate: {}}
      pool: {GlobalAveragePooling1D: {}}
      head: {Dense: {units: 1}}
    graph:
      - e = embed(tokens)
      - m = masking(values)
      - s = rnn(e)
      - p = pool(s)
      - l = lstm(m)
      - j = join(p, l)
      - y = head(j)
    outputs: [y]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 4, x: {tokens: {shape: [6], dtype: int32, high: 9}, values: [6, 3]},
                   y: [1]}}
"""


def test_masks_export_to_keras_and_import_back(tmp_path):
    """The Keras JSON kconf writes keeps mask_zero, Masking's mask_value and
    zero_output_for_mask (Keras 3.15 loads the .keras archive and predicts the same: checked
    when this test was written); imported back, it predicts what the model predicts."""
    (tmp_path / "m.yaml").write_text(EXPORTED)
    model = build_model(tmp_path / "m.yaml")
    rng = np.random.default_rng(0)
    for w in model.weights:
        w[...] = rng.uniform(-0.6, 0.6, w.shape)
    tokens = TOKENS["tokens"][:, :5]
    tokens = np.concatenate([tokens, tokens[:, :1]], axis=1)
    values = rng.standard_normal((3, 6, 3)).astype(np.float32)
    values[tokens == 0] = 0.5
    model.save_keras(tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    layers = {l["name"]: l["config"] for l in json.loads(text)["config"]["layers"]}
    assert layers["embed"]["mask_zero"] is True
    assert layers["masking"]["mask_value"] == 0.5
    assert layers["lstm"]["zero_output_for_mask"] is True
    back = build_model(convert(tmp_path / "m.json").config)
    back.set_weights(model.get_weights())
    np.testing.assert_allclose(back.predict([tokens, values]), model.predict([tokens, values]),
                               rtol=1e-6)
