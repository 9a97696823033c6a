"""Row-sparse gradients: ``RowGrad`` itself, optimizers applying it with Keras's dense semantics
(bit for bit the dense gradient's step) or lazily (touched rows only), and the model plumbing
(a shared Embedding, zeroing without a pass over the table, the config option)."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

import kconf
from kconf.engine import optimizers
from kconf.engine.layers import Embedding
from kconf.engine.ops import Ops, use_ops
from kconf.engine.optimizers import RowGrad, coalesce_rows
from kconf.engine.optimizers.rows import coalesce_all

# Every optimizer configuration whose sparse path differs: plain SGD (no slots), momentum with
# and without Nesterov, RMSprop plain / centered / with momentum, Adam plain / amsgrad.
VARIANTS = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "decay": 1e-2}),
    ("RMSprop", {}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"momentum": 0.5}),
    ("RMSprop", {"momentum": 0.5, "centered": True, "decay": 1e-2}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True, "decay": 1e-2}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kwargs.items()) or 'default'}"
       for name, kwargs in VARIANTS]
ROWS, DIM = 40, 6


def _row_steps(rng, dtype, steps=6):
    """Per step: indices with repeats (some steps touch nothing) and one value row each."""
    out = []
    for step in range(steps):
        n = 0 if step == 3 else int(rng.integers(1, 25))
        idx = rng.integers(0, ROWS // 2 if step % 2 else ROWS, size=n)
        if n:
            idx[: n // 3] = idx[0]  # one row many times
        out.append((idx, rng.standard_normal((n, DIM)).astype(dtype)))
    return out


def _row_grad(idx, values, dtype):
    grad = RowGrad((ROWS, DIM), dtype)
    grad.add(idx, values)
    return grad


# --- RowGrad --------------------------------------------------------------------------------

def test_row_grad_coalesces_parts_and_has_a_dense_view():
    grad = RowGrad((5, 2), np.float64)
    assert grad.indices.size == 0 and grad.values.shape == (0, 2)
    values = np.arange(8.0).reshape(4, 2)
    grad.add(np.array([3, 1, 3, 3]), values)
    values[:] = -1  # a part never aliases the caller's arrays
    grad.add(np.array([[0, 3]]), np.ones((1, 2, 2)))  # any index shape, rows reshaped
    np.testing.assert_array_equal(grad.indices, [0, 1, 3])
    np.testing.assert_array_equal(grad.values, [[1, 1], [2, 3], [0 + 4 + 6 + 1, 1 + 5 + 7 + 1]])
    dense = np.zeros((5, 2))
    dense[[0, 1, 3]] = grad.values
    np.testing.assert_array_equal(grad.to_dense(), dense)
    np.testing.assert_array_equal(np.asarray(grad), dense)
    assert np.asarray(grad, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError):
        np.asarray(grad, copy=False)
    assert grad.shape == (5, 2) and grad.ndim == 2 and grad.dtype == np.float64
    grad.clear()
    assert grad.indices.size == 0 and not grad.to_dense().any()


def test_row_grad_keeps_its_dtype():
    grad = RowGrad((4, 3), np.float32)
    grad.add(np.array([1, 1]), np.ones((2, 3)))  # float64 rows, as a float32 table's += would
    assert grad.values.dtype == np.float32 and grad.to_dense().dtype == np.float32


def test_row_grad_rejects_rows_out_of_range():
    grad = RowGrad((5, 2), np.float32)
    for bad in (5, -1):
        with pytest.raises(IndexError, match=rf"row index {bad} is out of range \[0, 5\)"):
            grad.add(np.array([0, bad]), np.ones((2, 2), np.float32))
    assert grad.indices.size == 0  # nothing was added


def test_row_grad_reuses_its_storage_after_clear():
    rng = np.random.default_rng(6)
    grad = RowGrad((50, 3), np.float32)
    grad.add(rng.integers(0, 50, 20), rng.standard_normal((20, 3)).astype(np.float32))
    first = grad.values
    grad.clear()
    idx = rng.integers(0, 50, 20)
    rows = rng.standard_normal((20, 3)).astype(np.float32)
    grad.add(idx, rows)
    assert grad.values.base is first.base  # the same storage: no fresh pages each step
    expected = np.zeros((50, 3), np.float32)
    np.add.at(expected, idx, rows)
    np.testing.assert_allclose(grad.to_dense(), expected, rtol=1e-6)
    grad.add(idx[:5], rows[:5])  # a second part beside the first, then merged
    np.add.at(expected, idx[:5], rows[:5])
    np.testing.assert_allclose(grad.to_dense(), expected, rtol=1e-6)


def test_coalesce_rows_many_groups_and_rounds():
    rng = np.random.default_rng(0)
    idx = np.concatenate([np.repeat(np.arange(60), np.arange(60) % 7 + 1),
                          rng.integers(0, 90, 500)])
    rng.shuffle(idx)
    rows = rng.standard_normal((idx.size, 3))
    unique, sums = coalesce_rows(idx, rows)
    expected = np.zeros((90, 3))
    np.add.at(expected, idx, rows)
    np.testing.assert_array_equal(unique, np.unique(idx))
    np.testing.assert_allclose(sums, expected[unique], rtol=1e-12, atol=1e-12)


# --- dense semantics: bit for bit the dense gradient's step ---------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=IDS)
def test_sparse_updates_equal_dense_updates_exactly(name, kwargs, dtype):
    rng = np.random.default_rng(1)
    table = rng.standard_normal((ROWS, DIM)).astype(dtype)
    bias = rng.standard_normal(DIM).astype(dtype)
    sparse_params = [table.copy(), bias.copy()]
    dense_params = [table.copy(), bias.copy()]
    sparse_opt = optimizers.get(name, **kwargs)
    dense_opt = optimizers.get(name, **kwargs)
    for idx, values in _row_steps(rng, dtype):
        bias_grad = rng.standard_normal(DIM).astype(dtype)
        grad = _row_grad(idx, values, dtype)
        dense_opt.apply(dense_params, [grad.to_dense(), bias_grad])
        sparse_opt.apply(sparse_params, [grad, bias_grad])
        for got, want in zip(sparse_params, dense_params):
            assert np.array_equal(got, want)
        sparse_state, dense_state = sparse_opt.get_state(), dense_opt.get_state()
        assert sparse_state.keys() == dense_state.keys()
        for key in sparse_state:
            assert np.array_equal(sparse_state[key], dense_state[key]), key
    assert all(p.dtype == dtype for p in sparse_params)
    # rows never touched still moved where the dense formula moves them (momentum, Adam)
    if kwargs.get("momentum") or name == "Adam":
        assert not np.array_equal(sparse_params[0], table)


NEW_OPTIMIZERS = ["AdamW", "Adamax", "Nadam", "Adagrad", "Adadelta", "Ftrl", "Lion", "Lamb"]
OPTIONS = [{}, {"clipnorm": 0.5, "weight_decay": 0.1}, {"global_clipnorm": 0.5, "use_ema": True},
           {"clipvalue": 0.05, "gradient_accumulation_steps": 2, "loss_scale_factor": 3.0}]


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "clipnorm-decay", "global-ema",
                                                  "clipvalue-accumulate-scale"])
@pytest.mark.parametrize("name", NEW_OPTIMIZERS + ["SGD", "Adam"])
def test_sparse_updates_equal_dense_updates_for_every_optimizer_and_option(name, options):
    """The newer rules (their zero-gradient step is the rule run on zeros; Lamb's, not
    elementwise, densifies) and the options act on a row-sparse gradient as on the dense one:
    exactly without options; to float32 rounding with them (a norm sums the rows in another
    order)."""
    rng = np.random.default_rng(3)
    table = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    bias = rng.standard_normal(DIM).astype(np.float32)
    sparse_params, dense_params = [table.copy(), bias.copy()], [table.copy(), bias.copy()]
    kwargs = {"momentum": 0.9} if name == "SGD" else {}
    sparse_opt = optimizers.get(name, **kwargs, **options)
    dense_opt = optimizers.get(name, **kwargs, **options)
    for idx, values in _row_steps(rng, np.float32):
        bias_grad = rng.standard_normal(DIM).astype(np.float32)
        grad = _row_grad(idx, values, np.float32)
        dense_opt.apply(dense_params, [grad.to_dense(), bias_grad.copy()])
        sparse_opt.apply(sparse_params, [grad, bias_grad.copy()])
        sparse_state, dense_state = sparse_opt.get_state(), dense_opt.get_state()
        assert sparse_state.keys() == dense_state.keys()
        for got, want in [*zip(sparse_params, dense_params),
                          *((sparse_state[k], dense_state[k]) for k in sparse_state)]:
            if options:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            else:
                assert np.array_equal(got, want)
    assert not np.allclose(sparse_params[0], table)


# --- lazy: touched rows only ----------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=IDS)
def test_lazy_updates_touch_only_the_given_rows(name, kwargs):
    rng = np.random.default_rng(2)
    table = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    lazy = optimizers.get(name, lazy_sparse=True, **kwargs)
    for idx, values in _row_steps(rng, np.float32):
        before = table.copy()
        slots_before = {k: v for k, v in lazy.get_state().items() if k != "iterations"}
        lazy.apply([table], [_row_grad(idx, values, np.float32)])
        untouched = np.setdiff1d(np.arange(ROWS), idx)
        assert np.array_equal(table[untouched], before[untouched])
        for key, slot in lazy.get_state().items():
            if key != "iterations":
                was = slots_before.get(key, np.zeros_like(slot))
                assert np.array_equal(slot[untouched], was[untouched]), key
    assert lazy.iterations == 6


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=IDS)
def test_lazy_equals_the_dense_formula_on_the_touched_rows(name, kwargs):
    """On the first step every slot is zero, so the lazy step of the touched rows is the dense
    step restricted to them; a row set touched at every step stays so at every step."""
    rng = np.random.default_rng(3)
    table = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    rows = np.array([2, 5, 6, 17, 31])
    lazy_table = table.copy()
    sub_table = table[rows]  # the dense optimizer sees only the touched rows
    lazy = optimizers.get(name, lazy_sparse=True, **kwargs)
    dense = optimizers.get(name, **kwargs)
    for step in range(4):
        idx = np.concatenate([rows, rows[:2]])  # repeats add up before the step
        values = rng.standard_normal((idx.size, DIM)).astype(np.float32)
        grad = _row_grad(idx, values, np.float32)
        lazy.apply([lazy_table], [grad])
        dense.apply([sub_table], [grad.values])
        assert np.array_equal(lazy_table[rows], sub_table), f"step {step + 1}"
    np.testing.assert_array_equal(np.delete(lazy_table, rows, axis=0),
                                  np.delete(table, rows, axis=0))


def test_lazy_and_dense_differ_once_a_row_is_left_out():
    table = np.ones((4, 2), np.float32)
    dense_table, lazy_table = table.copy(), table.copy()
    dense, lazy = optimizers.Adam(0.1), optimizers.Adam(0.1, lazy_sparse=True)
    for idx in ([0, 1], [1]):  # row 0 is left out of step 2
        grad = RowGrad((4, 2), np.float32)
        grad.add(np.array(idx), np.ones((len(idx), 2), np.float32))
        dense.apply([dense_table], [grad])
        lazy.apply([lazy_table], [grad])
    assert np.array_equal(dense_table[1], lazy_table[1])  # touched at every step
    assert dense_table[0, 0] < lazy_table[0, 0]  # Keras's momentum moved row 0 again
    assert np.array_equal(dense_table[2:], table[2:]) and np.array_equal(lazy_table[2:], table[2:])


def test_sparse_state_round_trip_is_bit_exact():
    rng = np.random.default_rng(4)
    table = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    a, b = table.copy(), table.copy()
    first, uninterrupted = optimizers.Adam(0.01), optimizers.Adam(0.01)
    steps = _row_steps(rng, np.float32)
    for idx, values in steps[:3]:
        first.apply([a], [_row_grad(idx, values, np.float32)])
        uninterrupted.apply([b], [_row_grad(idx, values, np.float32)])
    resumed = optimizers.Adam(**first.get_config())
    resumed.set_state(first.get_state())
    for idx, values in steps[3:]:
        resumed.apply([a], [_row_grad(idx, values, np.float32)])
        uninterrupted.apply([b], [_row_grad(idx, values, np.float32)])
    assert np.array_equal(a, b)


# --- the model: shared Embedding, zeroing, config option ------------------------------------

SHARED = """
name: shared_embedding
seed: 0
model:
  functional:
    inputs:
      a: {shape: [5], dtype: int32}
      b: {shape: [5], dtype: int32}
    layers:
      emb: {Embedding: {input_dim: 30, output_dim: 4}}
      flat: {Flatten: {}}
      merge: {Concatenate: {}}
      out: {Dense: {units: 1, activation: sigmoid}}
    graph:
      - ea = emb(a)
      - eb = emb(b)
      - fa = flat(ea)
      - fb = flat(eb)
      - m = merge(fa, fb)
      - y = out(m)
    outputs: [y]
