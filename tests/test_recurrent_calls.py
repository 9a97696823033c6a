"""Bidirectional and ``initial_state`` in configs: graph lines, whole-model gradients, Keras
files, summaries and the mistakes a user can make.

- ``y = decoder(x, initial_state=[h, c])``: a keyword with a list of tensors; the encoder's
  states start the decoder, and the gradients of the whole encoder-decoder match float64
  finite differences (the encoder is trained through the decoder's initial states).
- A Keras encoder-decoder (``decoder(x, initial_state=encoder_states)``) imports and predicts
  what Keras predicted (``tests/fixtures/layers/recurrent.json``).
- ``Bidirectional: {layer: {LSTM: ...}}``: Keras's parameter count in the summary, its weights
  in Keras's ``forward_layer``/``backward_layer`` groups, a ``.keras`` archive read back.
- Mistakes (a Bidirectional around a Dense, initial states of the wrong number or shape, a
  tensor where a list belongs) are one ``FILE:LINE:COL: path: message`` each, exit 2.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import kconf
from kconf.api import build_model
from kconf.cli import app
from kconf.config import parse_graph_line
from kconf.keras_io.export import weight_groups
from kconf.keras_io.importer import convert
from tests.test_config import write
from tests.test_functional import _check_model_gradients, _float64_model
from tests.test_keras_recurrent import CASES, META, array

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


SEQ2SEQ = """\
name: seq2seq
seed: 0
model:
  functional:
    inputs:
      encoder_inputs: {{shape: [5, 3]}}
      decoder_inputs: {{shape: [4, 2]}}
    layers:
      encoder: {{{encoder}: {{units: 3, return_state: true}}}}
      decoder: {{{decoder}: {{units: 3, return_sequences: true}}}}
      probs: {{Dense: {{units: 2, activation: softmax}}}}
    graph:
      - {states_line}
      - y = decoder(decoder_inputs, initial_state={states})
      - out = probs(y)
    outputs: [out]
compile: {{optimizer: sgd, loss: categorical_crossentropy}}
data:
  train: {{random: {{samples: 8, x: {{encoder_inputs: [5, 3], decoder_inputs: [4, 2]}},
                    y: [4, 2]}}}}
