"""Masks (``kconf.engine.masks``): float64 gradient checks of the layers that use a mask, what
a masked step means, how merges combine masks, where the graph refuses a mask (one located
line, exit 2), and that a model without masks does no mask work. Keras's numbers:
``tests/test_keras_masking.py``."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app
from kconf.graph import execute
from tests.gradcheck import assert_close_grad, numeric_grad
from tests.layer_test import make_layer

#: three sequences of 4 steps: padding at the end, at the start, in the middle
MASK = np.array([[1, 1, 1, 0], [0, 0, 1, 1], [1, 0, 1, 0]], dtype=bool)


def _built(name: str, args: dict, shape, seed: int = 0):
    layer = make_layer(name, args)
    layer.build(shape, np.random.default_rng(seed), dtype=np.float64)
    for w in layer.weights.values():  # nonzero biases too, so every weight matters
        w[...] = np.random.default_rng(seed + 1).uniform(-0.7, 0.7, w.shape)
    return layer


def _check_gradients(layer, xs: list, mask, **call):
    """Float64 finite differences of sum(r · y) for every input and weight."""
    rng = np.random.default_rng(5)
    single = layer.n_inputs == 1

    def run():
        x = xs[0] if single else xs
        return layer.forward(x, mask=mask, **call)

    ys, _ = run()
    ys_list = ys if isinstance(ys, list) else [ys]
    rs = [rng.standard_normal(y.shape) for y in ys_list]

    def loss():
        ys, _ = run()
        return sum(float((r * y).sum()) for r, y in zip(rs, ys if isinstance(ys, list) else [ys]))

    layer.zero_grads()
    _, backward = run()
    dx = backward(rs if isinstance(ys, list) else rs[0])
    dxs = [dx] if single else dx
    for i, x in enumerate(xs):
        assert_close_grad(dxs[i], numeric_grad(loss, x), f"input {i}")
    for name, w in layer.weights.items():
        assert_close_grad(np.asarray(layer.grads[name]), numeric_grad(loss, w), name)


RECURRENT = [
    ("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}), ("SimpleRNN", {}),
]
FLAGS = [
    {}, {"return_sequences": True}, {"go_backwards": True},
    {"return_sequences": True, "go_backwards": True, "return_state": True},
    {"return_sequences": True, "zero_output_for_mask": True},
    {"zero_output_for_mask": True, "go_backwards": True},
]


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "-".join(f) or "last")
@pytest.mark.parametrize("name,extra", RECURRENT, ids=lambda v: v if isinstance(v, str) else "")
def test_masked_recurrent_gradients(name, extra, flags):
    layer = _built(name, {"units": 2, **extra, **flags}, (None, 4, 3))
    x = np.random.default_rng(1).standard_normal((3, 4, 3))
    _check_gradients(layer, [x], MASK)


@pytest.mark.parametrize("name", ["LSTM", "GRU", "SimpleRNN"])
def test_a_masked_step_keeps_the_state_and_repeats_the_output(name):
    layer = _built(name, {"units": 3, "return_sequences": True, "return_state": True},
                   (None, 4, 2))
    x = np.random.default_rng(2).standard_normal((3, 4, 2))
    (seq, *states), _ = layer.forward(x, mask=MASK)
    # sample 0: steps 0-2 are data, step 3 repeats step 2; the final state is step 2's
    np.testing.assert_array_equal(seq[0, 3], seq[0, 2])
    np.testing.assert_array_equal(states[0][0], seq[0, 2])
    # sample 1 starts with padding: zero states until the first data step
    np.testing.assert_array_equal(seq[1, :2], 0)
    # what the masked steps hold does not matter
    noisy = x.copy()
    noisy[~MASK] = 100.0
    (seq2, *states2), _ = layer.forward(noisy, mask=MASK)
    np.testing.assert_allclose(seq2, seq)
    for a, b in zip(states2, states):
        np.testing.assert_allclose(a, b)
    # an all-True mask is no mask; zero_output_for_mask zeroes the masked outputs
    (plain, *_), _ = layer.forward(x)
    (full, *_), _ = layer.forward(x, mask=np.ones((3, 4), dtype=bool))
    np.testing.assert_array_equal(full, plain)
    layer.zero_output_for_mask = True
    (zeroed, *_), _ = layer.forward(x, mask=MASK)
    np.testing.assert_array_equal(zeroed[~MASK], 0)
    np.testing.assert_array_equal(zeroed[MASK], seq[MASK])


def test_go_backwards_reverses_the_mask_with_the_sequence():
    forwards = _built("LSTM", {"units": 2}, (None, 4, 2))
    backwards = _built("LSTM", {"units": 2, "go_backwards": True}, (None, 4, 2))
    x = np.random.default_rng(3).standard_normal((3, 4, 2))
    y_back, _ = backwards.forward(x, mask=MASK)
    y_flipped, _ = forwards.forward(x[:, ::-1].copy(), mask=MASK[:, ::-1].copy())
    np.testing.assert_allclose(y_back, y_flipped, rtol=1e-12)


@pytest.mark.parametrize("keepdims", [False, True])
def test_masked_global_average_pooling(keepdims):
    layer = _built("GlobalAveragePooling1D", {"keepdims": keepdims}, (None, 4, 3))
    x = np.random.default_rng(4).standard_normal((3, 4, 3))
    y, _ = layer.forward(x, mask=MASK)
    want = np.stack([x[i][MASK[i]].mean(axis=0) for i in range(3)])
    np.testing.assert_allclose(y.reshape(3, 3), want, rtol=1e-12)
    assert layer.mask_origins(["Embedding 'e' (mask_zero)"]) is None  # used up here
    _check_gradients(layer, [x], MASK)


def test_masking_layer_zeroes_and_masks_the_padded_steps():
    layer = _built("Masking", {"mask_value": 0.5}, (None, 4, 2))
    x = np.random.default_rng(5).standard_normal((3, 4, 2))
    x[~MASK] = 0.5
    x[0, 0, 0] = 0.5  # one feature equal to mask_value is not enough
    np.testing.assert_array_equal(layer.compute_mask(x, None), MASK)
    y, backward = layer.forward(x)
    np.testing.assert_array_equal(y[~MASK], 0)
    np.testing.assert_array_equal(y[MASK], x[MASK])
    np.testing.assert_array_equal(backward(np.ones_like(x))[~MASK], 0)
    assert "Masking" in layer.mask_origins([None])


@pytest.mark.parametrize("name,args", [
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2}), ("Attention", {}),
    ("AdditiveAttention", {})])
def test_masked_attention_gradients_and_masked_keys_get_no_weight(name, args):
    layer = _built(name, args, [(None, 4, 3), (None, 4, 3)])
    rng = np.random.default_rng(6)
    query, value = rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 4, 3))
    _check_gradients(layer, [query, value], [MASK, MASK])
    _check_gradients(layer, [query, value], [None, MASK], return_attention_scores=True)
    (_, scores), _ = layer.forward([query, value], mask=[None, MASK],
                                   return_attention_scores=True)
    scores = scores if scores.ndim == 3 else scores.sum(axis=1)  # MHA: (B, H, T, S)
    np.testing.assert_allclose(scores[np.broadcast_to(~MASK[:, None, :], scores.shape)], 0,
                               atol=1e-12)


def test_merges_combine_masks_as_keras():
    a, b = MASK, np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=bool)
    x = np.zeros((3, 4, 2))
    add = make_layer("Add", {})
    np.testing.assert_array_equal(add.compute_mask([x, x], [a, b]), a | b)
    assert add.mask_origins(["e1", None]) is None  # Keras: none unless every input has one
    assert add.mask_origins(["e1", "e2"]) == "e1"
    joined = make_layer("Concatenate", {})
    np.testing.assert_array_equal(joined.compute_mask([x, x], [a, None]), np.ones((3, 4), bool))
    np.testing.assert_array_equal(joined.compute_mask([x, x], [a, b]), a | b)
    in_time = make_layer("Concatenate", {"axis": 1})
    np.testing.assert_array_equal(in_time.compute_mask([x, x], [a, None]),
                                  np.concatenate([a, np.ones((3, 4), bool)], axis=1))


# --- configs ----------------------------------------------------------------------------------

runner = CliRunner()

SEQUENTIAL = """\
name: masked
seed: 0
model:
  sequential:
    - Embedding: {input_dim: 12, output_dim: 4, input_length: 6, mask_zero: true}
    - MIDDLE
    - Dense: {units: 1, activation: sigmoid}
