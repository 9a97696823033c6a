"""Keras's layer order: ``Model.layers``, ``get_weights()``/``set_weights()``,
``named_weights()`` and the summary's rows follow Keras 3's functional models.

Against what Keras itself gives (tests/fixtures/order/, written by
tests/fixtures/make_order_fixtures.py with Keras 3): every functional config of configs/, the
functional fixtures of tests/fixtures/keras/, and small models for the rule's corners. A weight
list from Keras's ``get_weights()`` loads into kconf with ``set_weights`` and gives Keras's
predictions; a checkpoint kconf wrote before this order (its optimizer slots are by position)
still resumes to the same weights.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from kconf.api import build_model, model_from_config
from kconf.graph.construct import snake_case
from kconf.keras_io.importer import convert
from kconf.report.summary import layer_table, render_text
from kconf.train.checkpoint import load_checkpoint, restore
from kconf.train.trained import set_named_weights
from tests.keras_support import KERAS2_COMPILE

ROOT = Path(__file__).resolve().parent.parent
ORDER = ROOT / "tests" / "fixtures" / "order"
FIXTURES = sorted(ORDER.glob("*.json"))
MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot")


def keras_order(path: Path) -> dict:
    return json.loads(path.read_text())


def kconf_model(source: str):
    """The kconf model of a fixture's architecture (a YAML config, or a Keras JSON imported),
    and Keras's name of each of its layers (the importer renames a few)."""
    path = ROOT / source
    if path.suffix != ".json":
        return build_model(path), {}
    imported = convert(path)
    imported.config.setdefault("compile", KERAS2_COMPILE)
    renamed = {name: keras for (scope, name), keras in imported.keras_names.items()
               if scope is None}
    return build_model(imported.config), renamed


def merge_helper(name: str, class_name: str) -> bool:
    """A merge layer with an automatic name (``add_1``): the importer writes it as a helper
    call, which kconf names itself (``add``), so only its class can be compared."""
    return class_name in MERGES and re.fullmatch(rf"{snake_case(class_name)}(_\d+)?", name)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_layers_and_weights_follow_keras(path):
    want = keras_order(path)
    model, renamed = kconf_model(want["source"])

    def keras_name(name: str, class_name: str) -> str:
        return class_name if merge_helper(name, class_name) else renamed.get(name, name)

    got = [keras_name(l.name, type(l).__name__) for l in model.layers]
    assert got == [keras_name(n, c) for n, c in zip(want["layers"], want["classes"])]
    assert [list(w.shape) for w in model.get_weights()] == [w["shape"] for w in want["weights"]]
    named, seen = [], set()
    for name, w in model.named_weights().items():
        if id(w) not in seen:  # a weight two layers reach: once, under its first layer
            seen.add(id(w))
            layer = name.split("/")[0]
            named.append((renamed.get(layer, layer), list(w.shape)))
    assert named == [(w["layer"], w["shape"]) for w in want["weights"]]


def test_every_functional_config_and_keras_fixture_is_checked():
    sources = {keras_order(path)["source"] for path in FIXTURES}
    functional = {f"configs/{p.name}" for p in (ROOT / "configs").glob("*.yaml")
                  if "\n  functional:" in p.read_text()}
    assert functional and functional <= sources
    keras = {f"tests/fixtures/keras/{name}.json" for name in
             ("twitter", "shared_lstm", "time_distributed", "keras2_functional")}
    assert keras <= sources


def test_keras_get_weights_load_with_set_weights_and_predict_the_same():
    """The docs' two-output model: Keras's weight list, in its order, into kconf."""
    with np.load(ORDER / "twitter_small.npz") as data:
        ref = {k: data[k] for k in data.files}
    weights = [ref[f"weights/{i}"] for i in range(len(ref)) if f"weights/{i}" in ref]
    model = build_model(ORDER / "twitter_small.yaml")
    assert model.output_names == ["main_output", "aux_output"]
    model.set_weights(weights)
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)
    preds = model.predict({name: ref[f"x/{name}"] for name in model.input_names})
    for got, name in zip(preds, model.output_names, strict=True):
        np.testing.assert_allclose(got, ref[f"pred/{name}"], atol=1e-6, rtol=1e-5)