compile:
  optimizer: OPTIMIZER
  loss: binary_crossentropy
data:
  train:
    random:
      samples: 48
      x:
        a: {shape: [5], dtype: int32, high: 20}
        b: {shape: [5], dtype: int32, high: 12}
      classes: 2
fit: {epochs: 2, batch_size: 8}
"""


class _DenseGradients:
    """Hands the optimizer dense arrays instead of RowGrads (the reference path)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def apply(self, params, grads):
        self.optimizer.apply(params, [np.asarray(g) if isinstance(g, RowGrad) else g
                                      for g in grads])


def _config(optimizer: str):
    return kconf.load_config(yaml.safe_load(SHARED.replace("OPTIMIZER", optimizer)))


def _trained(optimizer: str, dense: bool):
    from kconf.data.sources import load_splits

    cfg = _config(optimizer)
    model = kconf.build_model(cfg)
    if dense:
        model.optimizer = _DenseGradients(model.optimizer)
    train = load_splits(cfg)["train"]
    model.fit(train.x, train.y, batch_size=8, epochs=2, shuffle=True)
    return model


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "{SGD: {momentum: 0.9, nesterov: true}}"])
def test_model_with_a_shared_embedding_trains_as_with_dense_gradients(optimizer):
    sparse, dense = _trained(optimizer, False), _trained(optimizer, True)
    assert isinstance(sparse.get_layer("emb").grads["embeddings"], RowGrad)
    assert sparse._row_grads == [sparse.get_layer("emb").grads["embeddings"]]
    for got, want in zip(sparse.get_weights(), dense.get_weights()):
        assert np.array_equal(got, want)


