"""The activation family in configs and in training: refused arguments are located errors,
ActivityRegularization's penalty is part of the loss that fit and evaluate report (and of its
gradient), the random layers act only in training, and CustomScaleLayer in a graph."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import kconf
from kconf.config import load_config
from kconf.errors import ConfigError

TAIL = """\
compile:
  optimizer: {SGD: {learning_rate: 0.1}}
  loss: mse
data:
  train: {random: {samples: 8, x: [4], y: [4]}}
"""


def _errors(tmp_path: Path, layer: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(f"model:\n  sequential:\n    - Dense: {{units: 4, input_dim: 4}}\n"
                    f"    - {layer}\n{TAIL}")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [line[len(str(path)) + 1:] for line in str(info.value).splitlines()
            if line.startswith(f"{path}:")]


@pytest.mark.parametrize("layer, message", [
    ("ReLU: {max_value: -1}", "model.sequential[1].ReLU.max_value: must be"),
    ("LeakyReLU: {negative_slope: -0.1}", "model.sequential[1].LeakyReLU.negative_slope: "
                                         "must be"),
    ("Softmax: {axis: [1, 2]}", "model.sequential[1].Softmax.axis"),
    ("Softmax: {axis: 0}", "model.sequential[1].Softmax.axis: axis 0 is the batch axis"),
    ("GaussianNoise: {stddev: 2}", "model.sequential[1].GaussianNoise.stddev: must be"),
    ("AlphaDropout: {rate: 1.0}", "model.sequential[1].AlphaDropout.rate: must be"),
    ("Rescaling: {scale: [1, 2]}", "model.sequential[1].Rescaling.scale"),
    ("Rescaling: {offset: 1}", "model.sequential[1].Rescaling: missing required key 'scale'"),
    ("LayerScale: {init_values: 0.1}", "model.sequential[1].LayerScale: missing required key "
                                       "'projection_dim'"),
])
def test_bad_arguments_are_located_errors(tmp_path, layer, message):
    errors = _errors(tmp_path, layer)
    assert len(errors) == 1 and errors[0].startswith("4:"), errors
    assert message in errors[0], errors


def _model(layers: str, samples: int = 8):
    path_text = (f"seed: 0\nmodel:\n  sequential:\n    - Dense: {{units: 4, input_dim: 4}}\n"
                 f"{layers}{TAIL}")
    return kconf.build_model(yaml.safe_load(path_text))


def test_activity_regularization_is_part_of_the_loss_and_its_gradient():
    model = _model("    - ActivityRegularization: {l1: 0.01, l2: 0.1}\n")
    plain = _model("")
    plain.set_weights(model.get_weights())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.standard_normal((6, 4)).astype(np.float32)
    out = model.predict(x)
    np.testing.assert_array_equal(out, plain.predict(x))
    penalty = (0.01 * np.abs(out).sum() + 0.1 * (out * out).sum()) / len(x)
    mse = float(((out - y) ** 2).mean())
    assert model.evaluate(x, y, batch_size=6) == pytest.approx(mse + penalty, rel=1e-5)
    assert plain.evaluate(x, y, batch_size=6) == pytest.approx(mse, rel=1e-5)
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(mse + penalty, rel=1e-5)
    # the gradient of the penalty moved the weights differently than mse alone would
    plain.train_on_batch(x, y)
    assert not np.allclose(model.get_weights()[0], plain.get_weights()[0])


def test_activity_regularization_gradient_matches_finite_differences():
    model = _model("    - ActivityRegularization: {l1: 0.05, l2: 0.2}\n")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = rng.standard_normal((5, 4)).astype(np.float32)
    w0 = [w.copy() for w in model.get_weights()]
    model.train_on_batch(x, y)
    step = [a - b for a, b in zip(w0, model.get_weights())]  # SGD: lr · gradient
    kernel = w0[0].astype(np.float64)
    eps, i, j = 1e-3, 1, 2

    def loss_at(delta):
        k = kernel.copy()
        k[i, j] += delta
        out = x @ k + w0[1]
        return ((out - y) ** 2).mean() + (0.05 * np.abs(out).sum()
                                         + 0.2 * (out * out).sum()) / len(x)

    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert step[0][i, j] / 0.1 == pytest.approx(numeric, rel=1e-3)


def test_random_layers_are_identity_in_predict_and_change_training():
    model = _model("    - GaussianNoise: {stddev: 0.5}\n    - AlphaDropout: {rate: 0.3}\n")
    plain = _model("")
    plain.set_weights(model.get_weights())
    x = np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), plain.predict(x))
    y = np.zeros((6, 4), np.float32)
    assert model.train_on_batch(x, y) != pytest.approx(plain.train_on_batch(x, y))


def test_custom_scale_layer_in_a_functional_graph():
    config = yaml.safe_load("""
model:
  functional:
    inputs: {x: {shape: [4]}}
    layers:
      branch: {Dense: {units: 4}}
      residual: {CustomScaleLayer: {scale: 0.5}}
    graph:
      - r = branch(x)
      - y = residual([x, r])
    outputs: [y]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 8, x: [4], y: [4]}}
""")
    model = kconf.build_model(config)
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(model.predict(x), x + 0.5 * (x @ kernel + bias), rtol=1e-6)


def test_a_shared_model_with_activity_regularization_adds_one_penalty_per_call():
    # the two calls are not stacked into one batch: each penalty divides by its own batch
    config = yaml.safe_load("""
models:
  encoder:
    sequential:
      - Dense: {units: 3, input_dim: 4}
      - ActivityRegularization: {l2: 0.5}
model:
  functional:
    inputs: {a: {shape: [4]}, b: {shape: [4]}}
    layers:
      merge: {Add: {}}
    graph:
      - ea = encoder(a)
      - eb = encoder(b)
      - y = merge(ea, eb)
    outputs: [y]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 8, x: {a: [4], b: [4]}, y: [3]}}
""")
    model = kconf.build_model(config)
    rng = np.random.default_rng(4)
    a, b = (rng.standard_normal((5, 4)).astype(np.float32) for _ in range(2))
    kernel, bias = model.get_weights()
    ea, eb = a @ kernel + bias, b @ kernel + bias
    y = np.zeros((5, 3), np.float32)
    mse = float(((ea + eb) ** 2).mean())
    penalty = 0.5 * ((ea * ea).sum() + (eb * eb).sum()) / 5
    assert model.evaluate([a, b], y, batch_size=5) == pytest.approx(mse + penalty, rel=1e-5)
