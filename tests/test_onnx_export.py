"""ONNX export: every example config and every layer case, run in onnxruntime, gives kconf's
``predict`` (atol 1e-5); masks, preprocessing layers, run folders, the CLI and its errors."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app
from kconf.errors import ConfigError
from kconf.onnx_io import DEFAULT_OPSET, onnx_model
from tests.layer_cases import CASES
from tests.onnx_support import (assert_matches, case_model, compare, config_model, model_inputs,
                                run_onnx)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("sweep_"))
LAYER_CASES = [(name, case) for name, cases in CASES.items() if name != "InputLayer"
               for case in cases]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_matches_predict(config):
    model = build_model(config)
    compare(model, model_inputs(model, n=2))


@pytest.mark.parametrize("name,case", LAYER_CASES, ids=[c.id for _, c in LAYER_CASES])
def test_every_layer_case_matches_predict(name, case):
    model, feeds = case_model(name, case)
    compare(model, feeds)


def test_every_registered_layer_has_a_converter():
    from kconf.engine.layers import REGISTRY
    from kconf.onnx_io.table import CONVERTERS

    walked = {"InputLayer", "TimeDistributed"}  # the exporter's own walk
    assert set(REGISTRY) - walked - set(CONVERTERS) == set()
    assert set(CONVERTERS) <= set(REGISTRY)


def test_inputs_outputs_named_as_in_the_config_and_batch_dynamic():
    model = build_model(ROOT / "configs" / "twitter_multi_io.yaml")
    proto = onnx_model(model)
    assert [i.name for i in proto.graph.input] == [t.name for t in model.graph.inputs]
    assert [o.name for o in proto.graph.output] == [t.name for t in model.graph.outputs]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert proto.opset_import[0].version == DEFAULT_OPSET
    for n in (1, 5):
        compare(model, model_inputs(model, n=n, seed=n))


# --- masks --------------------------------------------------------------------------------------

MASKED = """\
name: masked
seed: 3
model:
  functional:
    inputs:
      tokens: {shape: [6], dtype: int32}
      series: {shape: [5, 3]}
    layers:
      embed: {Embedding: {input_dim: 5, output_dim: 4, mask_zero: true}}
      lstm: {LSTM: {units: 3, return_sequences: true}}
      bi: {Bidirectional: {layer: {GRU: {units: 2, return_sequences: true}}, merge_mode: sum}}
      mha: {MultiHeadAttention: {num_heads: 2, key_dim: 2}}
      att: {Attention: {}}
      both: {Concatenate: {}}
      pool: {GlobalAveragePooling1D: {}}
      masking: {Masking: {mask_value: 0.0}}
      rnn: {SimpleRNN: {units: 2, go_backwards: true}}
      gru: {GRU: {units: 2, return_sequences: true, zero_output_for_mask: true, reset_after: false}}
      pool2: {GlobalAveragePooling1D: {}}
      head: {Dense: {units: 2}}
    graph:
      - e = embed(tokens)
      - s = lstm(e)
      - a = mha(query=s, value=e)
      - d = att([a, s])
      - c = both([d, e])
      - p = pool(c)
      - m = masking(series)
      - r = rnn(m)
      - g = gru(m)
      - q = pool2(g)
      - y = head(p)
      - o = bi(series)
    outputs: [y, r, q, o]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 4, x: {tokens: [6], series: [5, 3]}, y: {y: [2], r: [2], q: [2], o: [5, 2]}}}