def test_model_zeroes_row_grads_by_dropping_parts():
    model = _trained("adam", False)
    grad = model.get_layer("emb").grads["embeddings"]
    assert grad.indices.size > 0  # the last step's rows
    model._zero_grads()
    assert grad.indices.size == 0
    assert len(model.get_weights()) == 3  # the shared table appears once


def test_lazy_sparse_reaches_the_engine_and_moves_only_touched_rows():
    from kconf.data.sources import load_splits

    cfg = _config("{Adam: {lazy_sparse: true}}")
    assert cfg.compile.optimizer.kwargs()["lazy_sparse"] is True
    model = kconf.build_model(cfg)
    assert model.optimizer.lazy_sparse is True
    assert "lazy_sparse" not in _config("adam").compile.optimizer.kwargs()
    assert kconf.build_model(_config("adam")).optimizer.lazy_sparse is False
    table = model.get_layer("emb").weights["embeddings"]
    before = table.copy()
    train = load_splits(cfg)["train"]
    model.fit(train.x, train.y, batch_size=8, epochs=1)
    used = np.union1d(train.x[0], train.x[1])
    unused = np.setdiff1d(np.arange(30), used)
    assert unused.size  # indices stay below 20: rows 20 to 29 are never read
    assert np.array_equal(table[unused], before[unused])
    assert not np.array_equal(table[used], before[used])