compile: {optimizer: sgd, loss: binary_crossentropy}
data:
  train: {random: {samples: 12, x: [6], classes: 2}}
fit: {epochs: 1, batch_size: 6}
"""

FUNCTIONAL = """\
name: masked_functional
seed: 0
model:
  functional:
    inputs:
      tokens: {shape: [6], dtype: int32}
    layers:
      embed: {Embedding: {input_dim: 12, output_dim: 4, mask_zero: true}}
      LAYER
      head: {Dense: {units: 1}}
    graph:
      - e = embed(tokens)
      - LINE
      - y = head(h)
    outputs: [OUT]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 12, x: [6], y: [1]}}
fit: {epochs: 1, batch_size: 6}
"""


def _write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def _position(text: str, needle: str) -> str:
    index = text.index(needle)
    before = text[:index]
    return f"{before.count(chr(10)) + 1}:{index - before.rfind(chr(10))}"


@pytest.mark.parametrize("middle", [
    "Flatten: {}", "Conv1D: {filters: 2, kernel_size: 2}", "GlobalMaxPooling1D: {}",
    "BatchNormalization: {}", "Reshape: {target_shape: [24]}"])
def test_a_mask_reaching_a_layer_that_cannot_take_it_is_one_located_line(tmp_path, middle):
    text = SEQUENTIAL.replace("MIDDLE", middle)
    path = _write(tmp_path, text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    name = middle.split(":")[0]
    line, column = _position(text, middle).split(":")  # at the layer's arguments
    assert (f"{path}:{line}:{int(column) + len(name) + 2}: model.sequential[1].{name}: {name} "
            "cannot take "
            "the mask made by Embedding 'embedding' (mask_zero)") in result.output
    assert "Traceback" not in result.output


def test_a_masked_model_output_is_refused(tmp_path):
    text = SEQUENTIAL.replace("MIDDLE", "LSTM: {units: 3, return_sequences: true}")
    result = runner.invoke(app, ["validate", str(_write(tmp_path, text))])
    assert result.exit_code == 2
    assert ":7:14: model.sequential[2].Dense: this output carries the mask made by Embedding " \
           "'embedding' (mask_zero); Keras masks the loss with it" in result.output
    text = (FUNCTIONAL.replace("      LAYER\n", "").replace("      - LINE\n", "")
            .replace("y = head(h)", "y = head(e)").replace("OUT", "y"))
    result = runner.invoke(app, ["validate", str(_write(tmp_path, text))])
    assert result.exit_code == 2
    assert f":{_position(text, 'y]')}: model.functional.outputs[0]: y: this output carries " \
           "the mask made by Embedding 'embed' (mask_zero)" in result.output


@pytest.mark.parametrize("layer,line,accepted", [
    ("rnn: {GRU: {units: 3}}", "h = rnn(e)", True),
    ("rnn: {SimpleRNN: {units: 3, return_sequences: true, go_backwards: true}}",
     "s = rnn(e)\n      - h = pool(s)", True),
    ("att: {MultiHeadAttention: {num_heads: 2, key_dim: 2}}",
     "a = att(e, e)\n      - h = pool(a)", True),
    ("product: {Dot: {axes: 2}}", "d = product(e, e)\n      - h = pool(d)", False),
    ("gmp: {GlobalMaxPooling1D: {}}", "h = gmp(e)", False),
])
def test_functional_masks_reach_consumers_or_are_refused(tmp_path, layer, line, accepted):
    extra = "\n      pool: {GlobalAveragePooling1D: {}}" if "pool" in line else ""
    text = FUNCTIONAL.replace("LAYER", layer + extra).replace("LINE", line).replace("OUT", "y")
    path = _write(tmp_path, text)
    result = runner.invoke(app, ["validate", str(path)])
    if accepted:
        assert result.exit_code == 0, result.output
        model = build_model(path)
        model.fit(np.random.default_rng(0).integers(0, 12, (12, 6)),
                  np.zeros((12, 1), np.float32), batch_size=6)
        assert np.isfinite(model.predict(np.zeros((2, 6), np.int64) + 3)).all()
    else:
        assert result.exit_code == 2, result.output
        callee = layer.split(":")[0]
        assert f"model.functional.graph[1]: {callee}: " in result.output
        assert "cannot take the mask made by Embedding 'embed' (mask_zero)" in result.output


def test_a_model_without_masks_does_no_mask_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("mask work in a model without masks")

    monkeypatch.setattr(execute, "_forward_masked", refuse)
    model = build_model("configs/shared_lstm.yaml")
    plan = execute.plan_of(model.graph)
    assert not plan.any_mask and all(m is None for m in plan.masks)
    xs = [np.zeros((2, *t.shape[1:]), np.float32) for t in model.graph.inputs]
    model.predict(xs)


def test_a_shared_layer_on_masked_inputs_runs_each_call_with_its_mask(tmp_path):
    text = FUNCTIONAL.replace("LAYER", "rnn: {LSTM: {units: 3}}\n      join: {Add: {}}").replace(
        "LINE", "f = embed(other)\n      - a = rnn(e)\n      - b = rnn(f)\n      - h = join(a, b)"
    ).replace("OUT", "y").replace("      tokens: {shape: [6], dtype: int32}",
                                  "      tokens: {shape: [6], dtype: int32}\n"
                                  "      other: {shape: [6], dtype: int32}")
    text = text.replace("x: [6], y: [1]", "x: {tokens: [6], other: [6]}, y: [1]")
    model = build_model(_write(tmp_path, text))
    plan = execute.plan_of(model.graph)
    assert not plan.stacked  # masked calls are never stacked
    rng = np.random.default_rng(7)
    tokens = rng.integers(1, 12, (3, 6))
    tokens[0, 3:] = 0
    other = tokens.copy()
    other[1, :2] = 0
    rnn = model.get_layer("rnn")
    embed = model.get_layer("embed")
    e1, _ = embed.forward(tokens)
    e2, _ = embed.forward(other)
    want = (rnn.forward(e1, mask=tokens != 0)[0] + rnn.forward(e2, mask=other != 0)[0])
    head = model.get_layer("head")
    np.testing.assert_allclose(model.predict([tokens, other]), head.forward(want)[0], rtol=1e-5)


NESTED = """\
name: nested
seed: 0
models:
  inner:
    sequential:
      - INNER
