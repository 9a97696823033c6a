"""Layer state, per-weight trainability, freezing and the ``training`` flag (issue 12).

State is a weight whose spec says ``trainable=False`` (BatchNormalization's moving
statistics): ``forward`` updates it in training, the optimizer never sees it, and it is saved
and restored with the weights. ``Centering`` below is a test-only layer with state, built
through the Python API: ``y = (x − μ)·γ`` with μ the batch mean in training (the moving mean
then follows it) and the moving mean at inference — BatchNormalization's mechanism, smaller.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app
from kconf.engine import optimizers
from kconf.engine.layers import Dense, Dropout, TimeDistributed
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.engine.layers.input import InputLayer
from kconf.graph.execute import plan_of, run_graph
from kconf.graph.ir import Graph, call_layer
from kconf.graph.model_layer import ModelLayer
from kconf.keras_io.export import keras_json, weight_groups
from kconf.keras_io.importer import from_keras
from kconf.model import Model
from kconf.report.summary import readable_memory_size, render_text, totals_line
from kconf.train.checkpoint import CheckpointError, Checkpointer, load_checkpoint, restore
from kconf.train.runs import load_weights, save_weights
from kconf.train.trained import set_named_weights
from tests.gradcheck import assert_close_grad, numeric_grad
from tests.test_resume import StopAfter

RNG = np.random.default_rng(12)
ROOT = Path(__file__).resolve().parents[1]


class Centering(Layer):
    """Test-only layer with state: ``gamma`` (trained) and ``moving_mean`` (state).

    Training: ``y = (x − mean(x))·γ`` over every axis but the last, and ``moving_mean ←
    m·moving_mean + (1 − m)·mean(x)``; inference: ``y = (x − moving_mean)·γ``.
    ``state_first`` lists the state spec first, to show the order ``build`` gives them.
    """

    def __init__(self, momentum: float = 0.75, state_first: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.state_first = state_first

    def compute_output_shape(self, input_shape):
        return input_shape

    def weight_specs(self, input_shape):
        gamma = WeightSpec("gamma", (input_shape[-1],), "ones")
        mean = WeightSpec("moving_mean", (input_shape[-1],), "zeros", trainable=False)
        return [mean, gamma] if self.state_first else [gamma, mean]

    def forward(self, x, training=False, rng=None):
        axes = tuple(range(x.ndim - 1))
        gamma, moving = self.weights["gamma"], self.weights["moving_mean"]
        if training:
            mu = x.mean(axis=axes)
            moving[...] = self.momentum * moving + (1 - self.momentum) * mu
        else:
            mu = moving
        centered = x - mu
        y = centered * gamma

        def backward(dy):
            self.grads["gamma"] += (dy * centered).sum(axis=axes)
            if training:  # μ depends on x
                return gamma * (dy - dy.mean(axis=axes))
            return dy * gamma

        return y, backward


class Recorder(Layer):
    """Test-only identity layer that notes the ``training`` flag of every call."""

    def __init__(self, seen: list, **kwargs):
        super().__init__(**kwargs)
        self.seen = seen

    def compute_output_shape(self, input_shape):
        return input_shape

    def forward(self, x, training=False, rng=None):
        self.seen.append((self.name, training))
        return x, lambda dy: dy


def _input(shape, name="x"):
    (t,) = call_layer(InputLayer(shape=shape, name=name), [], [name])
    return t


def _stateful_model(seed: int = 0, momentum: float = 0.75) -> Model:
    """x(6) -> Dense(5) -> Centering -> Dropout -> Dense(3, softmax), built from ``seed``."""
    x = _input((6,))
    (h,) = call_layer(Dense(5, activation="tanh", name="hidden"), [x], ["h"])
    (c,) = call_layer(Centering(momentum, name="centering"), [h], ["c"])
    (d,) = call_layer(Dropout(0.25, name="drop"), [c], ["d"])
    (y,) = call_layer(Dense(3, activation="softmax", name="out"), [d], ["y"])
    model = Model(Graph([x], [y]), name="stateful", sequential=True)
    model.build(np.random.default_rng(seed))
    model.train_rng = np.random.default_rng([seed, 1])
    model.compile(optimizers.Adam(learning_rate=0.01), "categorical_crossentropy")
    return model


def _data(n: int = 48):
    x = RNG.normal(size=(n, 6)).astype(np.float32) + 1.5  # not centred: the mean moves
    y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, n)]
    return x, y


# --- the layer contract ------------------------------------------------------------------


def test_stateful_test_layer_gradients_match_finite_differences_in_float64():
    layer = Centering(name="c")
    layer.build((None, 4, 3), np.random.default_rng(0), dtype=np.float64)
    layer.weights["gamma"][...] = [0.5, -1.5, 2.0]
    x = RNG.normal(size=(5, 4, 3))
    r = RNG.normal(size=(5, 4, 3))

    def loss():
        y, _ = layer.forward(x, training=True)
        return float((y * r).sum())

    y, backward = layer.forward(x, training=True)
    layer.zero_grads()
    dx = backward(r)
    assert_close_grad(dx, numeric_grad(loss, x), "dx")
    assert_close_grad(layer.grads["gamma"], numeric_grad(loss, layer.weights["gamma"]), "gamma")
    assert set(layer.grads) == {"gamma"}  # state has no gradient


def test_weights_are_trainable_specs_then_state_as_keras_orders_its_variables():
    layer = Centering(state_first=True, name="c")  # specs list the state first
    layer.build((None, 3), np.random.default_rng(0))
    gamma, mean = layer.weights["gamma"], layer.weights["moving_mean"]
    assert list(layer.weights) == ["gamma", "moving_mean"]
    assert layer.state_names == {"moving_mean"}
    assert list(layer.grads) == ["gamma"]
    assert [w is g for w, g in zip(layer.trainable_weights, [gamma])] == [True]
    assert len(layer.trainable_weights) == 1
    assert len(layer.non_trainable_weights) == 1 and layer.non_trainable_weights[0] is mean
    assert [e[1].name for e in layer.weight_entries((None, 3))] == ["gamma", "moving_mean"]
    assert [e[2] for e in layer.weight_entries((None, 3))] == [True, False]
    assert layer.has_state((None, 3)) and not Dense(2).has_state((None, 3))

    layer.trainable = False  # frozen: Keras's trainable_weights is then empty
    assert layer.trainable_weights == []
    assert [w is x for w, x in zip(layer.non_trainable_weights, [gamma, mean])] == [True, True]
    assert [e[2] for e in layer.weight_entries((None, 3))] == [False, False]
    assert list(layer.grads) == ["gamma"]  # still a trainable spec: frozen is not state


def test_freezing_a_container_freezes_the_layers_inside_as_keras_does():
    dense = Dense(2, name="inner_dense")
    wrapped = TimeDistributed(dense, name="td")
    wrapped.trainable = False
    assert not dense.trainable
    frozen_at_birth = TimeDistributed(Dense(2, name="d2"), name="td2", trainable=False)
    assert not frozen_at_birth.layer.trainable
    unfrozen_wrapper = TimeDistributed(dense, name="td3")  # True is not pushed down at birth
    assert not dense.trainable and unfrozen_wrapper.trainable

    x = _input((3,), "inner_in")
    (y,) = call_layer(Centering(name="inner_c"), [x], ["inner_y"])
    nested = ModelLayer(Graph([x], [y]), name="inner", trainable=False)
    assert [l.trainable for l in nested.graph.layers] == [False, False]
    nested.trainable = True
    assert [l.trainable for l in nested.graph.layers] == [True, True]


# --- the model's lists -------------------------------------------------------------------------


def _nested_model() -> tuple[Model, dict]:
    """x(2, 3) -> TD(Dense 'td_dense') -> flat -> shared Dense twice -> nested model
    (Dense + Centering) -> out; returns the model and its layers by name."""
    from kconf.engine.layers import Flatten

    ix = _input((4,), "inner_in")
    (ih,) = call_layer(Dense(4, name="inner_dense"), [ix], ["inner_h"])
    (iy,) = call_layer(Centering(name="inner_c"), [ih], ["inner_y"])
    inner = ModelLayer(Graph([ix], [iy]), name="inner")
    td = TimeDistributed(Dense(2, name="td_dense"), name="td")
    shared = Dense(4, name="shared")
    x = _input((2, 3))
    (a,) = call_layer(td, [x], ["a"])
    (b,) = call_layer(Flatten(name="flat"), [a], ["b"])
    (c,) = call_layer(shared, [b], ["c"])
    (d,) = call_layer(shared, [c], ["d"])
    (e,) = call_layer(inner, [d], ["e"])
    (f,) = call_layer(Dense(1, name="out"), [e], ["f"])
    model = Model(Graph([x], [f]))
    model.build(np.random.default_rng(0))
    layers = {"td_dense": td.layer, "shared": shared, "inner": inner, "out": f.node.layer,
              "inner_dense": ih.node.layer, "inner_c": iy.node.layer, "td": td}
    return model, layers


def _same(arrays, expected) -> bool:
    return len(arrays) == len(expected) and all(a is b for a, b in zip(arrays, expected))


def test_model_weight_lists_follow_keras_and_hold_each_weight_once():
    model, l = _nested_model()
    w = {name: l[name].weights for name in ("td_dense", "shared", "inner_dense", "inner_c",
                                            "out")}
    everything = [w["td_dense"]["kernel"], w["td_dense"]["bias"],
                  w["shared"]["kernel"], w["shared"]["bias"],  # called twice, listed once
                  w["inner_dense"]["kernel"], w["inner_dense"]["bias"],
                  w["inner_c"]["gamma"], w["inner_c"]["moving_mean"],
                  w["out"]["kernel"], w["out"]["bias"]]
    assert _same(model.weights, everything)
    assert _same(model.trainable_weights, [a for a in everything
                                           if a is not w["inner_c"]["moving_mean"]])
    assert _same(model.non_trainable_weights, [w["inner_c"]["moving_mean"]])
    assert _same(model._params, model.trainable_weights)  # what the optimizer gets
    sizes = [a.size for a in everything]
    assert model.param_counts() == (sum(sizes) - 4, 4)
    assert model.count_params() == sum(sizes)
    assert _same(l["inner"].trainable_weights, everything[4:7])
    assert _same(l["inner"].non_trainable_weights, everything[7:8])

    l["inner"].trainable = False  # freeze the nested model, then compile (as Keras)
    l["td"].trainable = False
    model.compile(optimizers.SGD(0.1), "mse")
    assert _same(model.trainable_weights, everything[2:4] + everything[8:])
    assert _same(model.non_trainable_weights, everything[:2] + everything[4:8])
    assert _same(model._params, model.trainable_weights)
    assert l["inner"].trainable_weights == [] and l["td_dense"].trainable_weights == []
    assert model.param_counts() == (sum(sizes[2:4] + sizes[8:]),
                                    sum(sizes[:2] + sizes[4:8]))


# --- state in training ---------------------------------------------------------------------------


def test_state_moves_in_training_forward_passes_only_and_never_through_the_optimizer():
    model = _stateful_model()
    moving = model.get_layer("centering").weights["moving_mean"]
    assert all(id(p) != id(moving) for p in model._params)
    assert "moving_mean" not in model.get_layer("centering").grads
    x, y = _data()
    model.predict(x)
    model.evaluate(x, y)
    assert np.all(moving == 0)  # inference leaves the state alone

    hidden = model.get_layer("hidden")
    h = np.tanh(x[:16] @ hidden.weights["kernel"] + hidden.weights["bias"])
    model.train_on_batch(x[:16], y[:16])
    expected = (0.25 * h.mean(axis=0)).astype(np.float32)  # 0.75·0 + 0.25·mean
    np.testing.assert_allclose(moving, expected, rtol=1e-6, atol=1e-7)
    assert model.get_layer("centering").weights["moving_mean"] is moving  # in place

    before = moving.copy()
    model.predict(x)
    assert np.array_equal(moving, before)
    model.fit(x, y, batch_size=16, epochs=2)
    assert not np.array_equal(moving, before)


def test_a_shared_stateful_layer_updates_once_per_call_and_is_never_stacked():
    layer = Centering(momentum=0.5, name="shared_c")
    a, b = _input((3,), "a"), _input((3,), "b")
    (ya,) = call_layer(layer, [a], ["ya"])
    (yb,) = call_layer(layer, [b], ["yb"])
    graph = Graph([a, b], [ya, yb])
    layer.build((None, 3), np.random.default_rng(0))
    assert plan_of(graph).stacked == {}  # two calls, two updates

    twin = Dense(3, name="shared_dense")  # a stateless shared layer is stacked (the check bites)
    c, d = _input((3,), "c"), _input((3,), "d")
    (yc,) = call_layer(twin, [c], ["yc"])
    (yd,) = call_layer(twin, [d], ["yd"])
    assert plan_of(Graph([c, d], [yc, yd])).stacked != {}

    xa = RNG.normal(size=(4, 3)).astype(np.float32)
    xb = RNG.normal(size=(6, 3)).astype(np.float32) + 2
    (out_a, out_b), _ = run_graph(graph, [xa, xb], training=True)
    np.testing.assert_allclose(out_a, xa - xa.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out_b, xb - xb.mean(axis=0), rtol=1e-6, atol=1e-6)
    expected = 0.5 * (0.5 * xa.mean(axis=0)) + 0.5 * xb.mean(axis=0)  # a's update, then b's
    np.testing.assert_allclose(layer.weights["moving_mean"], expected, rtol=1e-6)


def test_interrupted_and_resumed_equals_uninterrupted_state_included(tmp_path):
    x, y = _data(64)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full = _stateful_model(seed=5)
    full.fit(x, y, batch_size=16, epochs=4, callbacks=[Checkpointer(tmp_path / "a")])

    cut = _stateful_model(seed=5)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(x, y, batch_size=16, epochs=4,
                callbacks=[Checkpointer(tmp_path / "b"), StopAfter(2)])
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.npz")
    assert ckpt.epoch == 2 and "centering/moving_mean" in ckpt.weights
    assert np.any(ckpt.weights["centering/moving_mean"] != 0)

    resumed = _stateful_model(seed=99)  # other initial weights: all must come from the file
    restore(resumed, ckpt)
    resumed.fit(x, y, batch_size=16, epochs=4, initial_epoch=ckpt.epoch)
    expected, got = full.named_weights(), resumed.named_weights()
    assert list(got) == list(expected)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key
    assert np.array_equal(resumed.predict(x), full.predict(x))


def test_a_checkpoint_records_what_was_frozen_and_resumes_only_so(tmp_path):
    x, y = _xy()
    model = build_model(CONFIG)  # 'middle' frozen
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[Checkpointer(tmp_path)])
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "last.npz")
    assert ckpt.meta["trainable"] == ["first/kernel", "first/bias", "last/kernel", "last/bias"]
    same = build_model(CONFIG)
    restore(same, ckpt)
    assert np.array_equal(same.get_layer("first").weights["kernel"], ckpt.weights["first/kernel"])

    unfrozen = build_model(CONFIG)
    unfrozen.get_layer("middle").trainable = True
    unfrozen.compile(optimizers.SGD(0.1, momentum=0.9), "categorical_crossentropy")
    before = unfrozen.get_layer("first").weights["kernel"].copy()
    with pytest.raises(CheckpointError, match=r"here only \['middle/bias', 'middle/kernel'\]"):
        restore(unfrozen, ckpt)  # its optimizer slots would pair with the wrong weights
    assert np.array_equal(unfrozen.get_layer("first").weights["kernel"], before)  # untouched


def test_weights_npz_holds_the_state_and_restores_it(tmp_path):
    x, y = _data()
    model = _stateful_model(seed=1)
    model.fit(x, y, batch_size=16, epochs=1)
    save_weights(tmp_path / "weights.npz", model.named_weights())
    named = load_weights(tmp_path / "weights.npz")
    assert np.array_equal(named["centering/moving_mean"],
                          model.get_layer("centering").weights["moving_mean"])
    other = _stateful_model(seed=2)
    set_named_weights(other, named, "weights.npz")
    assert np.array_equal(other.predict(x), model.predict(x))  # inference reads the state


# --- freezing ----------------------------------------------------------------------------------

CONFIG = {
    "name": "frozen",
    "seed": 4,
    "model": {"sequential": [
        {"Dense": {"units": 8, "activation": "relu", "input_dim": 5, "name": "first"}},
        {"Dense": {"units": 6, "activation": "tanh", "name": "middle", "trainable": False}},
        {"Dense": {"units": 2, "activation": "softmax", "name": "last"}},
    ]},
    "compile": {"optimizer": {"SGD": {"learning_rate": 0.1, "momentum": 0.9}},
                "loss": "categorical_crossentropy"},
    "data": {"train": {"random": {"samples": 32, "x": [5], "classes": 2, "one_hot": True}}},
    "fit": {"epochs": 2, "batch_size": 8},
}


def _xy(n=32):
    x = RNG.normal(size=(n, 5)).astype(np.float32)
    return x, np.eye(2, dtype=np.float32)[RNG.integers(0, 2, n)]


def test_trainable_false_in_a_config_keeps_the_weights_and_counts_them_non_trainable():
    model = build_model(CONFIG)
    before = {k: v.copy() for k, v in model.named_weights().items()}
    x, y = _xy()
    model.fit(x, y, batch_size=8, epochs=2)
    after = model.named_weights()
    for key in ("middle/kernel", "middle/bias"):
        assert np.array_equal(after[key], before[key]), key
    for key in ("first/kernel", "last/kernel"):  # the gradient still flows through 'middle'
        assert not np.array_equal(after[key], before[key]), key
    assert model.param_counts() == (5 * 8 + 8 + 6 * 2 + 2, 8 * 6 + 6)


def test_freezing_in_python_before_compile_equals_freezing_in_the_config():
    x, y = _xy()
    in_config = build_model(CONFIG)
    unfrozen = {**CONFIG, "model": {"sequential": [
        {**s, "Dense": {k: v for k, v in s["Dense"].items() if k != "trainable"}}
        for s in CONFIG["model"]["sequential"]]}}
    in_python = build_model(unfrozen)
    assert in_python.get_layer("middle").trainable
    in_python.get_layer("middle").trainable = False
    in_python.compile(optimizers.SGD(0.1, momentum=0.9), "categorical_crossentropy")
    for model in (in_config, in_python):
        model.fit(x, y, batch_size=8, epochs=2)
    a, b = in_config.named_weights(), in_python.named_weights()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_a_frozen_layer_changes_no_gradient_of_the_others_and_is_not_run_backward():
    x, y = _xy(8)
    frozen = build_model(CONFIG)
    free = build_model(CONFIG)
    free.get_layer("middle").trainable = True
    free.get_layer("first").trainable = False
    frozen.get_layer("first").trainable = False
    for model in (frozen, free):
        model.compile(optimizers.SGD(0.0), "categorical_crossentropy")  # lr 0: grads only
        model.train_on_batch(x, y)
    np.testing.assert_array_equal(frozen.get_layer("last").grads["kernel"],
                                  free.get_layer("last").grads["kernel"])
    assert np.any(free.get_layer("middle").grads["kernel"] != 0)
    # 'first' is frozen and nothing trainable lies behind it: its backward is skipped
    assert np.all(frozen.get_layer("first").grads["kernel"] == 0)
    assert np.all(free.get_layer("first").grads["kernel"] == 0)
    # unfreezing and compiling again trains it: the same step now reaches it
    frozen.get_layer("first").trainable = True
    frozen.compile(optimizers.SGD(0.0), "categorical_crossentropy")
    frozen.train_on_batch(x, y)
    assert np.any(frozen.get_layer("first").grads["kernel"] != 0)


def test_a_frozen_layer_between_trained_ones_runs_backward_and_its_gradients_never_pile_up():
    x, y = _xy(8)
    model = build_model(CONFIG)  # 'middle' frozen between two trained layers
    model.compile(optimizers.SGD(0.0), "categorical_crossentropy")  # lr 0: the same step twice
    middle = model.get_layer("middle")
    model.train_on_batch(x, y)
    first_step = middle.grads["kernel"].copy()
    assert np.any(first_step != 0)  # it ran backward: 'first' needs the gradient through it
    model.train_on_batch(x, y)
    assert np.array_equal(middle.grads["kernel"], first_step)  # zeroed each step, not summed


# --- summary -------------------------------------------------------------------------------


@pytest.mark.parametrize("size, text", [
    (0, "0.00 B"), (40, "40.00 B"), (1023, "1023.00 B"), (1024, "1.00 KB"),
    (82_305 * 4, "321.50 KB"), (7_998_250 * 4, "30.51 MB"), (3 * 1024 ** 3, "3.00 GB"),
])
def test_memory_sizes_read_as_keras_writes_them(size, text):
    assert readable_memory_size(size) == text


def test_summary_prints_keras_totals_with_frozen_and_state_counted_non_trainable(tmp_path):
    path = tmp_path / "frozen.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    result = CliRunner().invoke(app, ["summary", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Total params" in line)
    assert lines[start:start + 3] == [
        " Total params: 116 (464.00 B)",
        " Trainable params: 62 (248.00 B)",
        " Non-trainable params: 54 (216.00 B)",
    ]
    result = CliRunner().invoke(app, ["summary", str(ROOT / "configs" / "shared_lstm.yaml")])
    assert result.exit_code == 0, result.output
    assert " Total params: 82,305 (321.50 KB)\n Trainable params: 82,305 (321.50 KB)\n" \
           " Non-trainable params: 0 (0.00 B)\n" in result.output
    model, _ = _nested_model()
    text = render_text(totals_line(model))
    assert text.splitlines()[2] == " Non-trainable params: 4 (16.00 B)"  # the state


# --- Keras files -------------------------------------------------------------------------------


def test_export_keeps_trainable_false_and_import_reads_it_back():
    model = build_model(CONFIG)
    data = keras_json(model)
    flags = {e["config"]["name"]: e["config"]["trainable"] for e in data["config"]["layers"]
             if e["class_name"] != "InputLayer"}
    assert flags == {"first": True, "middle": False, "last": True}
    back = from_keras(json.loads(json.dumps(data)))
    layers = {next(iter(s.values())).get("name"): next(iter(s.values()))
              for s in back["model"]["sequential"]}
    assert layers["middle"].get("trainable") is False
    assert "trainable" not in layers["first"]
    assert build_model(back).param_counts() == model.param_counts()


def test_export_writes_a_frozen_nested_model_as_frozen():
    ix = _input((3,), "inner_in")
    (ih,) = call_layer(Dense(4, name="inner_dense"), [ix], ["inner_h"])
    inner = ModelLayer(Graph([ix], [ih]), name="inner")
    x = _input((3,))
    (h,) = call_layer(inner, [x], ["h"])
    (y,) = call_layer(Dense(1, name="out"), [h], ["y"])
    model = Model(Graph([x], [y]))
    inner.trainable = False
    data = keras_json(model)
    entries = {e["config"]["name"]: e for e in data["config"]["layers"]}
    assert entries["inner"]["config"]["trainable"] is False
    assert entries["out"]["config"]["trainable"] is True
    assert [e["config"]["trainable"] for e in entries["inner"]["config"]["layers"]
            if e["class_name"] != "InputLayer"] == [False]


def test_keras_weight_groups_store_state_after_the_trainable_variables():
    model, l = _nested_model()
    c = l["inner_c"]
    (group,) = [g for g in weight_groups(model) if g.name == "inner_c"]
    assert _same(group.arrays, [c.weights["gamma"], c.weights["moving_mean"]])


def test_keras_weights_file_round_trips_the_state():
    pytest.importorskip("h5py", reason="Keras weight files need h5py ('.[keras]')")
    from kconf.keras_io.h5 import read_keras_weights, write_weights

    model, l = _nested_model()
    l["inner_c"].weights["moving_mean"][...] = [0.5, -1.0, 2.0, 3.5]
    other, _ = _nested_model()
    named = read_keras_weights(other, write_weights(weight_groups(model)))
    assert np.array_equal(named["inner/inner_c/moving_mean"], [0.5, -1.0, 2.0, 3.5])


# --- the training flag -------------------------------------------------------------------------


def test_the_training_flag_reaches_every_layer_through_nesting():
    seen: list = []
    deep_in = _input((3,), "deep_in")
    (deep_out,) = call_layer(Recorder(seen, name="deepest"), [deep_in], ["deep_out"])
    deep = ModelLayer(Graph([deep_in], [deep_out]), name="deep")
    mid_in = _input((3,), "mid_in")
    (m1,) = call_layer(deep, [mid_in], ["m1"])
    (m2,) = call_layer(Recorder(seen, name="middle"), [m1], ["m2"])
    middle = ModelLayer(Graph([mid_in], [m2]), name="mid")
    x = _input((2, 3))
    (a,) = call_layer(TimeDistributed(middle, name="td"), [x], ["a"])
    top = Recorder(seen, name="top")
    (b,) = call_layer(top, [a], ["b"])
    (c,) = call_layer(top, [b], ["c"])  # shared: stacked or not, each call is told
    (y,) = call_layer(TimeDistributed(Dense(1, name="d"), name="td_out"), [c], ["y"])
    model = Model(Graph([x], [y]))
    model.build(np.random.default_rng(0))
    model.compile(optimizers.SGD(0.1), "mse")
    xs = RNG.normal(size=(4, 2, 3)).astype(np.float32)
    ys = RNG.normal(size=(4, 2, 1)).astype(np.float32)

    model.train_on_batch(xs, ys)
    assert sorted(set(seen)) == [("deepest", True), ("middle", True), ("top", True)]
    assert len([s for s in seen if s[0] == "top"]) in (1, 2)  # two calls, maybe stacked
    seen.clear()
    model.predict(xs)
    model.evaluate(xs, ys)
    assert sorted(set(seen)) == [("deepest", False), ("middle", False), ("top", False)]
    seen.clear()
    model.fit(xs, ys, batch_size=2, epochs=1)
    assert {s[1] for s in seen} == {True} and {s[0] for s in seen} == {"deepest", "middle",
                                                                       "top"}