"""


def seq2seq(encoder="LSTM", decoder="LSTM", states_line="_, h, c = encoder(encoder_inputs)",
            states="[h, c]") -> str:
    return SEQ2SEQ.format(encoder=encoder, decoder=decoder, states_line=states_line,
                          states=states)


# --- initial_state in a graph line ------------------------------------------------------------


def test_a_graph_line_reads_a_list_of_tensors_as_a_keyword():
    call = parse_graph_line("y = decoder(x, initial_state=[h, c])")
    (kw,) = call.keywords
    assert (kw.key, kw.tensor, kw.tensors) == ("initial_state", None, ("h", "c"))
    assert call.span(("kwlist", (0, 1))) == (call.text.index("c]"), "c")


def test_the_decoder_starts_from_the_encoder_states(tmp_path):
    model = build_model(write(tmp_path, seq2seq()))
    decoder = model.get_layer("decoder")
    (node,) = model.graph.nodes_of(decoder)
    assert [t.name for t in node.inputs] == ["decoder_inputs", "h", "c"]
    rng = np.random.default_rng(0)
    xe = rng.normal(size=(3, 5, 3)).astype(np.float32)
    xd = rng.normal(size=(3, 4, 2)).astype(np.float32)
    # the same decoder started from zero states computes something else
    _, h, c = model.get_layer("encoder").forward(xe)[0]
    with_states = decoder.forward([xd, h, c])[0]
    from_zero = decoder.forward([xd])[0]
    probs = model.get_layer("probs").forward(with_states)[0]
    np.testing.assert_allclose(model.predict([xe, xd]), probs, rtol=1e-6)
    assert not np.allclose(with_states, from_zero)


@pytest.mark.parametrize("encoder, decoder, states_line, states", [
    ("LSTM", "LSTM", "_, h, c = encoder(encoder_inputs)", "[h, c]"),
    ("GRU", "GRU", "_, h = encoder(encoder_inputs)", "[h]"),
    ("SimpleRNN", "LSTM", "_, h = encoder(encoder_inputs)", "[h, h]"),  # one tensor twice
])
def test_gradients_of_an_encoder_decoder_match_finite_differences(tmp_path, encoder, decoder,
                                                                  states_line, states):
    model = _float64_model(write(tmp_path, seq2seq(encoder, decoder, states_line, states)))
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 4, 2))]
    ys = [np.eye(2)[rng.integers(2, size=(2, 4))]]
    _check_model_gradients(model, xs, ys)
    assert np.abs(model.get_layer("encoder").grads["kernel"]).max() > 0  # through the states


def test_a_keras_encoder_decoder_imports_and_predicts_what_keras_predicted():
    imported = convert(META["seq2seq"])
    graph = imported.config["model"]["functional"]["graph"]
    assert graph[1] == "x = decoder(decoder_inputs, initial_state=[encoder_h, encoder_c])"
    model = build_model(imported.config)
    model.set_weights([array(f"seq2seq/w/{i}") for i in range(len(model.get_weights()))])
    got = model.predict([array("seq2seq/x/0"), array("seq2seq/x/1")])
    np.testing.assert_allclose(got, array("seq2seq/out"), rtol=1e-5, atol=1e-6)


def test_an_exported_encoder_decoder_writes_keras_initial_state_and_reads_back(tmp_path):
    model = build_model(write(tmp_path, seq2seq()))
    data = kconf.keras_io.keras_json(model)
    (decoder,) = [layer for layer in data["config"]["layers"] if layer["name"] == "decoder"]
    (node,) = decoder["inbound_nodes"]
    assert [t["config"]["keras_history"] for t in node["args"]] == [["decoder_inputs", 0, 0]]
    assert [t["config"]["keras_history"] for t in node["kwargs"]["initial_state"]] == [
        ["encoder", 0, 1], ["encoder", 0, 2]]
    again = kconf.model_from_config(kconf.from_keras(data))
    (node,) = again.graph.nodes_of(again.get_layer("decoder"))
    assert [(t.node.layer.name, t.index) for t in node.inputs] == [
        ("decoder_inputs", 0), ("encoder", 1), ("encoder", 2)]


# --- Bidirectional ----------------------------------------------------------------------------


def test_text_bilstm_summary_has_keras_param_counts():
    result = invoke("summary", ROOT / "configs" / "text_bilstm.yaml")
    assert result.exit_code == 0, result.output
    # Keras 3: two LSTM(16) on 8 features, 4·16·(8 + 16 + 1) each
    assert "bidirectional (Bidirectional)" in result.output
    assert "(None, 32)" in result.output and "3,200" in result.output
    assert "Total params: 3,393" in result.output


def test_text_bilstm_learns_what_a_bag_of_words_cannot(tmp_path):
    result = invoke("train", ROOT / "configs" / "text_bilstm.yaml", "--output-dir", tmp_path,
                    "--quiet")
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["accuracy"] > 0.9  # the best bag of words: about 0.75


def test_bidirectional_weights_sit_in_keras_groups_and_read_back(tmp_path):
    h5py = pytest.importorskip("h5py")
    text = """\
name: bi
model:
  functional:
    inputs: {x: {shape: [4, 3]}}
    layers:
      bidirectional: {Bidirectional: {layer: {LSTM: {units: 2, return_sequences: true}}}}
    graph: [y = bidirectional(x)]
    outputs: [y]
