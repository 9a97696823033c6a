"""Optimizers: three steps against the Keras recurrences written out by hand in Python floats,
float32 kept, decay schedule, and state round trips that resume bit-exactly."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from kconf.engine import optimizers
from kconf.engine.optimizers import SGD, Adam, RMSprop

W0 = [0.5, -1.5]
GRADS = [[0.2, -0.4], [-0.1, 0.3], [0.5, 0.05]]  # the gradient at steps 1, 2, 3


def run(opt, w0=W0, grads=GRADS, dtype=np.float64):
    """Apply ``grads`` one step at a time to a copy of ``w0``; return the final parameter."""
    w = np.array(w0, dtype)
    for g in grads:
        opt.apply([w], [np.array(g, dtype)])
    return w


# --- SGD -------------------------------------------------------------------------------------

def test_sgd_plain():
    lr = 0.1
    w = list(W0)
    for g in GRADS:
        w = [w[j] - lr * g[j] for j in range(2)]
    np.testing.assert_allclose(run(SGD(learning_rate=lr)), w, rtol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum(nesterov):
    lr, mu = 0.1, 0.9
    w, b = list(W0), [0.0, 0.0]
    for g in GRADS:
        for j in range(2):
            b[j] = mu * b[j] - lr * g[j]
            if nesterov:
                w[j] = w[j] + mu * b[j] - lr * g[j]
            else:
                w[j] = w[j] + b[j]
    np.testing.assert_allclose(run(SGD(lr, momentum=mu, nesterov=nesterov)), w, rtol=1e-14)


def test_sgd_decay_uses_step_count_before_increment():
    lr, decay, mu = 0.1, 0.5, 0.9
    opt = SGD(lr, momentum=mu, decay=decay)
    w, b = list(W0), [0.0, 0.0]
    param = np.array(W0)
    for k, g in enumerate(GRADS, start=1):
        lr_k = lr / (1 + decay * (k - 1))  # step 1: 0.1, step 2: 0.1 / 1.5, step 3: 0.1 / 2
        assert opt.iterations == k - 1
        assert opt.current_learning_rate() == pytest.approx(lr_k, rel=1e-15)
        for j in range(2):
            b[j] = mu * b[j] - lr_k * g[j]
            w[j] = w[j] + b[j]
        opt.apply([param], [np.array(g)])
    assert opt.iterations == 3
    assert opt.current_learning_rate() == pytest.approx(0.1 / 2.5)
    np.testing.assert_allclose(param, w, rtol=1e-14)


# --- RMSprop ---------------------------------------------------------------------------------

def test_rmsprop_plain():
    lr, rho, eps = 0.01, 0.9, 1e-7
    w, v = list(W0), [0.0, 0.0]
    for g in GRADS:
        for j in range(2):
            v[j] = rho * v[j] + (1 - rho) * g[j] ** 2
            w[j] = w[j] - lr * g[j] / math.sqrt(v[j] + eps)  # ε inside the root
    np.testing.assert_allclose(run(RMSprop(learning_rate=lr)), w, rtol=1e-13)


def test_rmsprop_epsilon_is_inside_the_root():
    # One step from zero slots with a tiny gradient: g / sqrt(0.1 g² + ε) differs clearly
    # from g / (sqrt(0.1 g²) + ε).
    g, lr, eps = 1e-4, 1.0, 1e-7
    w = run(RMSprop(learning_rate=lr, epsilon=eps), w0=[0.0, 0.0], grads=[[g, g]])
    expected = -lr * g / math.sqrt(0.1 * g * g + eps)
    np.testing.assert_allclose(w, [expected, expected], rtol=1e-13)


def test_rmsprop_centered():
    lr, rho, eps = 0.01, 0.8, 1e-7
    w, v, ag = list(W0), [0.0, 0.0], [0.0, 0.0]
    for g in GRADS:
        for j in range(2):
            v[j] = rho * v[j] + (1 - rho) * g[j] ** 2
            ag[j] = rho * ag[j] + (1 - rho) * g[j]
            w[j] = w[j] - lr * g[j] / math.sqrt(v[j] - ag[j] ** 2 + eps)
    opt = RMSprop(learning_rate=lr, rho=rho, centered=True)
    np.testing.assert_allclose(run(opt), w, rtol=1e-13)


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_momentum(centered):
    lr, rho, mu, eps = 0.01, 0.9, 0.5, 1e-7
    w, v, ag, m = list(W0), [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for g in GRADS:
        for j in range(2):
            v[j] = rho * v[j] + (1 - rho) * g[j] ** 2
            denominator = v[j] + eps
            if centered:
                ag[j] = rho * ag[j] + (1 - rho) * g[j]
                denominator = v[j] - ag[j] ** 2 + eps
            m[j] = mu * m[j] + lr * g[j] / math.sqrt(denominator)
            w[j] = w[j] - m[j]
    opt = RMSprop(learning_rate=lr, rho=rho, momentum=mu, centered=centered)
    np.testing.assert_allclose(run(opt), w, rtol=1e-13)


# --- Adam ------------------------------------------------------------------------------------

@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam(amsgrad):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    w, m, v, v_hat = list(W0), [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    # a large first gradient then small ones makes v shrink, so amsgrad's max matters
    grads = [[3.0, -2.0], [0.01, 0.02], [-0.05, 0.01]]
    for t, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for j in range(2):
            m[j] = b1 * m[j] + (1 - b1) * g[j]
            v[j] = b2 * v[j] + (1 - b2) * g[j] ** 2
            v_hat[j] = max(v_hat[j], v[j])
            denominator_v = v_hat[j] if amsgrad else v[j]
            w[j] = w[j] - alpha * m[j] / (math.sqrt(denominator_v) + eps)  # ε outside
    opt = Adam(learning_rate=lr, amsgrad=amsgrad)
    np.testing.assert_allclose(run(opt, grads=grads), w, rtol=1e-13)


def test_adam_amsgrad_differs_from_plain():
    grads = [[3.0, -2.0], [0.01, 0.02], [-0.05, 0.01]]
    plain = run(Adam(0.01), grads=grads)
    ams = run(Adam(0.01, amsgrad=True), grads=grads)
    assert not np.allclose(plain, ams, rtol=1e-6)


# --- all optimizers --------------------------------------------------------------------------

VARIANTS = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "decay": 1e-2}),
    ("RMSprop", {}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"momentum": 0.5, "centered": True, "decay": 1e-2}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True, "decay": 1e-2}),
]


def _params_and_grads(dtype, seed=0, steps=6):
    """Two parameters of different shapes and a gradient for each at each step."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(3, 2)).astype(dtype), rng.normal(size=(2,)).astype(dtype)]
    grads = [[rng.normal(size=p.shape).astype(dtype) for p in params] for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("name, kwargs", VARIANTS)
def test_float32_is_kept(name, kwargs):
    opt = optimizers.get(name, **kwargs)
    params, grads = _params_and_grads(np.float32)
    ids = [id(p) for p in params]
    for step in grads:
        opt.apply(params, step)
    assert [id(p) for p in params] == ids  # updated in place
    assert all(p.dtype == np.float32 for p in params)
    state = opt.get_state()
    assert state["iterations"] == len(grads)
    assert all(v.dtype == np.float32 for k, v in state.items() if k != "iterations")


@pytest.mark.parametrize("name, kwargs", VARIANTS)
def test_state_round_trip_is_bit_exact(name, kwargs):
    params_a, grads = _params_and_grads(np.float32, seed=3)
    params_b = [p.copy() for p in params_a]
    uninterrupted = optimizers.get(name, **kwargs)
    first = optimizers.get(name, **kwargs)
    for step in grads[:3]:
        uninterrupted.apply(params_a, step)
        first.apply(params_b, step)
    state = first.get_state()
    # the checkpoint holds copies: later steps of `first` do not change it
    first.apply([p.copy() for p in params_b], grads[3])
    resumed = optimizers.get(name, **first.get_config())
    resumed.set_state(dict(state))
    assert resumed.iterations == 3
    for step in grads[3:]:
        uninterrupted.apply(params_a, step)
        resumed.apply(params_b, step)
    for a, b in zip(params_a, params_b):
        assert np.array_equal(a, b)
    final_a, final_b = uninterrupted.get_state(), resumed.get_state()
    assert final_a.keys() == final_b.keys()
    for key in final_a:
        assert np.array_equal(final_a[key], final_b[key]), key


def _packed(arrays):
    """Copies of ``arrays`` as views lying back to back in one flat buffer (as Model packs
    weights and gradients)."""
    flat = np.empty(sum(a.size for a in arrays), arrays[0].dtype)
    views, start = [], 0
    for a in arrays:
        view = flat[start:start + a.size].reshape(a.shape)
        view[...] = a
        views.append(view)
        start += a.size
    return views


@pytest.mark.parametrize("name, kwargs", VARIANTS)
def test_parameters_packed_in_one_buffer_update_bit_for_bit_as_separate_ones(name, kwargs):
    # a large middle weight (> 2 blocks) makes the joined unit go block by block
    rng = np.random.default_rng(7)
    shapes = [(3, 2), (400, 400), (2,)]
    params = [rng.normal(size=s).astype(np.float32) for s in shapes]
    steps = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(4)]
    separate, packed = [p.copy() for p in params], _packed(params)
    grads = _packed([np.zeros(s, np.float32) for s in shapes])
    opt_separate, opt_packed = optimizers.get(name, **kwargs), optimizers.get(name, **kwargs)
    for step in steps:
        opt_separate.apply(separate, step)
        for g, value in zip(grads, step):
            g[...] = value
        opt_packed.apply(packed, grads)
    assert len(opt_packed._units) == 1  # the three parameters were updated as one
    for a, b in zip(separate, packed):
        assert np.array_equal(a, b)
    state_separate, state_packed = opt_separate.get_state(), opt_packed.get_state()
    assert state_separate.keys() == state_packed.keys()
    for key in state_separate:
        assert np.array_equal(state_separate[key], state_packed[key]), key