"""


def test_masks_are_exported(tmp_path):
    model, proto = config_model(tmp_path, MASKED)
    feeds = model_inputs(model, n=6, seed=1, high=5)
    feeds["tokens"][0] = [3, 1, 0, 0, 0, 0]  # padding after, and zeros inside below
    feeds["tokens"][1] = [0, 2, 0, 4, 1, 0]
    feeds["series"][:, 1] = 0.0  # masked steps of the series
    feeds["series"][2, 3:] = 0.0
    assert_matches(proto, model, feeds)


# --- preprocessing and run folders -------------------------------------------------------------


def test_leading_preprocessing_layers_per_input():
    model = build_model(ROOT / "configs" / "regression_mse.yaml")
    name = model.graph.inputs[0].name
    features = model.graph.inputs[0].shape[-1]
    mean = np.linspace(-1, 1, features).tolist()
    variance = np.linspace(0.5, 2, features).tolist()
    specs = {name: [{"Rescaling": {"scale": 0.5, "offset": 1.0}},
                    {"Normalization": {"mean": mean, "variance": variance}}]}
    feeds = model_inputs(model, n=3)
    got = run_onnx(onnx_model(model, preprocessing=specs), feeds)[0]
    x = feeds[name] * np.float32(0.5) + np.float32(1.0)
    x = (x - np.float32(mean)) / np.sqrt(np.float32(variance))
    np.testing.assert_allclose(got, model.predict(x.astype(np.float32)), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=f"preprocessing for nope: the model's inputs are {name}"):
        onnx_model(model, preprocessing={"nope": specs[name]})
    overall = {name: [{"Normalization": {"axis": None, "mean": 0.5, "variance": 4.0}}]}
    got = run_onnx(onnx_model(model, preprocessing=overall), feeds)[0]
    x = (feeds[name] - np.float32(0.5)) / np.float32(2.0)
    np.testing.assert_allclose(got, model.predict(x), atol=1e-5, rtol=0)


def _trained_run(tmp_path, config="regression_mse.yaml"):
    result = invoke("train", ROOT / "configs" / config, "--epochs", "1", "--output-dir",
                    tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (run,) = [p for p in (tmp_path / "runs").glob("*/*") if p.is_dir()]
    return run


def test_cli_exports_a_run_with_its_trained_weights_and_preprocessing(tmp_path, monkeypatch):
    from kconf.onnx_io import run as onnx_run
    from kconf.train.trained import read_weight_file, set_named_weights

    run = _trained_run(tmp_path)
    result = invoke("export-onnx", run, "-o", tmp_path / "out" / "model.onnx")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    import onnx

    proto = onnx.load(tmp_path / "out" / "model.onnx")
    model = build_model(run / "resolved.yaml")
    feeds = model_inputs(model, n=4)
    (name,) = feeds
    initial = model.predict(feeds[name])
    set_named_weights(model, read_weight_file(run / "weights.npz"), "weights.npz")
    got = run_onnx(proto, feeds)[0]
    np.testing.assert_allclose(got, model.predict(feeds[name]), atol=1e-5, rtol=0)
    assert not np.allclose(got, initial, atol=1e-5)  # the trained weights, not the seed's
    result = invoke("export-onnx", ROOT / "configs" / "regression_mse.yaml", "-o",
                    tmp_path / "w.onnx", "--weights", run)  # a config with a run's weights
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(run_onnx(onnx.load(tmp_path / "w.onnx"), feeds)[0], got)

    # the hook the run's saved preprocessing goes through: it is put in front of the input
    monkeypatch.setattr(onnx_run, "run_preprocessing",
                        lambda folder: ({name: [{"Rescaling": {"scale": 2.0}}]}, {}))
    assert invoke("export-onnx", run, "-o", tmp_path / "pre.onnx").exit_code == 0
    scaled = run_onnx(onnx.load(tmp_path / "pre.onnx"), feeds)[0]
    np.testing.assert_allclose(scaled, model.predict(feeds[name] * 2), atol=1e-5, rtol=0)


def test_cli_exports_a_config_with_its_initial_weights(tmp_path):
    config = ROOT / "configs" / "text_cnn.yaml"
    result = invoke("export-onnx", config, "-o", tmp_path / "m.onnx", "--opset", "18")
    assert result.exit_code == 0, result.output
    import onnx

    proto = onnx.load(tmp_path / "m.onnx")
    assert proto.opset_import[0].version == 18
    model = build_model(config)
    assert_matches(proto, model, model_inputs(model, n=2))


# --- errors --------------------------------------------------------------------------------------

UNEXPRESSIBLE = """\
name: open_ended
seed: 0
model:
  functional:
    inputs:
      seq: {shape: [null, 3]}
      img: {shape: [null, null, 2]}
    layers:
      lstm: {LSTM: {units: 2}}
      up: {DepthwiseConv2D: {kernel_size: 2, dilation_rate: 3, padding: same}}
      dilated: {Conv2D: {filters: 1, kernel_size: 3, dilation_rate: 2, padding: same}}
      pool: {GlobalMaxPooling2D: {}}
      both: {Concatenate: {}}
    graph:
      - h = lstm(seq)
      - u = up(img)
      - v = dilated(u)
      - p = pool(v)
      - y = both([h, p])
    outputs: [y]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 4, x: {seq: [4, 3], img: [4, 4, 2]}, y: [3]}}
"""


def test_layers_that_cannot_be_expressed_are_all_listed(tmp_path):
    path = tmp_path / "open.yaml"
    path.write_text(UNEXPRESSIBLE)
    out = tmp_path / "never.onnx"
    result = invoke("export-onnx", path, "-o", out)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == f"2 errors in {path}"
    assert lines[0].startswith(f"{path}:16:9: model.functional.graph[1]: ")
    assert lines[0].endswith("layer 'up' (DepthwiseConv2D) cannot be exported to ONNX: 'same' "
                             "padding with a dilation needs known spatial sizes (onnxruntime "
                             "has no SAME_UPPER with dilations)")
    assert lines[1].startswith(f"{path}:17:9: model.functional.graph[2]: ")
    assert lines[1].endswith("layer 'dilated' (Conv2D) cannot be exported to ONNX: 'same' "
                             "padding with a dilation needs known spatial sizes (onnxruntime "
                             "has no SAME_UPPER with dilations)")
    assert "Traceback" not in result.output and not out.exists()


STEPS = """\
name: any_steps
seed: 0
model:
  sequential:
    - Masking: {mask_value: 0.0, input_shape: [null, 3]}
    - GRU: {units: 3, return_sequences: true, go_backwards: true}
    - LSTM: {units: 2}
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 4, x: [4, 3], y: [2]}}
"""


OPEN_STEPS = """\
name: open_steps
seed: 0
model:
  functional:
    inputs:
      seq: {shape: [null, 4]}
    layers:
      mha: {MultiHeadAttention: {num_heads: 2, key_dim: 3}}
      att: {Attention: {use_scale: true}}
      each: {TimeDistributed: {layer: {Dense: {units: 3, activation: tanh}}}}
      pool: {GlobalAveragePooling1D: {}}
    graph:
      - a = mha(query=seq, value=seq, use_causal_mask=true)
      - b = att([a, a], use_causal_mask=true)
      - c = each(b)
      - y = pool(c)
    outputs: [y]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 4, x: [5, 4], y: [3]}}
