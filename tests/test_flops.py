"""FLOP counts: unknown sizes, the vgg config's total (the issue's 406 GFLOP per epoch of 320
images), shared layers counted per call, TimeDistributed and nested models, and the summary's
FLOPs column. Each registered layer's formula against hand-computed numbers is the standard
layer test's ``flops`` check (``tests/layer_cases.py``).

Convention (``Layer.flops``): forward, one sample, 2 FLOPs per multiply-add of the matrix
products; elementwise work counts 0; an unknown size makes the count 0.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from kconf.api import model_from_config
from kconf.engine.layers import (
    LSTM,
    Concatenate,
    Conv2D,
    Dense,
    InputLayer,
    TimeDistributed,
)
from kconf.graph.ir import Graph, call_layer
from kconf.graph.ir import graph_flops
from kconf.graph.model_layer import ModelLayer
from kconf.model import Model
from kconf.report.summary import format_flops, render_text, summary_renderables

ROOT = Path(__file__).resolve().parents[1]

# Each registered layer's count on known shapes is a check of the standard layer test (the
# FLOPs of each case of tests/layer_cases.py); here: an unknown size makes the count 0.
UNKNOWN = [
    (lambda: Dense(3), (None, None, 8)),  # unknown length
    (lambda: LSTM(4), (None, None, 5)),  # unknown number of steps
    (lambda: TimeDistributed(Dense(3)), (None, None, 4)),
    (lambda: Conv2D(3, 3), (None, None, 5, 2)),
]


@pytest.mark.parametrize("make, shape", UNKNOWN, ids=[str(u[1]) + str(i)
                                                      for i, u in enumerate(UNKNOWN)])
def test_an_unknown_size_gives_no_count(make, shape):
    flops = make().flops(shape)
    assert isinstance(flops, int) and flops == 0


def test_known_sizes_match_the_hand_count():
    """The issue's examples: Dense 20 -> 64, and LSTM(4) over 7 steps of 5 features."""
    assert Dense(64).flops((None, 20)) == 2 * 20 * 64
    assert LSTM(4).flops((None, 7, 5)) == 2 * 7 * (5 * 16 + 4 * 16)


def test_vgg_config_matches_the_issue():
    model = model_from_config(ROOT / "configs" / "vgg.yaml")
    macs = (98 * 98 * 32 * 27 + 96 * 96 * 32 * 288 + 46 * 46 * 64 * 288 + 44 * 44 * 64 * 576
            + 30976 * 256 + 256 * 10)
    forward = graph_flops(model.graph)
    assert forward == 2 * macs == 423_071_488
    per_epoch = 3 * forward * 320
    assert round(per_epoch / 1e9) == 406  # the issue's "vgg 406 GFLOP" per epoch


def _input(name, shape):
    return call_layer(InputLayer(shape=shape, name=name), [], [name])[0]


def test_a_shared_layer_counts_once_per_call():
    a, b = _input("a", (4,)), _input("b", (4,))
    shared = Dense(3, name="shared")
    (ea,) = call_layer(shared, [a], ["ea"])
    (eb,) = call_layer(shared, [b], ["eb"])
    (merged,) = call_layer(Concatenate(name="merge"), [ea, eb], ["merged"])
    (out,) = call_layer(Dense(1, name="out"), [merged], ["y"])
    graph = Graph([a, b], [out])
    assert graph_flops(graph) == 2 * (2 * 4 * 3) + 2 * 6 * 1
    text = render_text(summary_renderables(Model(graph, name="m")))
    row = next(line for line in text.splitlines() if "shared (Dense)" in line)
    assert row.rstrip(" │").endswith(" 48")  # both calls of the layer in its row


def _encoder():
    """A small model (4 -> 3) to call like a layer: 2*4*3 = 24 FLOPs per sample."""
    t = _input("enc_in", (4,))
    (h,) = call_layer(Dense(3, activation="tanh", name="enc_dense"), [t], ["h"])
    return Graph([t], [h])


def test_a_nested_model_is_the_sum_of_its_layers_per_call():
    inner = ModelLayer(_encoder(), name="encoder")
    assert inner.flops((None, 4)) == 24
    a, b = _input("a", (4,)), _input("b", (4,))
    (ea,) = call_layer(inner, [a], ["ea"])
    (eb,) = call_layer(inner, [b], ["eb"])
    (out,) = call_layer(Dense(1, name="head"), [ea], ["y"])
    (out_b,) = call_layer(Dense(1, name="head_b"), [eb], ["yb"])
    assert graph_flops(Graph([a, b], [out, out_b])) == 2 * 24 + 2 * (2 * 3 * 1)


def test_time_distributed_nested_model_multiplies_by_steps():
    inner = ModelLayer(_encoder(), name="encoder")
    seq = _input("seq", (5, 4))
    wrapper = TimeDistributed(inner, name="td")
    (y,) = call_layer(wrapper, [seq], ["y"])
    assert wrapper.flops((None, 5, 4)) == 5 * 24
    model = Model(Graph([seq], [y]), name="m")
    assert graph_flops(model.graph) == 120
    text = render_text(summary_renderables(model, expand=True))
    assert "td (TimeDistributed)" in text and "120" in text
    assert "Forward FLOPs per sample: 120" in text


def test_summary_has_a_flops_column_and_total():
    text = render_text(summary_renderables(model_from_config(ROOT / "configs" / "vgg.yaml")))
    header = next(line for line in text.splitlines() if "Layer (type)" in line)
    assert "Param #" in header and header.rstrip(" ┃").endswith("FLOPs")
    row = next(line for line in text.splitlines() if "conv2d_1 (Conv2D)" in line)
    assert "169.9M" in row  # 2 * 96*96*32*288
    assert "Forward FLOPs per sample: 423.1M" in text
    assert "Total params: 7,998,250" in text  # Keras's line unchanged


@pytest.mark.parametrize("n, text", [(0, "0"), (999, "999"), (5120, "5.1K"),
                                     (423_071_488, "423.1M"), (1_269_214_464, "1.3G"),
                                     (406_148_628_480_000, "406.1T")])
def test_format_flops(n, text):
    assert format_flops(n) == text


def test_cli_summary_rows_are_not_wrapped_off_a_terminal():
    from typer.testing import CliRunner

    from kconf.cli import app

    result = CliRunner().invoke(app, ["summary", str(ROOT / "configs" / "vgg.yaml")])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "conv2d_1 (Conv2D)" in line)
    assert "(None, 96, 96, 32)" in row and "9,248" in row and "169.9M" in row