model:
  functional:
    inputs:
      tokens: {shape: [6], dtype: int32}
    layers:
      OUTER
      head: {Dense: {units: 1}}
    graph:
      - GRAPH
      - y = head(h)
    outputs: [y]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 12, x: [6], y: [1]}}
"""


def test_masks_and_nested_models(tmp_path):
    # a mask made inside a nested model and consumed there: fine
    inside = (NESTED.replace("INNER", "Embedding: {input_dim: 12, output_dim: 4, input_length: 6, "
                                      "mask_zero: true}\n      - GRU: {units: 2}")
              .replace("      OUTER\n", "").replace("GRAPH", "h = inner(tokens)"))
    assert runner.invoke(app, ["validate", str(_write(tmp_path, inside))]).exit_code == 0
    # a nested model whose output would carry the mask, or that would receive one: refused
    leaking = inside.replace("\n      - GRU: {units: 2}", "")
    result = runner.invoke(app, ["validate", str(_write(tmp_path, leaking))])
    assert result.exit_code == 2 and "models.inner.sequential[0].Embedding: this output " \
                                      "carries the mask made by Embedding" in result.output
    receiving = (NESTED.replace("INNER", "GRU: {units: 2, input_shape: [6, 4]}")
                 .replace("OUTER", "embed: {Embedding: {input_dim: 12, output_dim: 4, "
                                   "mask_zero: true}}")
                 .replace("GRAPH", "e = embed(tokens)\n      - h = inner(e)"))
    result = runner.invoke(app, ["validate", str(_write(tmp_path, receiving))])
    assert result.exit_code == 2, result.output
    assert "model.functional.graph[1]: inner: model 'inner' cannot take the mask made by " \
           "Embedding 'embed' (mask_zero)" in result.output