compile: {optimizer: sgd, loss: mse}
data: {train: {random: {samples: 4, x: [4, 3], y: [4, 4]}}}
"""
    model = build_model(write(tmp_path, text))
    # the datasets Keras 3.15 writes for this model (fixture case bi_lstm_concat_seq)
    paths = {f"{g.path}/vars/{i}" for g in weight_groups(model) for i in range(len(g.arrays))}
    assert paths == set(CASES["bi_lstm_concat_seq"]["h5"])
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32)
                       for w in model.get_weights()])
    path = model.save_keras(tmp_path / "bi.keras")
    with zipfile.ZipFile(path) as archive, h5py.File(
            io.BytesIO(archive.read("model.weights.h5")), "r") as f:
        layer = model.get_layer("bidirectional")
        for side, sub in (("forward", layer.forward_layer), ("backward", layer.backward_layer)):
            np.testing.assert_array_equal(
                f[f"layers/bidirectional/{side}_layer/cell/vars/1"][()],
                sub.weights["recurrent_kernel"])
    result = invoke("import-keras", path, "-o", tmp_path / "again.yaml")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "again.weights.npz") as saved:
        for name, value in model.named_weights().items():
            np.testing.assert_array_equal(saved[name], value)


def test_a_keras_model_of_bidirectional_layers_imports_and_predicts_what_keras_predicted():
    imported = convert(META["bi_model"])
    first, second, _ = imported.config["model"]["sequential"]
    assert first == {"Bidirectional": {"layer": {"LSTM": {  # Keras's Bidirectional sets zero_output_for_mask
        "zero_output_for_mask": True, "units": 3, "return_sequences": True}},
                                       "merge_mode": "ave", "input_shape": [6, 3]}}
    # Keras writes the copy it made as backward_layer too; only a given one is kept
    assert second == {"Bidirectional": {"layer": {"GRU": {"units": 2}}, "backward_layer": {
        "SimpleRNN": {"units": 2, "go_backwards": True}}}}
    model = build_model(imported.config)
    model.set_weights([array(f"bi_model/w/{i}") for i in range(len(model.get_weights()))])
    np.testing.assert_allclose(model.predict(array("bi_model/x")), array("bi_model/out"),
                               rtol=1e-5, atol=1e-6)


def test_a_stateful_keras_lstm_is_refused_with_what_to_do():
    data = json.loads(json.dumps(META["seq2seq"]))
    (encoder,) = [layer for layer in data["config"]["layers"] if layer["name"] == "encoder"]
    encoder["config"]["stateful"] = True
    with pytest.raises(kconf.ConfigError) as info:
        convert(data)
    (problem,) = info.value.problems
    assert "stateful" in problem.format()
    assert "kconf starts every batch from zero states" in problem.message
    assert "initial_state" in problem.message


def test_bidirectional_return_state_gives_the_states_of_both_directions(tmp_path):
    text = seq2seq().replace(
        "encoder: {LSTM: {units: 3, return_state: true}}",
        "encoder: {Bidirectional: {layer: {LSTM: {units: 3, return_state: true}}, "
        "merge_mode: sum}}").replace(
        "_, h, c = encoder(encoder_inputs)", "_, h, c, h_back, c_back = encoder(encoder_inputs)")
    model = build_model(write(tmp_path, text))
    encoder = model.get_layer("encoder")
    (node,) = model.graph.nodes_of(encoder)
    assert node.output_shapes == [(None, 3)] * 5
    xe = np.random.default_rng(1).normal(size=(2, 5, 3)).astype(np.float32)
    out, h, c, h_back, c_back = encoder.forward(xe)[0]
    np.testing.assert_allclose(out, h + h_back, rtol=1e-6)  # sum of both last outputs


# --- mistakes ---------------------------------------------------------------------------------


def _one_error_line(tmp_path, text: str) -> str:
    path = write(tmp_path, text)
    result = invoke("validate", path)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(str(path))]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0][len(str(path)) + 1:]


def _at(text: str, fragment: str) -> str:
    """``LINE:COL`` (1-based) where ``fragment`` starts in ``text``."""
    before = text[:text.index(fragment)]
    return f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


def test_bidirectional_around_a_dense_is_refused_at_the_layer(tmp_path):
    text = """\
model:
  sequential:
    - Bidirectional: {layer: {Dense: {units: 4}}, input_shape: [5, 3]}
compile: {optimizer: sgd, loss: mse}
data: {train: {random: {samples: 4, x: [5, 3], y: [4]}}}
"""
    assert _one_error_line(tmp_path, text) == (
        f"{_at(text, 'Dense:')}: model.sequential[0].Bidirectional.layer.Dense: Bidirectional "
        "wraps a recurrent layer (LSTM, GRU, SimpleRNN), not Dense: it runs the layer over the "
        "sequence forwards and backwards")


def test_a_backward_layer_going_the_same_way_is_refused(tmp_path):
    text = """\