def test_packing_is_only_used_for_arrays_back_to_back_and_replanned_for_new_arrays():
    opt = SGD(0.1, momentum=0.9)
    params = _packed([np.ones((2, 2), np.float32), np.ones(3, np.float32)])
    grads = [np.ones((2, 2), np.float32), np.ones(3, np.float32)]  # separate arrays
    opt.apply(params, grads)
    assert len(opt._units) == 2
    reversed_params = params[::-1]  # in one buffer, but not in this order
    opt2 = SGD(0.1)
    opt2.apply(reversed_params, _packed([np.ones(3, np.float32), np.ones((2, 2), np.float32)]))
    assert len(opt2._units) == 2
    # other arrays than last step's: a new plan, updating the arrays given
    others = [np.zeros((2, 2), np.float32), np.zeros(3, np.float32)]
    opt.apply(others, grads)
    assert all(np.all(p != 0) for p in others)


def test_state_before_first_step_and_through_npz(tmp_path):
    opt = Adam(0.01)
    assert opt.get_state() == {"iterations": 0}
    params, grads = _params_and_grads(np.float32)
    opt.apply(params, grads[0])
    np.savez(tmp_path / "opt.npz", **opt.get_state())
    with np.load(tmp_path / "opt.npz") as data:
        loaded = {key: data[key] for key in data.files}
    resumed = Adam(0.01)
    resumed.set_state(loaded)
    assert isinstance(resumed.iterations, int) and resumed.iterations == 1
    assert set(resumed.get_state()) == {"iterations", "m.0", "m.1", "v.0", "v.1"}


