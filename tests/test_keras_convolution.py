"""The convolution layers against Keras 3's numbers, and the arguments kconf refuses.

tests/fixtures/layers/make_convolution.py made the fixtures with Keras 3.15 + JAX: for each
case, an input, the layer's weights (Keras's order) and Keras's output. Here each case's
kconf layer, built from the same YAML arguments and given the same weights, must give the
same output in float32 (the layers have no training-mode difference; training is checked to
give the same numbers too).
"""
from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kconf.config import load_config
from kconf.errors import ConfigError
from kconf.keras_io.layers import layer_args
from tests.layer_test import make_layer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "layers"


def _cases():
    """(case, input, weights, Keras's output) of every fixture case."""
    meta = json.loads((FIXTURES / "convolution.json").read_text())
    with np.load(FIXTURES / "convolution.npz") as data:
        inputs, outputs = data["inputs"], data["outputs"]
    out, at_in, at_out = [], 0, 0
    for case in meta["cases"]:
        *in_shapes, y_shape = case["shapes"]
        arrays = []
        for shape in in_shapes:
            size = math.prod(shape)
            arrays.append(inputs[at_in:at_in + size].reshape(shape))
            at_in += size
        size = math.prod(y_shape)
        y = outputs[at_out:at_out + size].reshape(y_shape)
        at_out += size
        out.append(pytest.param(case, arrays[0], arrays[1:], y, id=case["id"]))
    assert at_in == inputs.size and at_out == outputs.size
    return out


CASES = _cases()


def test_the_fixtures_cover_every_convolution_layer():
    names = {param.values[0]["class_name"] for param in CASES}
    assert names == {"Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
                     "SeparableConv1D", "SeparableConv2D", "Conv1DTranspose",
                     "Conv2DTranspose"}


@pytest.mark.parametrize("case, x, weights, expected", CASES)
@pytest.mark.parametrize("training", [False, True])
def test_equals_keras(case, x, weights, expected, training):
    layer = make_layer(case["class_name"], case["args"])
    layer.build((None, *x.shape[1:]), np.random.default_rng(0), dtype=np.float32)
    layer.set_weights(weights)
    y, _ = layer.forward(x, training=training)
    assert y.dtype == np.float32
    assert y.shape == expected.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def _one_error(tmp_path, layer: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(f"""\
        model:
          sequential:
            - {layer}
        compile: {{optimizer: sgd, loss: mse}}
        data:
          train: {{random: {{samples: 8, x: [6, 6, 2], y: [1]}}}}
        """), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = [p.format() for p in info.value.problems]
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize("layer, at, message", [
    ("Conv2D: {filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}",
     "Conv2D.dilation_rate", "strides > 1 and dilation_rate > 1 cannot be combined"),
    ("Conv2D: {filters: 3, kernel_size: 3, groups: 2}", "Conv2D.groups",
     "filters (3) must be a multiple of groups (2)"),
    ("Conv2D: {filters: 2, kernel_size: 3, padding: causal}", "Conv2D.padding", "causal"),
    ("Conv1D: {filters: 2, kernel_size: [3, 3]}", "Conv1D.kernel_size",
     "a list of 1 positive integer, got [3, 3]"),
    ("Conv3D: {filters: 2, kernel_size: [3, 3]}", "Conv3D.kernel_size",
     "a list of 3 positive integers"),
    ("Conv2DTranspose: {filters: 2, kernel_size: 3, strides: 2, output_padding: 2}",
     "Conv2DTranspose.output_padding", "each output_padding must be less than its stride"),
    ("Conv1DTranspose: {filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}",
     "Conv1DTranspose.dilation_rate", "cannot be combined"),
    ("DepthwiseConv2D: {kernel_size: 3, depth_multiplier: 0}",
     "DepthwiseConv2D.depth_multiplier", ""),
])
def test_refused_arguments_are_located(tmp_path, layer, at, message):
    problem = _one_error(tmp_path, layer)
    assert "c.yaml:3:" in problem and f"model.sequential[0].{at}:" in problem, problem
    assert message in problem


def test_channels_in_not_a_multiple_of_groups_is_a_shape_error():
    layer = make_layer("Conv2D", {"filters": 4, "kernel_size": 1, "groups": 2})
    with pytest.raises(Exception, match="3 channels are not a multiple of groups"):
        layer.compute_output_shape((None, 5, 5, 3))


def _imported(class_name, config):
    """(kconf arguments, [(key, message)] reported) of a Keras layer config."""
    reported = []
    args = layer_args(class_name, config, 3, lambda key, message: reported.append((key,
                                                                                   message)))
    return args, reported


@pytest.mark.parametrize("class_name, config, key", [
    ("Conv2D", {"filters": 2, "kernel_size": [3, 3], "data_format": "channels_first"},
     "data_format"),
    ("DepthwiseConv2D", {"kernel_size": [3, 3], "depthwise_regularizer": {
        "class_name": "L2", "config": {"l3": 0.1}}}, "depthwise_regularizer"),
    ("SeparableConv2D", {"filters": 2, "kernel_size": [3, 3],
                         "pointwise_constraint": {"class_name": "RadialConstraint"}},
     "pointwise_constraint"),
])
def test_keras_import_lists_what_kconf_refuses(class_name, config, key):
    _, reported = _imported(class_name, config)
    assert [k for k, _ in reported] == [key]


def test_keras_import_reads_causal_dilation_and_groups():
    args, reported = _imported("Conv1D", {"filters": 4, "kernel_size": [3], "strides": [1],
                                          "padding": "causal", "dilation_rate": [2],
                                          "groups": 2})
    assert not reported
    assert args == {"filters": 4, "kernel_size": [3], "padding": "causal",
                    "dilation_rate": [2], "groups": 2}