"""


def test_causal_attention_and_time_distributed_on_any_number_of_steps(tmp_path):
    model, proto = config_model(tmp_path, OPEN_STEPS)
    for steps in (1, 6):
        x = np.random.default_rng(steps).standard_normal((2, steps, 4)).astype(np.float32)
        assert_matches(proto, model, {"seq": x})


def test_recurrent_layers_take_any_number_of_steps(tmp_path):
    model, proto = config_model(tmp_path, STEPS)
    (name,) = [t.name for t in model.graph.inputs]
    for steps in (1, 2, 7):
        x = np.random.default_rng(steps).standard_normal((3, steps, 3)).astype(np.float32)
        x[0, -1] = 0.0  # a masked step
        assert_matches(proto, model, {name: x})


IMAGES = """\
name: any_size
seed: 0
model:
  functional:
    inputs:
      img: {shape: [null, null, 2]}
      seq: {shape: [null, 2]}
    layers:
      conv: {Conv2D: {filters: 3, kernel_size: 3, strides: 2, padding: same}}
      dilated: {DepthwiseConv2D: {kernel_size: 3, depth_multiplier: 2, padding: same}}
      maxp: {MaxPooling2D: {pool_size: 3, strides: 2, padding: same}}
      avgp: {AveragePooling2D: {pool_size: 2, padding: same}}
      gap: {GlobalAveragePooling2D: {}}
      twice: {UpSampling2D: {size: [2, 3]}}
      crop: {Cropping2D: {cropping: [[1, 0], [0, 2]]}}
      up: {Conv2DTranspose: {filters: 2, kernel_size: 3, strides: 2, padding: same}}
      up_valid: {Conv2DTranspose: {filters: 2, kernel_size: 2, strides: 3}}
      back: {Conv1DTranspose: {filters: 2, kernel_size: 3, strides: 2, output_padding: 1}}
      causal: {Conv1D: {filters: 2, kernel_size: 3, padding: causal, dilation_rate: 2}}
      longer: {UpSampling1D: {size: 2}}
      gmp: {GlobalMaxPooling1D: {}}
      both: {Concatenate: {}}
    graph:
      - a = conv(img)
      - b = dilated(a)
      - c = maxp(b)
      - d = avgp(c)
      - d2 = twice(d)
      - d3 = crop(d2)
      - d4 = up(d3)
      - d5 = up_valid(d4)
      - e = gap(d5)
      - f = causal(seq)
      - f1 = back(f)
      - f2 = longer(f1)
      - g = gmp(f2)
      - y = both([e, g])
    outputs: [y]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 4, x: {img: [7, 5, 2], seq: [5, 2]}, y: [5]}}
"""


def test_same_and_causal_padding_on_any_size(tmp_path):
    model, proto = config_model(tmp_path, IMAGES)
    for h, w, t in ((7, 5, 4), (4, 9, 9)):
        rng = np.random.default_rng(h)
        img = rng.standard_normal((2, h, w, 2)).astype(np.float32)
        seq = rng.standard_normal((2, t, 2)).astype(np.float32)
        assert_matches(proto, model, {"img": img, "seq": seq})


def test_export_onnx_from_python(tmp_path):
    import onnx

    from kconf.onnx_io import export_onnx

    model = build_model(ROOT / "configs" / "digits_cnn.yaml")
    path = export_onnx(model, tmp_path / "cnn.onnx", opset=20)
    proto = onnx.load(path)
    assert proto.opset_import[0].version == 20
    assert_matches(proto, model, model_inputs(model, n=2))


def test_opset_out_of_range(tmp_path):
    result = invoke("export-onnx", ROOT / "configs" / "mlp_binary.yaml", "-o",
                    tmp_path / "m.onnx", "--opset", "7")
    assert result.exit_code == 2
    assert "--opset: must be between 18 and" in result.output and "got 7" in result.output


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    result = invoke("export-onnx", ROOT / "configs" / "mlp_binary.yaml", "-o",
                    tmp_path / "m.onnx")
    assert result.exit_code == 2
    assert "pip install 'kconf[onnx]'" in result.output
    with pytest.raises(ConfigError, match=r"kconf\[onnx\]"):
        onnx_model(build_model(ROOT / "configs" / "mlp_binary.yaml"))
