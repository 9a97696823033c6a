"""float32 end to end: one training step of every config in configs/, instrumented so that any
float64 array a layer, a loss or the optimizer produces fails the test at the layer that made it.

Every layer's ``forward`` (nested models' layers and TimeDistributed's inner layer included) is
wrapped: its outputs, the ``dx`` its ``backward`` returns and every entry of its ``grads`` after
that backward must be float32 (integer arrays pass: an Input of word indices stays int). The
losses' values and gradients are checked the same way, and after the optimizer's step every
weight and every optimizer slot must still be float32.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kconf
from kconf.data.sources import load_splits

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml")
                 if not p.name.startswith("sweep_"))  # sweep files: tests/test_sweep*.py
SAMPLES = 3  # one small batch: enough to run every layer, small enough for vgg's 100x100 images


def all_layers(layers):
    """Each layer once, with the layers inside nested models and wrappers, depth first."""
    seen: list = []

    def visit(layer):
        if any(layer is s for s in seen):
            return
        seen.append(layer)
        inner_graph = getattr(layer, "graph", None)
        for inner in (inner_graph.layers if inner_graph is not None else []):
            visit(inner)
        if getattr(layer, "layer", None) is not None:  # TimeDistributed
            visit(layer.layer)

    for layer in layers:
        visit(layer)
    return seen


def float64_arrays(value, where: str) -> list[str]:
    """Where ``value`` (an array, a list of them or None) holds a non-float32 float array."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in float64_arrays(v, f"{where}[{i}]")]
    dtype = getattr(value, "dtype", None)  # also sparse gradients that only carry a dtype
    dtype = np.asarray(value).dtype if dtype is None else np.dtype(dtype)
    if dtype.kind == "f" and dtype != np.float32:
        return [f"{where} is {dtype}"]
    if dtype.kind not in "fiub":
        return [f"{where} is {dtype}"]
    return []


def instrument(monkeypatch, model, problems: list[str]) -> list:
    """Wrap every layer's forward, backward and every loss to record non-float32 arrays.

    Returns the list the wrapped forwards append their layer to, call by call.
    """
    called: list = []
    for layer in all_layers(model.graph.layers):
        original = layer.forward

        def forward(x, training=False, rng=None, _layer=layer, _original=original, **options):
            called.append(_layer)  # options: a call's keyword options (use_causal_mask)
            y, backward = _original(x, training=training, rng=rng, **options)
            name = f"{type(_layer).__name__} {_layer.name!r}"
            problems.extend(float64_arrays(y, f"{name} output"))

            def checked_backward(dy, **kwargs):  # kwargs: need_dx
                dx = backward(dy, **kwargs)
                problems.extend(float64_arrays(dx, f"{name} dx"))
                for key, grad in _layer.grads.items():
                    problems.extend(float64_arrays(grad, f"{name} grads[{key!r}]"))
                return dx

            return y, checked_backward

        monkeypatch.setattr(layer, "forward", forward)

    def checked_loss(fn, index):
        def loss(y_true, y_pred):
            value, backward = fn(y_true, y_pred)
            problems.extend(float64_arrays(value, f"loss {index} value"))

            def checked_backward(weight):
                dout = backward(weight)
                problems.extend(float64_arrays(dout, f"loss {index} gradient"))
                return dout

            return value, checked_backward

        return loss

    monkeypatch.setattr(model, "loss_fns",
                        [checked_loss(fn, i) for i, fn in enumerate(model.loss_fns)])
    return called


