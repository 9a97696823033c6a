"""LSTM, GRU and SimpleRNN: values against per-sample, per-step references written plainly
below from Keras's formulas, gate orders, weight layouts and shape rules.

The checks every layer goes through (output shapes, float64 gradients of the input and every
weight with a loss reading every output, sharing, float32, no per-call state, round trips,
FLOPs) are the standard layer test, ``tests/test_layer_standard.py``, on the recurrent cases
of ``tests/layer_cases.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.layer_cases import CASES
from tests.layer_test import built, inputs, loss_weights, make_layer
from kconf.engine.layers import GRU, LSTM, SimpleRNN, WeightSpec
from kconf.engine.layers.lstm import UnitForgetBias
from kconf.errors import ShapeError


def _outputs(y) -> list:
    """Every output of a forward call as a list."""
    return y if isinstance(y, list) else [y]


STATE_CASES = [(name, case) for name in ("LSTM", "GRU", "SimpleRNN") for case in CASES[name]
               if case.args.get("return_state")]


@pytest.mark.parametrize("name, case", STATE_CASES, ids=[c.id for _, c in STATE_CASES])
def test_missing_state_gradients_count_as_zeros(name, case):
    """A returned state nothing reads gets None as its gradient, which counts as zeros."""
    layer = built(lambda: make_layer(name, case.args), case)
    x = inputs(case)
    y, backward = layer.forward(x)
    rs = loss_weights(y, seed=12)
    layer.zero_grads()
    dx_none = backward([rs[0]] + [None] * (len(rs) - 1))
    g_none = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grads()
    dx_zeros = backward([rs[0]] + [np.zeros_like(r) for r in rs[1:]])
    for a, b in zip(_outputs(dx_none), _outputs(dx_zeros), strict=True):  # dx, d(initial states)
        np.testing.assert_array_equal(a, b)
    for name in layer.grads:
        np.testing.assert_array_equal(layer.grads[name], g_none[name])


# --- naive references, one sample and one step at a time --------------------------------------

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


REF_ACT = {
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda z: np.maximum(z, 0.0),
    "hard_sigmoid": lambda z: np.clip(z / 6.0 + 0.5, 0.0, 1.0),
    "linear": lambda z: z,
    "softsign": lambda z: z / (1.0 + np.abs(z)),
    "swish": lambda z: z * _sigmoid(z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
}


def _time_order(steps, go_backwards):
    return list(reversed(range(steps))) if go_backwards else list(range(steps))


def ref_lstm(x, kernel, recurrent, bias, act, rec_act, go_backwards=False):
    """(sequence in processed order, h_T, c_T) from the LSTM formulas, gates i, f, c, o."""
    act, rec_act = REF_ACT[act], REF_ACT[rec_act]
    u = recurrent.shape[0]
    seqs, hs, cs = [], [], []
    for sample in x:
        h, c, seq = np.zeros(u), np.zeros(u), []
        for t in _time_order(len(sample), go_backwards):
            z = sample[t] @ kernel + h @ recurrent + bias
            i = rec_act(z[:u])
            f = rec_act(z[u:2 * u])
            g = act(z[2 * u:3 * u])
            o = rec_act(z[3 * u:])
            c = f * c + i * g
            h = o * act(c)
            seq.append(h)
        seqs.append(seq)
        hs.append(h)
        cs.append(c)
    return np.array(seqs), np.array(hs), np.array(cs)


def ref_gru(x, kernel, recurrent, bias, act, rec_act, reset_after, go_backwards=False):
    """(sequence in processed order, h_T) from the GRU formulas, gates z, r, h."""
    act, rec_act = REF_ACT[act], REF_ACT[rec_act]
    u = recurrent.shape[0]
    if reset_after:
        b_in, b_rec = bias
    else:
        b_in, b_rec = bias, np.zeros(3 * u)
    seqs, hs = [], []
    for sample in x:
        h, seq = np.zeros(u), []
        for t in _time_order(len(sample), go_backwards):
            xz = sample[t] @ kernel + b_in
            m = h @ recurrent + b_rec
            z = rec_act(xz[:u] + m[:u])
            r = rec_act(xz[u:2 * u] + m[u:2 * u])
            if reset_after:
                hh = act(xz[2 * u:] + r * m[2 * u:])
            else:
                hh = act(xz[2 * u:] + (r * h) @ recurrent[:, 2 * u:])
            h = z * h + (1.0 - z) * hh
            seq.append(h)
        seqs.append(seq)
        hs.append(h)
    return np.array(seqs), np.array(hs)


def ref_simple_rnn(x, kernel, recurrent, bias, act, go_backwards=False):
    """(sequence in processed order, h_T) from h = act(x K + h R + b)."""
    act = REF_ACT[act]
    seqs, hs = [], []
    for sample in x:
        h, seq = np.zeros(recurrent.shape[0]), []
        for t in _time_order(len(sample), go_backwards):
            h = act(sample[t] @ kernel + h @ recurrent + bias)
            seq.append(h)
        seqs.append(seq)
        hs.append(h)
    return np.array(seqs), np.array(hs)


def _random_layer(layer, shape, seed=0):
    """``layer`` built for ``shape`` in float64 with random weights; returns its weights."""
    layer.build((None, *shape[1:]), np.random.default_rng(seed), dtype=np.float64)
    rng = np.random.default_rng(seed + 1)
    for w in layer.weights.values():
        w[...] = rng.standard_normal(w.shape) * 0.6
    return layer


def _check_against(layer, x, seq, states):
    """Every output variant of ``layer`` equals the reference (``seq``, ``states``)."""
    y, _ = layer.forward(x)
    outs = _outputs(y)
    np.testing.assert_allclose(outs[0], seq if layer.return_sequences else seq[:, -1],
                               rtol=1e-12, atol=1e-12)
    if layer.return_state:
        assert len(outs) == 1 + len(states)
        for out, state in zip(outs[1:], states):
            np.testing.assert_allclose(out, state, rtol=1e-12, atol=1e-12)


FLAGS = [dict(return_sequences=s, return_state=r, go_backwards=b)
         for s in (False, True) for r in (False, True) for b in (False, True)]


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "-".join(k for k, v in f.items() if v)
                         or "plain")
@pytest.mark.parametrize("act, rec_act", [("tanh", "sigmoid"), ("relu", "hard_sigmoid")])
def test_lstm_matches_reference(flags, act, rec_act):
    shape = (3, 5, 4)
    layer = _random_layer(LSTM(3, activation=act, recurrent_activation=rec_act, **flags), shape)
    x = np.random.default_rng(7).standard_normal(shape)
    seq, h, c = ref_lstm(x, *layer.weights.values(), act, rec_act, flags["go_backwards"])
    _check_against(layer, x, seq, [h, c])


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "-".join(k for k, v in f.items() if v)
                         or "plain")
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_matches_reference(flags, reset_after):
    shape = (3, 5, 4)
    layer = _random_layer(GRU(3, reset_after=reset_after, **flags), shape)
    x = np.random.default_rng(7).standard_normal(shape)
    seq, h = ref_gru(x, *layer.weights.values(), "tanh", "sigmoid", reset_after,
                     flags["go_backwards"])
    _check_against(layer, x, seq, [h])


def test_gru_non_default_activations_match_reference():
    shape = (2, 4, 3)
    for reset_after in (True, False):
        layer = _random_layer(GRU(2, activation="relu", recurrent_activation="hard_sigmoid",
                                  reset_after=reset_after, return_sequences=True), shape)
        x = np.random.default_rng(8).standard_normal(shape) * 2
        seq, h = ref_gru(x, *layer.weights.values(), "relu", "hard_sigmoid", reset_after)
        _check_against(layer, x, seq, [h])


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "-".join(k for k, v in f.items() if v)
                         or "plain")
def test_simple_rnn_matches_reference(flags):
    shape = (3, 5, 4)
    layer = _random_layer(SimpleRNN(3, **flags), shape)
    x = np.random.default_rng(7).standard_normal(shape)
    seq, h = ref_simple_rnn(x, *layer.weights.values(), "tanh", flags["go_backwards"])
    _check_against(layer, x, seq, [h])


def test_layers_without_bias_match_reference():
    shape = (2, 4, 3)
    x = np.random.default_rng(9).standard_normal(shape)
    layer = _random_layer(LSTM(2, use_bias=False, return_sequences=True), shape)
    seq, _, _ = ref_lstm(x, *layer.weights.values(), np.zeros(8), "tanh", "sigmoid")
    _check_against(layer, x, seq, [])
    for reset_after in (True, False):
        layer = _random_layer(GRU(2, use_bias=False, reset_after=reset_after,
                                  return_sequences=True), shape)
        zero_bias = np.zeros((2, 6)) if reset_after else np.zeros(6)
        seq, _ = ref_gru(x, *layer.weights.values(), zero_bias, "tanh", "sigmoid", reset_after)
        _check_against(layer, x, seq, [])
    layer = _random_layer(SimpleRNN(2, use_bias=False, return_sequences=True), shape)
    seq, _ = ref_simple_rnn(x, *layer.weights.values(), np.zeros(2), "tanh")
    _check_against(layer, x, seq, [])


# --- gate order and layout, checked without the references ------------------------------------

def _zero_layer(layer, features):
    """``layer`` built for (None, 3, features) in float64 with every weight zero."""
    layer.build((None, 3, features), np.random.default_rng(0), dtype=np.float64)
    for w in layer.weights.values():
        w[...] = 0.0
    return layer


def test_lstm_gate_order_is_i_f_c_o():
    u, x = 2, np.random.default_rng(3).standard_normal((2, 3, 4))
    w = np.random.default_rng(4).standard_normal((4, u))
    layer = _zero_layer(LSTM(u, return_sequences=True, return_state=True), 4)
    layer.weights["kernel"][:, 2 * u:3 * u] = w  # only the candidate block sees the input
    seq, h_last, c_last = layer.forward(x)[0]
    c = np.zeros((2, u))
    for t in range(3):  # all gates are sigmoid(0) = 1/2
        c = 0.5 * c + 0.5 * np.tanh(x[:, t] @ w)
        np.testing.assert_allclose(seq[:, t], 0.5 * np.tanh(c), rtol=1e-12)
    np.testing.assert_allclose(c_last, c, rtol=1e-12)
    np.testing.assert_allclose(h_last, seq[:, -1], rtol=1e-12)

    layer.weights["bias"][u:2 * u] = -50.0  # f = 0: no memory of the previous c
    seq, _, c_last = layer.forward(x)[0]
    np.testing.assert_allclose(c_last, 0.5 * np.tanh(x[:, -1] @ w), rtol=1e-9)
    layer.weights["bias"][u:2 * u] = 0.0

    layer.weights["bias"][:u] = -50.0  # i = 0: nothing enters c
    assert np.abs(layer.forward(x)[0][2]).max() < 1e-20
    layer.weights["bias"][:u] = 0.0

    layer.weights["bias"][3 * u:] = -50.0  # o = 0: c is kept but h shows nothing
    seq, h_last, c_last = layer.forward(x)[0]
    assert np.abs(seq).max() < 1e-20 and np.abs(c_last).min() > 1e-6


def test_gru_gate_order_is_z_r_h():
    u, x = 2, np.random.default_rng(3).standard_normal((2, 3, 4))
    w = np.random.default_rng(4).standard_normal((4, u))
    for reset_after in (True, False):
        layer = _zero_layer(GRU(u, reset_after=reset_after, return_sequences=True), 4)
        input_bias = layer.weights["bias"][0] if reset_after else layer.weights["bias"]
        layer.weights["kernel"][:, 2 * u:] = w  # only the candidate block sees the input
        seq, _ = layer.forward(x)
        h = np.zeros((2, u))
        for t in range(3):  # z = r = 1/2
            h = 0.5 * h + 0.5 * np.tanh(x[:, t] @ w)
            np.testing.assert_allclose(seq[:, t], h, rtol=1e-12)

        input_bias[:u] = 50.0  # z = 1: the state never moves from 0
        assert np.abs(layer.forward(x)[0]).max() < 1e-20
        input_bias[:u] = -50.0  # z = 0: h is the candidate alone
        np.testing.assert_allclose(layer.forward(x)[0][:, -1], np.tanh(x[:, -1] @ w),
                                   rtol=1e-9)

        # r = 0 cuts the recurrent term out of the candidate; r = 1 lets it in.
        layer.weights["recurrent_kernel"][:, 2 * u:] = np.eye(u) * 3.0
        input_bias[u:2 * u] = -50.0
        np.testing.assert_allclose(layer.forward(x)[0][:, -1], np.tanh(x[:, -1] @ w),
                                   rtol=1e-9)
        input_bias[u:2 * u] = 50.0
        seq = layer.forward(x)[0]
        np.testing.assert_allclose(seq[:, -1], np.tanh(x[:, -1] @ w + seq[:, -2] * 3.0),
                                   rtol=1e-9)


def test_gru_recurrent_bias_sits_inside_the_reset_gate():
    # reset_after: hh = act(x_h + r·(h R_h + b[1]_h)); with r = 0 the recurrent bias vanishes.
    u, x = 2, np.zeros((1, 1, 3))
    layer = _zero_layer(GRU(u), 3)
    layer.weights["bias"][1, 2 * u:] = 0.7
    layer.weights["bias"][0, :u] = -50.0  # z = 0
    np.testing.assert_allclose(layer.forward(x)[0], np.tanh(0.5 * 0.7) * np.ones((1, u)))
    layer.weights["bias"][0, u:2 * u] = -50.0  # r = 0
    np.testing.assert_allclose(layer.forward(x)[0], 0.0, atol=1e-20)


def test_go_backwards_returns_the_sequence_in_processed_order():
    x = np.random.default_rng(5).standard_normal((2, 4, 3))
    for cls in (LSTM, GRU, SimpleRNN):
        forward = _random_layer(cls(2, return_sequences=True), x.shape)
        backward = cls(2, return_sequences=True, go_backwards=True)
        backward.build((None, 4, 3), np.random.default_rng(0), dtype=np.float64)
        backward.set_weights(forward.get_weights())
        np.testing.assert_allclose(backward.forward(x)[0], forward.forward(x[:, ::-1])[0],
                                   rtol=1e-12)
        dy = np.random.default_rng(6).standard_normal((2, 4, 2))
        dx_back = backward.forward(x)[1](dy)
        dx_fwd = forward.forward(x[:, ::-1].copy())[1](dy)
        np.testing.assert_allclose(dx_back, dx_fwd[:, ::-1], rtol=1e-12)


def test_return_state_last_output_is_the_final_h():
    x = np.random.default_rng(5).standard_normal((2, 4, 3))
    for cls in (LSTM, GRU, SimpleRNN):
        layer = _random_layer(cls(2, return_state=True), x.shape)
        out, h, *rest = layer.forward(x)[0]
        np.testing.assert_array_equal(out, h)
        assert out is not h  # separate arrays: a consumer changing one cannot change the other
        assert len(rest) == (1 if cls is LSTM else 0)


# --- weights: Keras layout, order and names ---------------------------------------------------

def test_lstm_weight_layout_and_unit_forget_bias():
    layer = LSTM(3)
    specs = layer.weight_specs((None, 7, 5))
    assert [(s.name, s.shape) for s in specs] == [
        ("kernel", (5, 12)), ("recurrent_kernel", (3, 12)), ("bias", (12,))]
    assert specs[0].initializer == "glorot_uniform"
    assert specs[1].initializer == "orthogonal"
    assert specs[2].initializer == UnitForgetBias(3, "zeros")
    layer.build((None, 7, 5), np.random.default_rng(0))
    assert [(k, w.shape, w.dtype) for k, w in layer.weights.items()] == [
        ("kernel", (5, 12), np.float32), ("recurrent_kernel", (3, 12), np.float32),
        ("bias", (12,), np.float32)]
    np.testing.assert_array_equal(layer.weights["bias"], [0] * 3 + [1] * 3 + [0] * 6)
    recurrent = layer.weights["recurrent_kernel"].astype(np.float64)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(3), atol=1e-6)  # orthogonal rows
    limit = np.sqrt(6 / (5 + 12))
    assert np.abs(layer.weights["kernel"]).max() <= limit

    plain = LSTM(3, unit_forget_bias=False)
    assert plain.weight_specs((None, 7, 5))[2] == WeightSpec("bias", (12,), "zeros")
    plain.build((None, 7, 5), np.random.default_rng(0))
    assert not plain.weights["bias"].any()
    ones = LSTM(2, bias_initializer="ones")
    ones.build((None, 7, 5), np.random.default_rng(0))
    np.testing.assert_array_equal(ones.weights["bias"], np.ones(8))
    assert [s.name for s in LSTM(2, use_bias=False).weight_specs((None, 7, 5))] == [
        "kernel", "recurrent_kernel"]


def test_gru_and_simple_rnn_weight_layout():
    assert [(s.name, s.shape) for s in GRU(4).weight_specs((None, 9, 6))] == [
        ("kernel", (6, 12)), ("recurrent_kernel", (4, 12)), ("bias", (2, 12))]
    assert [(s.name, s.shape) for s in GRU(4, reset_after=False).weight_specs((None, 9, 6))] == [
        ("kernel", (6, 12)), ("recurrent_kernel", (4, 12)), ("bias", (12,))]
    assert [(s.name, s.shape) for s in SimpleRNN(4).weight_specs((None, 9, 6))] == [
        ("kernel", (6, 4)), ("recurrent_kernel", (4, 4)), ("bias", (4,))]
    layer = GRU(4)
    layer.build((None, 9, 6), np.random.default_rng(0))
    assert layer.weights["bias"].shape == (2, 12) and not layer.weights["bias"].any()


@pytest.mark.parametrize("layer, params", [
    (LSTM(64), 82_176),  # the docs' shared LSTM on (280, 256)
    (LSTM(64, use_bias=False), 81_920),
    (GRU(64), 3 * 64 * (256 + 64 + 2)),
    (GRU(64, reset_after=False), 3 * 64 * (256 + 64 + 1)),
    (SimpleRNN(64), 64 * (256 + 64 + 1)),
])
def test_param_counts_match_keras(layer, params):
    assert layer.count_params((None, 280, 256)) == params


# --- shapes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, input_shape, expected", [
    (LSTM(8), (None, 10, 3), (None, 8)),
    (LSTM(8, return_sequences=True), (None, 10, 3), (None, 10, 8)),
    (LSTM(8, return_sequences=True), (None, None, 3), (None, None, 8)),
    (LSTM(8, return_state=True), (None, None, 3), [(None, 8), (None, 8), (None, 8)]),
    (LSTM(8, return_sequences=True, return_state=True), (4, 10, 3),
     [(4, 10, 8), (4, 8), (4, 8)]),
    (GRU(5, return_state=True), (None, 7, 2), [(None, 5), (None, 5)]),
    (GRU(5, return_sequences=True, go_backwards=True), (None, 7, 2), (None, 7, 5)),
    (SimpleRNN(1, return_sequences=True, return_state=True), (None, 7, 2),
     [(None, 7, 1), (None, 1)]),
])
def test_compute_output_shape(layer, input_shape, expected):
    assert layer.compute_output_shape(input_shape) == expected


@pytest.mark.parametrize("layer, input_shape, fragment", [
    (LSTM(4), (None, 8), r"LSTM expects sequences \(batch, timesteps, features\) \(rank 3 "
                         r"with the batch axis\), got input shape \(None, 8\)"),
    (GRU(4), (None, 8, 3, 2), "rank 3"),
    (SimpleRNN(4), (None,), "rank 3"),
    (LSTM(4), (None, 8, None), "known number of features"),
])
def test_shape_errors(layer, input_shape, fragment):
    with pytest.raises(ShapeError, match=fragment):
        layer.compute_output_shape(input_shape)