def test_set_state_rejects_foreign_slots():
    sgd = SGD(0.1, momentum=0.9)
    params, grads = _params_and_grads(np.float64)
    sgd.apply(params, grads[0])
    with pytest.raises(ValueError):
        Adam().set_state(sgd.get_state())


#: Keras's options of every optimizer at their defaults, as get_config lists them.
OPTION_DEFAULTS = {"weight_decay": None, "clipnorm": None, "clipvalue": None,
                   "global_clipnorm": None, "use_ema": False, "ema_momentum": 0.99,
                   "ema_overwrite_frequency": None, "loss_scale_factor": None,
                   "gradient_accumulation_steps": None}


def test_configs_and_registry():
    assert SGD().get_config() == {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False,
                                  "decay": 0.0, "lazy_sparse": False, **OPTION_DEFAULTS}
    assert RMSprop().get_config() == {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0,
                                      "epsilon": 1e-7, "centered": False, "decay": 0.0,
                                      "lazy_sparse": False, **OPTION_DEFAULTS}
    assert Adam().get_config() == {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999,
                                   "epsilon": 1e-7, "amsgrad": False, "decay": 0.0,
                                   "lazy_sparse": False, **OPTION_DEFAULTS}
    assert Adam(lazy_sparse=True).get_config()["lazy_sparse"] is True
    assert set(optimizers.OPTIMIZERS) == {"SGD", "RMSprop", "Adam", "AdamW", "Adamax", "Nadam",
                                          "Adagrad", "Adadelta", "Ftrl", "Lion", "Lamb"}
    for alias, cls in [("sgd", SGD), ("rmsprop", RMSprop), ("adam", Adam), ("Adam", Adam),
                       ("RMSProp", RMSprop)]:
        assert type(optimizers.get(alias)) is cls
    opt = optimizers.get("sgd", learning_rate=0.5, momentum=0.9)
    assert opt.get_config()["learning_rate"] == 0.5 and opt.momentum == 0.9
    for cls in optimizers.OPTIMIZERS.values():
        assert isinstance(cls(**cls().get_config()), optimizers.Optimizer)
    with pytest.raises(KeyError):
        optimizers.get("adamx")


