"""Functional configs end to end: graph construction, shared layers and models, multi-IO,
located shape errors, and whole-model gradient checks in float64."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import kconf
from kconf.api import model_from_config
from kconf.cli import app
from kconf.data.sources import check_shapes, load_splits
from tests.gradcheck import assert_close_grad, numeric_grad

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def functional(inputs: str, layers: str, graph: str, outputs: str, loss="mse",
               data="{random: {samples: 8, x: [4], y: [2]}}", extra="") -> str:
    return f"""name: f
model:
  functional:
    inputs:
{inputs}
    layers:
{layers}
    graph:
{graph}
    outputs: [{outputs}]
{extra}compile:
  optimizer: sgd
  loss: {loss}
data:
  train: {data}
"""


def error_lines(path: Path) -> list[str]:
    with pytest.raises(kconf.ConfigError) as info:
        model = model_from_config(path)
        cfg = kconf.load_config(path)
        check_shapes(load_splits(cfg), model.graph, cfg)
    return [p.format() for p in info.value.problems]


# --- the docs' models -------------------------------------------------------------------
def test_twitter_model_matches_the_docs():
    model = model_from_config(CONFIGS / "twitter_multi_io.yaml")
    shapes = {l.name: l.output_shape for l in model.layers if l.n_inputs != 0}
    assert shapes["embedding"] == (None, 100, 512)
    assert shapes["lstm"] == (None, 32)
    assert shapes["concatenate"] == (None, 37)
    assert model.output_names == ["main_output", "aux_output"]
    assert model.count_params() == 10000 * 512 + (512 * 128 + 32 * 128 + 128) + 33 + (
        37 * 64 + 64) + 2 * (64 * 64 + 64) + 65
    assert model.graph.inputs[0].dtype == "int32"


def test_twitter_logs_keras_names_and_weighted_total(tmp_path):
    cfg = kconf.load_config(CONFIGS / "twitter_multi_io.yaml",
                            overrides={"data.train.random.samples": 16})
    model = kconf.build_model(cfg)
    assert model.loss_weights == [1.0, 0.2]
    train = load_splits(cfg)["train"]
    logs = model.evaluate(train.x, train.y, return_dict=True)
    assert list(logs) == ["loss", "main_output_loss", "aux_output_loss"]
    assert logs["loss"] == pytest.approx(logs["main_output_loss"] + 0.2 * logs["aux_output_loss"],
                                         rel=1e-5)
    by_name = model.evaluate({"main_input": train.x[0], "aux_input": train.x[1]},
                             {"main_output": train.y[0], "aux_output": train.y[1]},
                             return_dict=True)
    assert by_name == logs


def test_shared_lstm_has_two_nodes_and_one_set_of_weights():
    model = model_from_config(CONFIGS / "shared_lstm.yaml")
    lstm = model.get_layer("shared_lstm")
    assert [model.graph.node_index(n) for n in model.graph.nodes_of(lstm)] == [0, 1]
    assert lstm.get_input_shape_at(0) == (None, 280, 256)
    assert lstm.get_output_at(1).name == "encoded_b"
    with pytest.raises(AttributeError, match="multiple inbound nodes"):
        lstm.output
    assert model.count_params() == 82305


def test_summary_shows_connections_and_the_node_table():
    result = CliRunner().invoke(app, ["summary", str(CONFIGS / "shared_lstm.yaml")],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "shared_lstm[0][0], shared_lstm[1][0]" in out
    assert "Nodes of layers called more than once" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("shared_lstm ")]
    assert len(rows) == 2
    assert "tweet_a[0][0]" in rows[0] and "encoded_a" in rows[0] and "(None, 64)" in rows[0]
    assert "tweet_b[0][0]" in rows[1] and "encoded_b" in rows[1]


def test_time_distributed_model_gives_20_vectors_of_10_and_shares_weights():
    model = kconf.build_model(CONFIGS / "time_distributed.yaml")
    out = model.predict(np.random.default_rng(0).random((3, 20, 784), dtype=np.float32))
    assert out.shape == (3, 20, 10)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)
    per_step = model.get_layer("per_step")
    classifier = per_step.layer
    assert classifier.kind == "Sequential" and len(model.get_weights()) == 6
    assert per_step.weights["dense/kernel"] is classifier.graph.layers[1].weights["kernel"]
    expanded = CliRunner().invoke(app, ["summary", "--expand",
                                        str(CONFIGS / "time_distributed.yaml")],
                                  terminal_width=200).output
    assert "└ dense_2 (Dense)" in expanded


def test_shared_conv_nodes_shapes():
    model = model_from_config(CONFIGS / "shared_conv_nodes.yaml")
    conv = model.get_layer("conv")
    assert conv.get_input_shape_at(0) == (None, 32, 32, 3)
    assert conv.get_input_shape_at(1) == (None, 64, 64, 3)
    assert conv.get_output_shape_at(1) == (None, 64, 64, 16)


MODEL_FILE = """name: encoder
model:
  sequential:
    - Dense: {units: 3, activation: tanh, input_dim: 4}