def test_set_weights_names_the_weight_that_does_not_fit():
    model = build_model(ORDER / "twitter_small.yaml")
    weights = model.get_weights()
    with pytest.raises(ValueError, match="expects 14 weight arrays, got 13"):
        model.set_weights(weights[:-1])
    weights[4], weights[12] = weights[12], weights[4]  # dense's kernel for aux_output's
    with pytest.raises(ValueError, match=r"weight 'dense/kernel' has shape \(8, 4\), got \(3, 1\)"):
        model.set_weights(weights)


def test_weights_by_name_do_not_depend_on_the_order(tmp_path):
    """weights.npz and checkpoints are keyed by name: Keras's weights saved by name load
    into a fresh model whatever order it lists its layers in."""
    with np.load(ORDER / "twitter_small.npz") as data:
        weights = [data[f"weights/{i}"] for i in range(14)]
    source = build_model(ORDER / "twitter_small.yaml")
    source.set_weights(weights)
    np.savez(tmp_path / "weights.npz", **source.named_weights())
    target = build_model(ORDER / "twitter_small.yaml")
    with np.load(tmp_path / "weights.npz") as data:
        set_named_weights(target, {k: data[k] for k in data.files}, "weights.npz")
    for got, want in zip(target.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_checkpoint_written_before_the_keras_order_resumes_the_same():
    """Written by kconf before this order (tests/fixtures/make_old_checkpoint.py): its weights
    by name and its optimizer slots by position still fit, and one more step gives the
    weights that kconf then gave."""
    with np.load(ORDER / "twitter_small.resumed.npz") as data:
        ref = {k: data[k] for k in data.files}
    model = build_model(ORDER / "twitter_small.yaml")
    restore(model, load_checkpoint(ORDER / "twitter_small.ckpt.npz"))
    model.train_on_batch([ref["second/x/0"], ref["second/x/1"]],
                         [ref["second/y/0"], ref["second/y/1"]])
    for name, array in model.named_weights().items():
        np.testing.assert_allclose(array, ref[f"after/{name}"], rtol=1e-6, atol=1e-7,
                                   err_msg=name)


def test_the_summary_rows_follow_the_layer_order():
    model = model_from_config(ORDER / "twitter_small.yaml")
    text = render_text(layer_table(model))
    rows = [line.split("│")[1].split()[0] for line in text.splitlines()
            if line.startswith("│")]
    assert rows == keras_order(ORDER / "twitter_small.json")["layers"]


def test_sequential_keeps_its_order():
    model = build_model(ROOT / "configs" / "mlp_softmax.yaml")
    assert [layer.name for layer in model.layers] == [
        "dense", "dropout", "dense_1", "dropout_1", "dense_2"]
    assert [w.shape for w in model.get_weights()] == [(20, 64), (64,), (64, 64), (64,),
                                                      (64, 10), (10,)]


def test_a_weight_two_layers_reach_is_listed_once():
    """A nested model called and also wrapped: Keras's get_weights() lists its two arrays
    once; set_weights with that list sets what both calls use."""
    model = build_model(ORDER / "shared_wrapped.yaml")
    rng = np.random.default_rng(3)
    kernel, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    model.set_weights([kernel, bias])
    assert len(model.get_weights()) == 2 and len(model.named_weights()) == 4
    s = rng.random((2, 5, 4), dtype=np.float32)
    ea, es = model.predict({"a": s[:, 0], "s": s})
    np.testing.assert_allclose(ea, s[:, 0] @ kernel + bias, rtol=1e-5)
    np.testing.assert_allclose(es, s @ kernel + bias, rtol=1e-5)
