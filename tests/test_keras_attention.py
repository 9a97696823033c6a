"""MultiHeadAttention, Attention and AdditiveAttention equal Keras 3's on fixed inputs and
weights (``tests/fixtures/layers/attention.npz``, written by ``make_attention.py`` with Keras
3.15 + JAX): outputs and attention scores, with and without masks, in float32."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app
from kconf.keras_io.importer import convert
from tests.layer_test import make_layer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "layers"
META = json.loads((FIXTURES / "attention.json").read_text())
ARRAYS = np.load(FIXTURES / "attention.npz")
CASES = {case["id"]: case for case in META["cases"]}


def _kconf_inputs(case: dict) -> list[np.ndarray]:
    """The named tensors in the layer's call order: query, value, key (value when left out
    but a mask follows), attention_mask — as a graph line's keywords reach the layer."""
    given = {name: ARRAYS[f"{case['id']}/in/{name}"] for name in case["inputs"]}
    xs = [given["query"], given["value"]]
    if "key" in given or "attention_mask" in given:
        xs.append(given.get("key", given["value"]))
    if "attention_mask" in given:
        xs.append(given["attention_mask"])
    return xs


def _layer(case: dict, xs: list[np.ndarray]):
    layer = make_layer(case["class_name"], case["args"])
    layer.build([(None, *x.shape[1:]) for x in xs], np.random.default_rng(0))
    weights = [ARRAYS[f"{case['id']}/w/{i}"] for i in range(len(case["weight_paths"]))]
    layer.set_weights(weights)
    return layer


@pytest.mark.parametrize("case_id", list(CASES))
@pytest.mark.parametrize("training", [False, True])
def test_equals_keras(case_id, training):
    case = CASES[case_id]
    xs = _kconf_inputs(case)
    layer = _layer(case, xs)
    # Keras's weight paths inside the layer, in get_weights() order
    assert list(layer.weights) == case["weight_paths"]
    # no dropout in these cases: training changes nothing
    ys, _ = layer.forward(xs, training=training, rng=np.random.default_rng(0), **case["call"])
    ys = ys if isinstance(ys, list) else [ys]
    assert len(ys) == case["outputs"]
    for i, y in enumerate(ys):
        want = ARRAYS[f"{case_id}/out/{i}"]
        assert y.dtype == np.float32
        assert y.shape == want.shape
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5, err_msg=f"{case_id} out {i}")


def test_masks_change_the_result():
    """The masked fixtures would not pass without their masks (they are not vacuous)."""
    for case_id in ("mha_mask_scores", "mha_causal_mask_scores"):
        case = CASES[case_id]
        xs = _kconf_inputs(case)
        layer = _layer(case, xs)
        scores = layer.forward(xs, **case["call"])[0][1]
        want = ARRAYS[f"{case_id}/out/1"]
        mask = xs[3].astype(bool)[:, None]
        if case["call"].get("use_causal_mask"):
            mask = mask & np.tril(np.ones(mask.shape[-2:], dtype=bool))
        assert (~mask).any()
        assert np.all(want[~np.broadcast_to(mask, want.shape)] == 0)
        unmasked = layer.forward(xs[:3], return_attention_scores=True)[0][1]
        assert not np.allclose(unmasked, want, atol=1e-3)
        np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-5)


def test_causal_mask_changes_the_result():
    case = CASES["mha_causal"]
    xs = _kconf_inputs(case)
    layer = _layer(case, xs)
    want = ARRAYS["mha_causal/out/0"]
    assert not np.allclose(layer.forward(xs)[0], want, atol=1e-3)
    np.testing.assert_allclose(layer.forward(xs, use_causal_mask=True)[0], want,
                               rtol=1e-4, atol=1e-5)


def test_a_keras_model_calling_them_with_keywords_imports_as_keyword_lines():
    """Keras's node kwargs (a key tensor, a mask tensor, the options) become the same keywords
    in kconf's graph line; the model builds and runs with them."""
    imported = convert(FIXTURES / "attention_model.json")
    graph = imported.config["model"]["functional"]["graph"]
    assert graph == ["mha, mha_1 = mha(x, y, key=y, attention_mask=m, "
                     "return_attention_scores=True)",
                     "att = att(x, x, use_causal_mask=True)"]
    imported.config["compile"] = {"optimizer": "sgd", "loss": "mse"}
    model = build_model(imported.config)
    mha = model.graph.nodes_of(next(l for l in model.layers if l.name == "mha"))[0]
    assert mha.options == {"return_attention_scores": True}
    assert [t.name for t in mha.inputs] == ["x", "y", "y", "m"]
    assert model.graph.nodes_of(next(l for l in model.layers if l.name == "att"))[0].options \
        == {"use_causal_mask": True}


#: The groups Keras 3.15 writes for a MultiHeadAttention in ``model.weights.h5`` (its own,
#: empty, and one per sublayer, the weights in the EinsumDense ones), with their vars names.
KERAS_MHA_GROUPS = {"": "attention", "query_dense": "query", "key_dense": "key",
                    "value_dense": "value", "output_dense": "attention_output",
                    "_dropout_layer": "dropout", "_softmax": "softmax"}


def test_a_keras_archive_keeps_mha_weights_in_keras_groups_and_reads_back(tmp_path):
    h5py = pytest.importorskip("h5py")
    model = build_model(ROOT / "configs" / "transformer_classifier.yaml")
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32)
                       for w in model.get_weights()])
    path = model.save_keras(tmp_path / "t.keras")
    with zipfile.ZipFile(path) as archive, h5py.File(
            io.BytesIO(archive.read("model.weights.h5")), "r") as f:
        group = f["layers/multi_head_attention"]
        names = {key: group[f"{key}/vars" if key else "vars"].attrs["name"]
                 for key in KERAS_MHA_GROUPS}
        assert names == KERAS_MHA_GROUPS
        weights = model.get_layer("attention").weights
        for key, prefix in (("query_dense", "query/"), ("output_dense", "attention_output/")):
            stored = [group[f"{key}/vars/{i}"][()] for i in range(2)]
            for got, name in zip(stored, (f"{prefix}kernel", f"{prefix}bias")):
                np.testing.assert_array_equal(got, weights[name])
    result = CliRunner().invoke(app, ["import-keras", str(path), "-o",
                                      str(tmp_path / "again.yaml")])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "again.weights.npz") as saved:
        for name, value in model.named_weights().items():
            np.testing.assert_array_equal(saved[name], value)