"""


def test_a_model_from_another_file_is_called_twice_with_shared_weights(tmp_path):
    write(tmp_path, MODEL_FILE, "encoder.yaml")
    text = functional("      a: {shape: [4]}\n      b: {shape: [4]}",
                      "      merge: {Add: {}}",
                      "      - ea = enc(a)\n      - eb = enc(b)\n      - s = merge(ea, eb)",
                      "s", extra="models:\n  enc: {file: encoder.yaml}\n",
                      data="{random: {samples: 8, x: {a: [4], b: [4]}, y: [3]}}")
    model = kconf.build_model(write(tmp_path, text))
    enc = model.get_layer("enc")
    assert len(model.graph.nodes_of(enc)) == 2 and len(model.get_weights()) == 2
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(model.predict([x, x]), 2 * enc.forward(x)[0], rtol=1e-6)


# --- whole-model gradient checks (float64) ----------------------------------------------
def _check_model_gradients(model, xs, ys):
    def loss():
        outs, _ = model._forward(xs, training=False)
        return model._losses(ys, outs)[0]

    outs, backward = model._forward(xs, training=True)
    backward(model._losses(ys, outs)[2])
    checked = 0
    for layer in model.graph.layers:
        for key, w in layer.weights.items():
            assert_close_grad(layer.grads[key], numeric_grad(loss, w), f"{layer.name}/{key}",
                              rtol=1e-4)
            checked += 1
    assert checked


def _float64_model(path_or_text, tmp_path=None):
    model = model_from_config(path_or_text)
    model.build(np.random.default_rng(0), dtype=np.float64)
    cfg = kconf.load_config(path_or_text)
    comp = cfg.compile
    names = [t.name for t in model.graph.outputs]
    model.compile(kconf.api.optimizers.SGD(), comp.loss_for(names),
                  loss_weights=comp.loss_weights_for(names))
    return model


def test_gradients_of_a_multi_input_multi_output_model(tmp_path):
    text = functional(
        "      tokens: {shape: [3], dtype: int32}\n      aux: {shape: [2]}",
        "      emb: {Embedding: {input_dim: 5, output_dim: 3}}\n"
        "      lstm: {LSTM: {units: 2}}\n"
        "      aux_out: {Dense: {units: 1, activation: sigmoid}}\n"
        "      head: {Dense: {units: 1, activation: sigmoid}}",
        "      - e = emb(tokens)\n      - h = lstm(e)\n      - side = aux_out(h)\n"
        "      - m = concatenate(h, aux)\n      - main = head(m)",
        "main, side", loss="binary_crossentropy",
        data="{random: {samples: 4, x: {tokens: {shape: [3], dtype: int32, high: 5}, "
             "aux: [2]}, y: {main: {classes: 2}, side: {classes: 2}}}}",
        extra="")
    text = text.replace("  loss: binary_crossentropy\n",
                        "  loss: binary_crossentropy\n  loss_weights: [1.0, 0.2]\n")
    path = write(tmp_path, text)
    model = _float64_model(path)
    assert model.loss_weights == [1.0, 0.2]
    rng = np.random.default_rng(1)
    xs = [rng.integers(5, size=(3, 3)), rng.normal(size=(3, 2))]
    ys = [rng.integers(2, size=(3, 1)).astype(float), rng.integers(2, size=(3, 1)).astype(float)]
    _check_model_gradients(model, xs, ys)


def test_gradients_of_the_shared_lstm_model(tmp_path):
    text = (CONFIGS / "shared_lstm.yaml").read_text().replace("[280, 256]", "[4, 3]").replace(
        "units: 64", "units: 2")
    model = _float64_model(write(tmp_path, text))
    rng = np.random.default_rng(2)
    _check_model_gradients(model, [rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))],
                           [rng.integers(2, size=(2, 1)).astype(float)])


def test_gradients_of_time_distributed_model(tmp_path):
    text = (CONFIGS / "time_distributed.yaml").read_text().replace("784", "3").replace(
        "units: 64", "units: 2").replace("[20, 3]", "[2, 3]").replace("units: 10", "units: 4")
    text = text.replace("y: [20, 10]", "y: [2, 4]").replace("relu", "tanh")  # no kinks for FD
    model = _float64_model(write(tmp_path, text))
    rng = np.random.default_rng(3)
    y = rng.random(size=(2, 2, 4))
    _check_model_gradients(model, [rng.normal(size=(2, 2, 3))], [y / y.sum(-1, keepdims=True)])


# --- static validation: errors at their line --------------------------------------------
def test_concatenate_of_incompatible_shapes_is_located(tmp_path):
    text = functional("      a: {shape: [32]}\n      b: {shape: [5, 2]}", "      d: {Dense: {units: 2}}",
                      "      - m = concatenate(a, b)\n      - y = d(m)", "y",
                      data="{random: {samples: 8, x: {a: [32], b: [5, 2]}, y: [2]}}")
    path = write(tmp_path, text)
    (line,) = error_lines(path)
    assert line.startswith(f"{path}:10:13: model.functional.graph[0]: concatenate: ")
    assert "(None, 32) and (None, 5, 2) cannot be concatenated" in line


def test_shared_dense_on_different_widths_is_located(tmp_path):
    text = functional("      a: {shape: [32]}\n      b: {shape: [16]}", "      d: {Dense: {units: 2}}",
                      "      - ya = d(a)\n      - yb = d(b)\n      - y = add(ya, yb)", "y",
                      data="{random: {samples: 8, x: {a: [32], b: [16]}, y: [2]}}")
    path = write(tmp_path, text)
    (line,) = error_lines(path)
    assert line.startswith(f"{path}:11:14: model.functional.graph[1]: d: Dense 'd' was first "
                           "called on (None, 32)")
    assert "(32, 2)" in line and "(16, 2)" in line


def test_merge_layer_given_one_tensor_is_located(tmp_path):
    text = functional("      a: {shape: [4]}", "      m: {Add: {}}", "      - y = m(a)", "y")
    path = write(tmp_path, text)
    (line,) = error_lines(path)
    assert line == f"{path}:9:13: model.functional.graph[0]: m: Add needs at least 2 inputs, got 1"


def test_dense_given_two_tensors_is_located(tmp_path):
    text = functional("      a: {shape: [4]}\n      b: {shape: [4]}", "      d: {Dense: {units: 2}}",
                      "      - y = d(a, b)", "y",
                      data="{random: {samples: 8, x: {a: [4], b: [4]}, y: [2]}}")
    path = write(tmp_path, text)
    (line,) = error_lines(path)
    assert line == f"{path}:10:13: model.functional.graph[0]: d: Dense takes one tensor, got 2"


def test_lstm_states_need_a_name_each(tmp_path):
    text = functional("      a: {shape: [3, 4]}",
                      "      l: {LSTM: {units: 2, return_state: true}}\n      d: {Dense: {units: 2}}",
                      "      - o = l(a)\n      - y = d(o)", "y",
                      data="{random: {samples: 8, x: [3, 4], y: [2]}}")
    path = write(tmp_path, text)
    (line,) = error_lines(path)
    assert "LSTM returns 3 tensor(s) but 1 name(s) are given" in line
    ok = text.replace("- o = l(a)", "- o, h, c = l(a)").replace("y = d(o)", "y = d(c)")
    model = model_from_config(write(tmp_path, ok, "ok.yaml"))
    assert [t.name for t in model.get_layer("l").output] == ["o", "h", "c"]


def test_data_not_matching_the_declared_inputs_is_located(tmp_path):
    text = functional("      a: {shape: [4]}\n      b: {shape: [3]}", "      m: {Concatenate: {}}",
                      "      - y = m(a, b)", "y",
                      data="{random: {samples: 8, x: {a: [4], b: [5]}, y: [6]}}")
    path = write(tmp_path, text)
    lines = error_lines(path)
    assert any("x (b) has samples of shape (5,)" in l and "(3,)" in l for l in lines)
    assert any("y has samples of shape (6,)" in l and "(7,)" in l for l in lines)
    train_line = text.splitlines().index(next(l for l in text.splitlines()
                                              if l.startswith("  train:"))) + 1
    assert all(l.startswith(f"{path}:{train_line}:") for l in lines)


def test_functional_configs_train_through_the_cli(tmp_path):
    for name in ("shared_conv_nodes", "time_distributed"):
        result = CliRunner().invoke(app, ["train", str(CONFIGS / f"{name}.yaml"), "--epochs", "1",
                                          "--output-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