def first(data, n: int = SAMPLES):
    """The first ``n`` samples of one array, a list of them or a dict of them (files' data)."""
    if isinstance(data, dict):
        return {k: v[:n] for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [v[:n] for v in data]
    return data[:n]


def small_config(path: Path):
    """The config with SAMPLES random training samples in one batch."""
    cfg = kconf.load_config(path)
    overrides = {"fit.batch_size": SAMPLES, "fit.epochs": 1}
    if cfg.data.train is not None and cfg.data.train.kind == "random":
        overrides["data.train.random.samples"] = SAMPLES
    return kconf.load_config(path, overrides=overrides)


# What the configs leave out: GRU, SimpleRNN, the other merges, strided 'same' convolution and
# overlapping 'same' pooling, more activations, the other losses and optimizers.
EXTRA = {
    "recurrent": {
        "name": "recurrent", "seed": 0,
        "model": {"sequential": [
            {"GRU": {"units": 5, "return_sequences": True, "input_shape": [6, 4]}},
            {"SimpleRNN": {"units": 4, "activation": "selu"}},
            {"Dense": {"units": 3, "activation": "softmax"}},
        ]},
        "compile": {"optimizer": {"Adam": {"lr": 0.01}},
                    "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "data": {"train": {"random": {"samples": SAMPLES, "x": [6, 4], "classes": 3}}},
    },
    "images": {
        "name": "images", "seed": 0,
        "model": {"sequential": [
            {"Conv2D": {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
                        "activation": "elu", "input_shape": [9, 9, 2]}},
            {"MaxPooling2D": {"pool_size": 3, "strides": 2, "padding": "same"}},
            {"Conv2D": {"filters": 2, "kernel_size": [2, 1], "activation": "gelu"}},
            {"Flatten": {}},
            {"Activation": {"activation": "softplus"}},
            {"Dense": {"units": 1, "activation": "swish"}},
        ]},
        "compile": {"optimizer": {"SGD": {"lr": 0.01, "momentum": 0.9, "nesterov": True}},
                    "loss": "mae", "metrics": ["mse"]},
        "data": {"train": {"random": {"samples": SAMPLES, "x": [9, 9, 2], "y": [1]}}},
    },
    "merges": {
        "name": "merges", "seed": 0,
        "model": {"functional": {
            "inputs": {"a": {"shape": [4]}, "b": {"shape": [4]}},
            "layers": {"hidden": {"Dense": {"units": 4, "activation": "hard_sigmoid"}},
                       "out": {"Dense": {"units": 2, "activation": "sigmoid"}}},
            "graph": ["h = hidden(a)", "s = subtract(h, b)", "m = multiply(s, a)",
                      "v = average(m, b)", "x = maximum(v, h)", "n = minimum(x, a)",
                      "d = dot(n, b, axes=1, normalize=True)", "c = concatenate(n, d)",
                      "o = out(c)"],
            "outputs": ["o"]}},
        "compile": {"optimizer": "rmsprop", "loss": "binary_crossentropy",
                    "metrics": ["accuracy"]},
        "data": {"train": {"random": {"samples": SAMPLES, "x": {"a": [4], "b": [4]},
                                      "y": [2]}}},
    },
}


@pytest.mark.parametrize("config", [*CONFIGS, *EXTRA],
                         ids=[p.stem for p in CONFIGS] + list(EXTRA))
def test_one_training_step_stays_float32(config, monkeypatch):
    cfg = small_config(config) if isinstance(config, Path) else kconf.load_config(EXTRA[config])
    model = kconf.build_model(cfg)
    train = load_splits(cfg)["train"]
    problems: list[str] = []
    called = instrument(monkeypatch, model, problems)

    logs = model.train_on_batch(first(train.x), first(train.y), return_dict=True)

    assert all(np.isfinite(v) for v in logs.values())
    missed = [l.name for l in all_layers(model.graph.layers)
              if l.n_inputs != 0 and not any(l is c for c in called)]
    assert not missed, f"the instrumentation missed {missed}"  # Inputs are never called
    for name, w in model.named_weights().items():
        problems.extend(float64_arrays(w, f"weight {name} after the step"))
    for key, slot in model.optimizer.get_state().items():
        if key != "iterations":
            problems.extend(float64_arrays(slot, f"optimizer slot {key!r}"))
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_the_instrumentation_catches_a_float64_layer(monkeypatch):
    """A layer that upcasts (here: Dense's forward returning float64) is reported."""
    cfg = small_config(ROOT / "configs" / "mlp_softmax.yaml")
    model = kconf.build_model(cfg)
    train = load_splits(cfg)["train"]
    dense = model.get_layer("dense_1")
    original = dense.forward

    def upcasting(x, training=False, rng=None):
        y, backward = original(x, training=training, rng=rng)
        return y.astype(np.float64), backward

    monkeypatch.setattr(dense, "forward", upcasting)
    problems: list[str] = []
    instrument(monkeypatch, model, problems)
    model.train_on_batch(train.x, train.y)
    assert "Dense 'dense_1' output is float64" in problems