def test_only_options_that_change_a_step_leave_the_fast_path():
    """Keras's defaults (and values that change nothing: clipnorm 0, loss scale 1) keep
    ``apply`` on its fast path; each option that does something takes the options path."""
    for kwargs in ({}, {"clipnorm": 0.0}, {"loss_scale_factor": 1.0}, {"weight_decay": 0.0},
                   {"ema_momentum": 0.5}):
        assert optimizers.Options(**kwargs).plain, kwargs
    for kwargs in ({"clipnorm": 1.0}, {"clipvalue": 1.0}, {"global_clipnorm": 1.0},
                   {"weight_decay": 0.1}, {"use_ema": True}, {"loss_scale_factor": 2.0},
                   {"gradient_accumulation_steps": 2}):
        assert not optimizers.Options(**kwargs).plain, kwargs


@pytest.mark.parametrize("kwargs, message", [
    ({"clipnorm": 1.0, "global_clipnorm": 1.0}, "only one of clipnorm, clipvalue and "
                                                 "global_clipnorm can be set"),
    ({"clipvalue": -0.1}, "clipvalue must be >= 0"),
    ({"gradient_accumulation_steps": 1}, "gradient_accumulation_steps must be an integer >= 2"),
    ({"ema_momentum": 1.5}, "ema_momentum must be in [0, 1]"),
    ({"ema_overwrite_frequency": 0}, "ema_overwrite_frequency must be an integer >= 1"),
    ({"loss_scale_factor": 0.0}, "loss_scale_factor must be > 0"),
    ({"lazy_sparse": True, "gradient_accumulation_steps": 2}, "lazy_sparse cannot be used"),
])
def test_engine_refuses_options_keras_refuses(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Adam(**kwargs)
    with pytest.raises(ValueError, match="weight_decay must be a number"):
        optimizers.AdamW(weight_decay=None)


def test_accumulation_counts_updates_not_calls():
    """With n-step accumulation the weights move on every n-th call by the mean gradient, and
    Adam's bias correction counts updates (``update_count``), not calls."""
    opt = Adam(learning_rate=0.1, gradient_accumulation_steps=2)
    reference = Adam(learning_rate=0.1)
    w, w_ref = np.array(W0, np.float32), np.array(W0, np.float32)
    for k, (g1, g2) in enumerate([(GRADS[0], GRADS[1]), (GRADS[2], GRADS[0])]):
        opt.apply([w], [np.array(g1, np.float32)])
        assert opt.update_count == k and opt.iterations == 2 * k + 1
        opt.apply([w], [np.array(g2, np.float32)])
        reference.apply([w_ref], [(np.array(g1, np.float32) + np.array(g2, np.float32)) / 2])
        np.testing.assert_array_equal(w, w_ref)
    assert opt.update_count == 2 and opt.iterations == 4