def test_embedding_backward_writes_no_dense_table():
    layer = Embedding(10_000, 8)
    layer.build((None, 4), np.random.default_rng(0))
    y, backward = layer.forward(np.array([[1, 2, 2, 9_999]]))
    backward(np.ones_like(y))
    grad = layer.grads["embeddings"]
    assert isinstance(grad, RowGrad)
    assert grad.values.shape == (3, 8) and grad.values.nbytes < 1_000


def test_a_frozen_embedding_keeps_its_table_and_its_gradient_does_not_pile_up():
    from kconf.data.sources import load_splits

    text = SHARED.replace("OPTIMIZER", "adam").replace(
        "output_dim: 4}}", "output_dim: 4, trainable: false}}")
    cfg = kconf.load_config(yaml.safe_load(text))
    model = kconf.build_model(cfg)
    emb = model.get_layer("emb")
    assert not emb.trainable
    table = emb.weights["embeddings"].copy()
    train = load_splits(cfg)["train"]
    model.fit(train.x, train.y, batch_size=8, epochs=2)
    assert np.array_equal(emb.weights["embeddings"], table)
    assert len(model._params) == 2  # the Dense kernel and bias
    assert len(emb.grads["embeddings"]._parts) <= 2  # the last step's two calls, no more


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=IDS)
def test_blockwise_updates_equal_whole_array_updates(name, kwargs, lazy, monkeypatch):
    """Large arrays are updated block by block (so that operands stay in cache); the rules are
    elementwise, so that must not change a bit. Small blocks make small arrays take that path."""
    rng = np.random.default_rng(5)
    table = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    kernel = rng.standard_normal((9, 7)).astype(np.float32)
    steps = [(_row_grad(idx, values, np.float32), rng.standard_normal((9, 7)).astype(np.float32))
             for idx, values in _row_steps(rng, np.float32)]
    results = []
    for block in (optimizers.base._BLOCK, 5):
        monkeypatch.setattr(optimizers.base, "_BLOCK", block)  # where it lives
        params = [table.copy(), kernel.copy()]
        opt = optimizers.get(name, lazy_sparse=lazy, **kwargs)
        for grad, kernel_grad in steps:
            opt.apply(params, [grad, kernel_grad])
        results.append((params, opt.get_state()))
    (whole, whole_state), (blocked, blocked_state) = results
    for a, b in zip(whole, blocked):
        assert np.array_equal(a, b)
    for key in whole_state:
        assert np.array_equal(whole_state[key], blocked_state[key]), key


def test_coalesce_all_on_workers_gives_each_grads_own_sums():
    rng = np.random.default_rng(8)
    parts = [(rng.integers(0, n, 300), rng.standard_normal((300, 4)).astype(np.float32))
             for n in (40, 1000, 7)]
    grads = [RowGrad((n, 4), np.float32) for n in (40, 1000, 7)]
    for grad, (idx, rows) in zip(grads, parts):
        grad.add(idx, rows)
        grad.add(idx[:9], rows[:9])  # two parts each
    with use_ops(Ops(workers=2)) as ops, ops.step():
        coalesce_all([grads[0], np.zeros(3), grads[1], grads[2]])
    for grad, (idx, rows) in zip(grads, parts):
        expected = np.zeros(grad.shape, np.float32)
        np.add.at(expected, idx, rows)
        np.add.at(expected, idx[:9], rows[:9])
        np.testing.assert_array_equal(grad.indices, np.unique(idx))
        np.testing.assert_allclose(grad.to_dense(), expected, rtol=1e-5, atol=1e-6)