model:
  sequential:
    - Bidirectional: {layer: {GRU: {units: 4}}, backward_layer: {GRU: {units: 4}},
                      input_shape: [5, 3]}
compile: {optimizer: sgd, loss: mse}
data: {train: {random: {samples: 4, x: [5, 3], y: [8]}}}
"""
    line = _one_error_line(tmp_path, text)
    at = _at(text, "GRU: {units: 4}},\n")
    assert line == (f"{at}: model.sequential[0].Bidirectional.backward_layer.GRU: "
                    "backward_layer must process the sequence the other way: give it "
                    "go_backwards: true")


@pytest.mark.parametrize("states_line, states, message", [
    ("_, h, c = encoder(encoder_inputs)", "[h]",
     "decoder: LSTM takes 2 initial states ([h, c]), got 1"),
    ("_, h, c = encoder(encoder_inputs)", "[h, c, h]",
     "decoder: LSTM takes 2 initial states ([h, c]), got 3"),
])
def test_initial_states_of_the_wrong_number_are_refused_at_the_line(tmp_path, states_line,
                                                                    states, message):
    text = seq2seq(states_line=states_line, states=states)
    line = _one_error_line(tmp_path, text)
    assert line == f"{_at(text, 'decoder(decoder_inputs')}: model.functional.graph[1]: {message}"


def test_an_initial_state_of_the_wrong_shape_is_refused(tmp_path):
    text = seq2seq().replace("encoder: {LSTM: {units: 3,", "encoder: {LSTM: {units: 5,")
    line = _one_error_line(tmp_path, text)
    assert line == (f"{_at(text, 'decoder(decoder_inputs')}: model.functional.graph[1]: decoder: "
                    "LSTM's initial state 0 must have shape (batch, 3) (units), got (None, 5)")


def test_merging_outputs_of_different_sizes_is_refused_at_the_layer(tmp_path):
    text = """\
model:
  sequential:
    - Bidirectional: {layer: {GRU: {units: 4}}, merge_mode: sum, input_shape: [5, 3],
                      backward_layer: {SimpleRNN: {units: 3, go_backwards: true}}}
compile: {optimizer: sgd, loss: mse}
data: {train: {random: {samples: 4, x: [5, 3], y: [4]}}}
"""
    assert _one_error_line(tmp_path, text) == (
        f"{_at(text, '{layer: {GRU')}: model.sequential[0].Bidirectional: merge_mode sum needs "
        "the forward and backward outputs of one shape, got (None, 4) and (None, 3) (give both "
        "layers the same units)")


def test_initial_state_given_a_tensor_instead_of_a_list_is_refused_at_the_keyword(tmp_path):
    text = seq2seq(states="h")
    line = _one_error_line(tmp_path, text)
    assert line == (f"{_at(text, 'initial_state=')}: model.functional.graph[1]: initial_state "
                    "is a list of tensors (initial_state=[h, c]), got 'h'")


def test_an_unknown_tensor_in_the_list_is_reported_at_it(tmp_path):
    text = seq2seq(states="[h, cc]")
    line = _one_error_line(tmp_path, text)
    assert line == (f"{_at(text, 'cc]')}: model.functional.graph[1]: unknown tensor 'cc' "
                    "(did you mean 'c'?)")


def test_a_frozen_bidirectional_freezes_both_of_its_layers(tmp_path):
    text = (ROOT / "configs" / "text_bilstm.yaml").read_text().replace(
        "merge_mode: concat}", "merge_mode: concat, trainable: false}")
    model = build_model(write(tmp_path, text))
    layer = model.get_layer("bidirectional")
    assert not layer.forward_layer.trainable and not layer.backward_layer.trainable
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 6
    result = invoke("summary", write(tmp_path, text))
    assert "Non-trainable params: 3,200" in result.output
    before = [w.copy() for w in layer.get_weights()]
    model.fit(np.zeros((4, 12), dtype=np.int32), np.ones((4, 1), dtype=np.float32), epochs=1,
              verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, layer.get_weights()))
