"""Graph lines call layers with keywords, as Keras code does:
``a = mha(query=x, value=y, use_causal_mask=True)``.

The line records each keyword (``GraphCall.keywords``); the checks hold them against the
layer's ``call_signature`` (errors at FILE:LINE:COL of the keyword); the node gets the tensors
in the layer's order (a left-out ``key`` is ``value``) and the options, which every run of the
node hands to ``forward``."""
from __future__ import annotations

import numpy as np
import pytest

from kconf.api import build_model
from kconf.config import load_config, parse_graph_line
from kconf.errors import ConfigError
from kconf.engine.layers import MultiHeadAttention
from kconf.graph.execute import run_graph
from tests.test_config import errors, one_error, write

# The graph starts on line 10.
CONFIG = """\
model:
  functional:
    inputs:
      x: {shape: [4, 6]}
      y: {shape: [3, 5]}
      m: {shape: [4, 3], dtype: int32}
    layers:
      mha: {MultiHeadAttention: {num_heads: 2, key_dim: 3}}
    graph:
{graph}
    outputs: [{outputs}]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 8, x: {x: [4, 6], y: [3, 5], m: [4, 3]}, y: {targets}}}
"""


def config(*lines: str, outputs: str = "out", targets: str = "[4, 6]") -> str:
    graph = "".join(f"      - {line}\n" for line in lines).rstrip("\n")
    return (CONFIG.replace("{graph}", graph).replace("{outputs}", outputs)
            .replace("{targets}", targets))


def batch(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 2, (2, 4, 3)).astype(np.int32)
    mask[..., 0] = 1
    return {"x": rng.standard_normal((2, 4, 6)).astype(np.float32),
            "y": rng.standard_normal((2, 3, 5)).astype(np.float32), "m": mask}


def model_of(tmp_path, *lines: str, outputs: str = "out", targets: str = "[4, 6]"):
    """The model of a config calling ``mha`` as ``lines`` say (they use x, y and m)."""
    return build_model(write(tmp_path, config(*lines, outputs=outputs, targets=targets)))


def mha_of(model) -> MultiHeadAttention:
    return next(l for l in model.layers if isinstance(l, MultiHeadAttention))


# --- reading the line ---------------------------------------------------------------------------


def test_a_line_records_tensor_keywords_and_options():
    call = parse_graph_line("a = mha(x, value=y, use_causal_mask=true, return_attention_"
                            "scores=False)")
    assert call.args == ("x",)
    assert [(k.key, k.tensor, k.value) for k in call.keywords] == [
        ("value", "y", None), ("use_causal_mask", None, True),
        ("return_attention_scores", None, False)]
    # each keyword and each tensor it names can be located in the line
    assert call.span(("keyword", 1)) == (call.text.index("use_causal"), "use_causal_mask")
    assert call.span(("kwarg", 0)) == (call.text.index("=y") + 1, "y")
    only_keywords = parse_graph_line("a = mha(query=x, value=x)")
    assert only_keywords.args == () and len(only_keywords.keywords) == 2


# --- what the node gets ------------------------------------------------------------------------


def test_keywords_positional_and_mixed_calls_give_the_same_model(tmp_path):
    xs = batch()
    outs = []
    for line in ("out = mha(query=x, value=y, attention_mask=m)",
                 "out = mha(x, y, attention_mask=m)",
                 "out = mha(value=y, query=x, key=y, attention_mask=m)",
                 "out = mha(x, y, y, attention_mask=m)"):
        model = model_of(tmp_path, line)
        node = model.graph.nodes_of(mha_of(model))[0]
        # query, value, key (value where left out), attention_mask: the layer's order
        assert [t.name for t in node.inputs] == ["x", "y", "y", "m"]
        assert node.options == {}
        model.set_weights([np.full(w.shape, 0.1 * (i + 1), np.float32) + np.arange(
            w.size, dtype=np.float32).reshape(w.shape) * 0.01
            for i, w in enumerate(model.get_weights())])
        outs.append(model.predict(xs))
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-6)


def test_options_reach_the_layer_on_every_run(tmp_path):
    model = model_of(tmp_path, "out = mha(query=x, value=y, use_causal_mask=true)",
                     "unused_y = mha(x, y, attention_mask=m)", outputs="out, unused_y",
                     targets="{out: [4, 6], unused_y: [4, 6]}")
    layer = mha_of(model)
    nodes = model.graph.nodes_of(layer)
    assert [n.options for n in nodes] == [{"use_causal_mask": True}, {}]
    xs = batch()
    got = model.predict(xs)[0]
    want, _ = layer.forward([xs["x"], xs["y"]], use_causal_mask=True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    plain, _ = layer.forward([xs["x"], xs["y"]])
    assert not np.allclose(got, plain, atol=1e-4)  # the option changed the numbers


def test_return_attention_scores_gives_two_outputs(tmp_path):
    model = model_of(tmp_path, "out, scores = mha(x, y, attention_mask=m, "
                               "return_attention_scores=True)", outputs="out, scores",
                     targets="{out: [4, 6], scores: [2, 4, 3]}")
    node = model.graph.nodes_of(mha_of(model))[0]
    assert [t.shape for t in node.outputs] == [(None, 4, 6), (None, 2, 4, 3)]
    xs = batch()
    out, scores = model.predict(xs)
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)
    assert np.all(scores[np.broadcast_to(xs["m"][:, None] == 0, scores.shape)] == 0)


