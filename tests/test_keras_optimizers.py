"""Every optimizer and schedule against Keras 3's numbers (``tests/fixtures/optimizers``,
written by ``make_optimizers.py``): the weights after a few calls of fixed gradients, with and
without weight decay, clipping, EMA, gradient accumulation and loss scaling, in float32; the
EMA averages; each schedule's values at steps 0..39."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kconf.engine import optimizers
from kconf.engine.schedules import SCHEDULES

HERE = Path(__file__).parent / "fixtures" / "optimizers"
ARRAYS = np.load(HERE / "optimizers.npz")
META = json.loads((HERE / "optimizers.json").read_text())
CASES = list(META["optimizers"])
SCHEDULE_CASES = list(META["schedules"])


def build(cls: str, args: dict) -> optimizers.Optimizer:
    """A kconf optimizer from a case's Keras class and arguments."""
    kwargs = dict(args)
    if isinstance(kwargs.get("learning_rate"), dict):
        ((name, schedule_args),) = kwargs["learning_rate"].items()
        kwargs["learning_rate"] = SCHEDULES[name](**schedule_args)
    return optimizers.get(cls, **kwargs)


def run(opt, calls: int, packed: bool):
    """The fixture's weights after ``calls`` applications; ``packed`` puts both weights (and
    their gradients) back to back in one buffer, as ``Model`` does."""
    w0, w1 = ARRAYS["w0"], ARRAYS["w1"]
    if packed:
        flat = np.concatenate([w0.reshape(-1), w1.reshape(-1)])
        params = [flat[:w0.size].reshape(w0.shape), flat[w0.size:]]
        flat_grad = np.empty_like(flat)
        grads = [flat_grad[:w0.size].reshape(w0.shape), flat_grad[w0.size:]]
    else:
        params = [w0.copy(), w1.copy()]
        grads = [np.empty_like(w0), np.empty_like(w1)]
    for k in range(calls):
        row = ARRAYS["grads"][k]
        grads[0][...] = row[:w0.size].reshape(w0.shape)
        grads[1][...] = row[w0.size:]
        opt.apply(params, grads)
    return np.concatenate([p.reshape(-1) for p in params])


@pytest.mark.parametrize("packed", [False, True], ids=["separate", "packed"])
@pytest.mark.parametrize("case", CASES)
def test_weights_equal_keras(case, packed):
    spec = META["optimizers"][case]
    opt = build(spec["class"], spec["args"])
    weights = run(opt, spec["calls"], packed)
    index = CASES.index(case)
    np.testing.assert_allclose(weights, ARRAYS["weights"][index], rtol=2e-5, atol=2e-6)
    assert weights.dtype == np.float32
    if spec["args"].get("use_ema"):
        state = opt.get_state()
        averages = np.concatenate([state["average.0"].reshape(-1), state["average.1"]])
        np.testing.assert_allclose(averages, ARRAYS["averages"][index], rtol=2e-5, atol=2e-6)


def test_every_optimizer_and_option_is_covered():
    """The fixture exercises every optimizer, and every option of each."""
    classes = {spec["class"] for spec in META["optimizers"].values()}
    assert classes == set(optimizers.OPTIMIZERS)
    options = set(optimizers.Options().config())
    for cls in classes:
        used = set().union(*(spec["args"] for spec in META["optimizers"].values()
                             if spec["class"] == cls))
        assert options - {"ema_momentum"} <= used, cls


def test_options_change_the_numbers():
    """Each variant moves the weights elsewhere than the plain optimizer (so the comparison
    above tests the options, not just the rule)."""
    plain = ARRAYS["weights"][CASES.index("Adam")]
    for case in CASES:
        if case.startswith("Adam__"):
            assert not np.allclose(ARRAYS["weights"][CASES.index(case)], plain, rtol=1e-4)


@pytest.mark.parametrize("case", SCHEDULE_CASES)
def test_schedule_values_equal_keras(case):
    spec = META["schedules"][case]
    schedule = SCHEDULES[spec["class"]](**spec["args"])
    values = [schedule(step) for step in range(ARRAYS["schedules"].shape[1])]
    np.testing.assert_allclose(values, ARRAYS["schedules"][SCHEDULE_CASES.index(case)],
                               rtol=1e-5, atol=1e-8)
    assert set(SCHEDULES) == {s["class"] for s in META["schedules"].values()}


# --- the compile section of a .keras file: Keras -> kconf -> Keras ----------------------------

def _same(ours, keras_value, at=""):
    """Keras's serialized value equals ours, floats to float32 precision, ``name`` aside."""
    if isinstance(keras_value, dict):
        assert isinstance(ours, dict), at
        keys = set(keras_value) - {"name"}
        assert set(ours) - {"name"} == keys, (at, set(ours) ^ keys)
        for key in keys:
            _same(ours[key], keras_value[key], f"{at}.{key}")
    elif isinstance(keras_value, float):
        assert ours == pytest.approx(keras_value, rel=1e-6), at
    else:
        assert ours == keras_value, at


@pytest.mark.parametrize("case", list(META["serialized"]))
def test_keras_compile_config_imports_and_exports_back(case):
    from kconf.api import make_optimizer
    from kconf.config.compile import CompileConfig
    from kconf.keras_io.compile import keras_optimizer, optimizer

    serialized = META["serialized"][case]
    problems = []
    entry = optimizer(serialized, ("optimizer",), lambda at, message: problems.append(message))
    assert problems == []
    spec = CompileConfig.model_validate({"optimizer": entry, "loss": "mse"}).optimizer
    opt = make_optimizer(spec)
    assert type(opt).__name__ == serialized["class_name"]
    exported = keras_optimizer(opt, problems.append)
    assert problems == []
    _same(exported, serialized)
    # what was imported computes Keras's numbers
    calls = META["optimizers"][case]["calls"]
    np.testing.assert_allclose(run(opt, calls, packed=True),
                               ARRAYS["weights"][CASES.index(case)], rtol=2e-5, atol=2e-6)


def test_fit_with_loss_scaling_accumulation_and_ema_equals_keras():
    """``Model.fit`` (SGD: linear in the gradient) scales the gradients by loss_scale_factor
    (as Keras scales the loss), accumulates two batches per update, and ends with the EMA
    weights, as Keras's ``fit``."""
    from kconf.api import build_model

    config = {"name": "ema", "seed": 0,
              "model": {"sequential": [{"Dense": {"units": 4, "activation": "relu",
                                                  "input_dim": 3}},
                                       {"Dense": {"units": 2}}]},
              "compile": {"optimizer": {"SGD": META["model_optimizer"]}, "loss": "mse"},
              "data": {"train": {"random": {"samples": 8, "x": [3], "y": [2]}}},
              "fit": {"epochs": 3, "batch_size": 4}}
    model = build_model(config)
    flat = ARRAYS["model_init"]
    shapes = [w.shape for w in model.get_weights()]
    weights, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        weights.append(flat[start:start + size].reshape(shape))
        start += size
    model.set_weights(weights)
    model.fit(ARRAYS["model_x"], ARRAYS["model_y"], batch_size=4, epochs=3, shuffle=False)
    final = np.concatenate([w.reshape(-1) for w in model.get_weights()])
    np.testing.assert_allclose(final, ARRAYS["model_final"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(final, flat, atol=1e-3)  # it trained