def test_gradients_of_a_keyword_call_match_the_layer_called_directly(tmp_path):
    """``key`` left out is ``value``: the graph adds the value's two gradients."""
    model = model_of(tmp_path, "out = mha(query=x, value=y, attention_mask=m)")
    layer = mha_of(model)
    xs = batch()
    (y,), backward = run_graph(model.graph, [xs["x"], xs["y"], xs["m"]], training=True,
                               need_input_grads=True)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    layer.zero_grads()
    dx, dv, _ = backward([dy])
    graph_grads = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grads()
    y2, back = layer.forward([xs["x"], xs["y"], xs["y"], xs["m"]], training=True)
    dq2, dv2, dk2, dm2 = back(dy)
    np.testing.assert_allclose(y, y2, rtol=1e-6)
    np.testing.assert_allclose(dx, dq2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dv, dv2 + dk2, rtol=1e-5, atol=1e-6)
    assert dm2 is None
    for name, g in layer.grads.items():
        np.testing.assert_allclose(graph_grads[name], g, rtol=1e-5, atol=1e-6)


# --- errors, at the keyword -------------------------------------------------------------------


@pytest.mark.parametrize("line, at, message", [
    ("out = mha(x, y, attention_mask=m, use_casual_mask=True)", "use_casual",
     "mha (MultiHeadAttention) takes the keywords query, value, key, attention_mask, "
     "use_causal_mask, return_attention_scores, not 'use_casual_mask' (did you mean "
     "'use_causal_mask'?)"),
    ("out = mha(x, y, attention_mask=m, use_causal_mask=m)", "use_causal",
     "use_causal_mask is True or False, got 'm'"),
    ("out = mha(x, y, attention_mask=m, return_attention_scores=2)", "return_",
     "return_attention_scores is True or False, got 2"),
    ("out = mha(x, y, attention_mask=m, value=y)", "value",
     "value is given twice, by position and by keyword"),
    ("out = mha(x, y, attention_mask=1)", "attention_mask",
     "attention_mask is a tensor: give a tensor's name (attention_mask=x), not 1"),
])
def test_a_bad_keyword_is_reported_at_it(tmp_path, line, at, message):
    path = write(tmp_path, config(line))
    col = 9 + line.index(at)  # the line's text starts in column 9
    assert f"{path}:10:{col}: model.functional.graph[0]: {message}" in errors(path)


def test_an_unknown_tensor_keyword_value_is_reported_at_it(tmp_path):
    path = write(tmp_path, config("out = mha(query=x, value=yy, attention_mask=m)"))
    assert (f"{path}:10:34: model.functional.graph[0]: unknown tensor 'yy' (did you mean "
            "'y'?)") in errors(path)


def test_missing_tensors_and_too_many_are_reported(tmp_path):
    path = write(tmp_path, config("out = mha(query=x, attention_mask=m)", "z = mha(y, y)"))
    found = errors(path)
    assert f"{path}:10:15: model.functional.graph[0]: mha (MultiHeadAttention) needs value " \
           "(by position or keyword: mha(query, value))" in found
    path = write(tmp_path, config("out = mha(x, y, y, m, y, attention_mask=m)"))
    assert errors(path)[0] == (f"{path}:10:31: model.functional.graph[0]: mha "
                               "(MultiHeadAttention) takes at most 4 tensors by position "
                               "(query, value, key, attention_mask)")


def test_keywords_for_a_layer_without_a_signature_are_refused_at_the_keyword(tmp_path):
    text = config("h = dense(x, units=3)", "out = mha(h, y, attention_mask=m)").replace(
        "      mha: {", "      dense: {Dense: {units: 6}}\n      mha: {")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:11:22: model.functional.graph[0]: dense (Dense) takes "
                               "its tensors by position and no keyword arguments; give a "
                               "layer's arguments under layers:")


def test_a_config_with_keyword_calls_loads(tmp_path):
    cfg = load_config(write(tmp_path, config("out = mha(query=x, value=y, attention_mask=m)")))
    (call,) = cfg.model.functional.graph
    assert [k.key for k in call.keywords] == ["query", "value", "attention_mask"]


def test_a_shape_error_of_a_keyword_call_is_reported_at_the_layer(tmp_path):
    path = write(tmp_path, config("h = mha(query=x, value=x)", "out = mha(query=x, value=y, "
                                  "attention_mask=m)"))
    with pytest.raises(ConfigError) as info:
        build_model(path)
    (problem,) = info.value.problems
    assert problem.format().startswith(f"{path}:11:15: model.functional.graph[1]: mha: "
                                       "MultiHeadAttention 'mha' was first called on")
