"""kconf models out: ``kconf export-keras``, ``model.save_keras``, ``kconf.keras_io``.

Without Keras: the JSON written equals the Keras-written original modulo ordering and
defaults (a Keras JSON -> kconf YAML -> Keras JSON round trip), and the weight file has the
layout Keras's own has. With Keras (a subprocess, where one is installed): Keras loads every
exported archive and predicts what kconf predicts.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import kconf
from kconf.cli import app
from kconf.errors import ConfigError
from kconf.keras_io import keras_json
from tests.keras_support import (
    APP_BLOCKS,
    FIXTURES,
    KERAS3_CASES,
    imported_model,
    keras_runtime,
    model_inputs,
    reference,
    run_keras,
)

h5py = pytest.importorskip("h5py", reason="Keras weight files need h5py ('.[keras]')")
ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


# --- comparing Keras JSON modulo ordering and defaults ------------------------------------------

GLOROT = ("GlorotUniform", ())
ZEROS = ("Zeros", ())
ORTHOGONAL = ("Orthogonal", (("gain", 1.0),))
#: Keras 3's defaults (from Keras 3.15's layers), for the arguments the fixtures use.
_RNN = {"activation": "tanh", "use_bias": True, "kernel_initializer": GLOROT,
        "recurrent_initializer": ORTHOGONAL, "bias_initializer": ZEROS,
        "return_sequences": False, "return_state": False, "go_backwards": False,
        "stateful": False, "unroll": False, "zero_output_for_mask": False, "dropout": 0.0,
        "recurrent_dropout": 0.0}
KERAS_DEFAULTS = {
    "*": {"trainable": True, "dtype": "float32", "seed": None, "quantization_config": None,
          "activity_regularizer": None, "kernel_regularizer": None, "bias_regularizer": None,
          "recurrent_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
          "recurrent_constraint": None, "embeddings_regularizer": None,
          "embeddings_constraint": None},
    "InputLayer": {"sparse": False, "ragged": False, "optional": False},
    "Dense": {"activation": "linear", "use_bias": True, "kernel_initializer": GLOROT,
              "bias_initializer": ZEROS},
    "Conv2D": {"strides": [1, 1], "padding": "valid", "data_format": "channels_last",
               "dilation_rate": [1, 1], "groups": 1, "activation": "linear", "use_bias": True,
               "kernel_initializer": GLOROT, "bias_initializer": ZEROS},
    "MaxPooling2D": {"pool_size": [2, 2], "padding": "valid", "data_format": "channels_last"},
    "Flatten": {"data_format": "channels_last"},
    "Dropout": {"noise_shape": None},
    "Embedding": {"embeddings_initializer": ("RandomUniform", (("maxval", 0.05),
                                                               ("minval", -0.05))),
                  "mask_zero": False},
    "LSTM": {**_RNN, "recurrent_activation": "sigmoid", "unit_forget_bias": True},
    "GRU": {**_RNN, "recurrent_activation": "sigmoid", "reset_after": True},
    "SimpleRNN": _RNN,
    "Concatenate": {"axis": -1},
}
OPTIMIZER_DEFAULTS = {
    "*": {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
          "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
          "loss_scale_factor": None, "gradient_accumulation_steps": None},
    "SGD": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "RMSprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                "centered": False},
    "Adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
             "amsgrad": False},
}


def canonical(entry):
    """A Keras model's JSON reduced to what defines it: class names, names, non-default
    arguments, connections, compile settings (numbers compared as float32)."""
    out = {"class_name": entry["class_name"], "model": _model(entry)}
    if entry.get("compile_config"):
        model = out["model"]
        outputs = model.get("outputs") or [[model["layers"][-1]["name"], 0, 0]]
        out["compile"] = _compile(entry["compile_config"], outputs)
    return out


def _model(entry):
    config = entry["config"]
    layers = [_layer(layer) for layer in config["layers"]]
    if entry["class_name"] == "Sequential":
        return {"name": config["name"], "layers": layers}
    return {"name": config["name"], "layers": sorted(layers, key=lambda l: l["name"]),
            "inputs": _triples(config["input_layers"]),
            "outputs": _triples(config["output_layers"])}


def _triples(value):
    return [list(value)] if isinstance(value[0], str) else [list(v) for v in value]


def _layer(entry):
    cls = entry["class_name"]
    name = entry.get("name") or entry["config"].get("name")
    if cls in ("Sequential", "Functional"):
        out = {"class_name": cls, "name": name, "model": _model(entry)}
    else:
        defaults = {**KERAS_DEFAULTS["*"], **KERAS_DEFAULTS.get(cls, {})}
        args = {}
        for key, value in entry["config"].items():
            value = _value(value)
            if key == "layer":
                value = _layer(entry["config"]["layer"])
            if key in ("name", "build_config") or defaults.get(key, object()) == value:
                continue
            if cls == "MaxPooling2D" and key == "strides" and value == _value(
                    entry["config"].get("pool_size", [2, 2])):
                continue
            args[key] = value
        out = {"class_name": cls, "name": name, "config": args}
    if "inbound_nodes" in entry:
        out["calls"] = [[t["config"]["keras_history"] for t in _tensors(node["args"])]
                        for node in entry["inbound_nodes"]]
    return out


def _tensors(value):
    if isinstance(value, dict):
        return [value] if value.get("class_name") == "__keras_tensor__" else []
    return [t for item in value for t in _tensors(item)] if isinstance(value, list) else []


def _value(value):
    """Initializers as (class, args without seed), dtype policies as their name, numbers as
    float32."""
    if isinstance(value, dict) and value.get("class_name") == "DTypePolicy":
        return value["config"]["name"]
    if isinstance(value, dict) and value.get("module") == "keras.initializers":
        args = {k: v for k, v in value["config"].items()
                if k not in ("seed", "input_axes", "output_axes")}
        return (value["class_name"], tuple(sorted(args.items())))
    if isinstance(value, float):
        return float(np.float32(value))
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    return value


def _compile(config, outputs):
    names = [o[0] for o in outputs]
    opt = config["optimizer"]
    cls = opt["class_name"]
    defaults = {**OPTIMIZER_DEFAULTS["*"], **OPTIMIZER_DEFAULTS[cls]}
    args = {}
    for key, value in opt["config"].items():
        if isinstance(value, dict):  # a schedule
            value = (value["class_name"], tuple(sorted(
                (k, _value(v)) for k, v in value["config"].items() if k != "name")))
        elif key == "name" or _value(value) == _value(defaults.get(key, object())):
            continue
        args[key] = _value(value)

    def per_output(value, default):
        if isinstance(value, dict):
            return [value.get(n, default) for n in names]
        if isinstance(value, list) and len(names) > 1:
            return list(value)
        return [value if value is not None else default] * len(names)

    return {"optimizer": (cls, args), "loss": per_output(config["loss"], None),
            "loss_weights": [float(np.float32(w)) for w in per_output(config["loss_weights"],
                                                                      1.0)],
            "metrics": per_output(config.get("metrics") or None, None)}


@pytest.mark.parametrize("case", KERAS3_CASES, ids=lambda c: c.name)
def test_keras_json_to_kconf_yaml_and_back_equals_the_original(case, tmp_path):
    """Keras JSON -> ``kconf import-keras`` YAML -> ``kconf export-keras`` JSON."""
    config = tmp_path / f"{case.name}.yaml"
    result = invoke("import-keras", FIXTURES / f"{case.name}.json", "-o", config)
    assert result.exit_code == 0, result.output
    result = invoke("export-keras", config, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    original = json.loads((FIXTURES / f"{case.name}.json").read_text())
    exported = json.loads((tmp_path / "out.json").read_text())
    assert canonical(exported) == canonical(original)


def test_the_comparison_sees_a_difference():
    original = json.loads((FIXTURES / "shared_lstm.json").read_text())
    _, model = imported_model(KERAS3_CASES[3])
    model.get_layer("shared_lstm").go_backwards = True
    assert canonical(keras_json(model)) != canonical(original)


# --- the weights file and the archive ----------------------------------------------------------


def _h5_layout(source) -> dict[str, object]:
    """Every dataset (path -> array) and every vars name (path -> name), optimizer aside."""
    found = {}
    with h5py.File(source, "r") as f:
        def visit(path, obj):
            if path.startswith("optimizer"):
                return
            if hasattr(obj, "shape"):
                found[path] = np.asarray(obj)
            elif path.endswith("vars"):
                found[path] = obj.attrs.get("name")
        f.visititems(visit)
    return found


def _archive_weights(path: Path):
    import io

    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json",
                                              "model.weights.h5"]
        return io.BytesIO(archive.read("model.weights.h5"))


@pytest.mark.parametrize("case", KERAS3_CASES, ids=lambda c: c.name)
def test_archive_weights_have_the_layout_keras_writes(case, tmp_path):
    imported, model = imported_model(case)
    written = model.save_keras(tmp_path / "m.keras")
    assert written == tmp_path / "m.keras"
    ours = _h5_layout(_archive_weights(written))
    source = case.weights_source(imported)
    theirs = _h5_layout(source if isinstance(source, Path) else __import__("io").BytesIO(source))
    assert sorted(ours) == sorted(theirs)
    for path, value in theirs.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(ours[path], value, err_msg=path)
        else:
            assert ours[path] == value, path
    with zipfile.ZipFile(written) as archive:
        assert json.loads(archive.read("metadata.json"))["keras_version"].startswith("3.")
        assert canonical(json.loads(archive.read("config.json"))) == canonical(
            keras_json(model))


@pytest.mark.parametrize("case", KERAS3_CASES, ids=lambda c: c.name)
def test_an_exported_archive_imports_back_to_the_same_model(case, tmp_path):
    _, model = imported_model(case)
    path = model.save_keras(tmp_path / f"{case.name}.keras")
    result = invoke("import-keras", path, "-o", tmp_path / "again.yaml")
    assert result.exit_code == 0, result.output
    again = kconf.build_model(tmp_path / "again.yaml")
    with np.load(tmp_path / "again.weights.npz") as saved:
        assert sorted(saved.files) == sorted(model.named_weights())
        for name, value in model.named_weights().items():
            np.testing.assert_array_equal(saved[name], value)
        again.set_weights([saved[k] for k in again.named_weights()])
    ref = reference(case)
    x = model_inputs(model, ref)
    for a, b in zip(np.atleast_1d(model.predict(x)), np.atleast_1d(again.predict(x))):
        np.testing.assert_array_equal(a, b)


def test_save_keras_json_only(tmp_path):
    model = kconf.build_model(ROOT / "configs" / "mlp_softmax.yaml")
    path = model.save_keras(tmp_path / "mlp.json")
    data = json.loads(path.read_text())
    assert data["class_name"] == "Sequential"
    assert [l["class_name"] for l in data["config"]["layers"]] == [
        "InputLayer", "Dense", "Dropout", "Dense", "Dropout", "Dense"]


# --- kconf settings in Keras's terms -----------------------------------------------------------


def test_keras2_decay_exports_as_inverse_time_decay():
    model = kconf.build_model(ROOT / "configs" / "mlp_softmax.yaml")
    optimizer = keras_json(model)["compile_config"]["optimizer"]
    assert optimizer["class_name"] == "SGD"
    assert optimizer["config"]["learning_rate"] == {
        "module": "keras.optimizers.schedules", "class_name": "InverseTimeDecay",
        "config": {"initial_learning_rate": 0.01, "decay_steps": 1, "decay_rate": 1e-6,
                   "staircase": False}, "registered_name": None}
    assert optimizer["config"]["momentum"] == 0.9 and optimizer["config"]["nesterov"] is True


def test_settings_keras_cannot_express_are_errors():
    model = kconf.build_model(ROOT / "configs" / "mlp_softmax.yaml")
    model.optimizer.lazy_sparse = True
    with pytest.raises(ConfigError) as err:
        keras_json(model)
    assert "SGD lazy_sparse: Keras has no lazy sparse updates" in str(err.value)


#: The example configs (configs/ also holds other kinds of files, such as sweeps).
EXAMPLES = sorted(p for p in (ROOT / "configs").glob("*.yaml")
                  if "model" in (yaml.safe_load(p.read_text()) or {}))


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_config_exports_and_reads_back(config):
    """Each example's Keras JSON imports back to a model of the same layers and size (a
    custom metric function is the one thing kconf's import refuses: it names it)."""
    model = kconf.model_from_config(config)
    compiled = kconf.build_model(config)
    data = keras_json(compiled)
    if config.stem == "custom_metric":
        with pytest.raises(ConfigError, match="metric 'mean_pred' is not supported"):
            kconf.from_keras(data)
        return
    again = kconf.model_from_config(kconf.from_keras(data))
    assert again.count_params() == model.count_params()
    def layers(m):
        return sorted((l.name, type(l).__name__) for l in m.graph.layers)

    assert layers(again) == layers(model)


def test_export_cli_from_a_run_folder(tmp_path):
    result = invoke("train", ROOT / "configs" / "mlp_binary.yaml", "--epochs", "1",
                    "--output-dir", tmp_path / "runs", "--quiet")
    assert result.exit_code == 0, result.output
    (run,) = [p for p in (tmp_path / "runs").glob("*/*") if p.is_dir()]
    result = invoke("export-keras", run, "-o", tmp_path / "out" / "binary.keras")
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'out' / 'binary.json'}" in result.output
    result = invoke("import-keras", tmp_path / "out" / "binary.keras", "-o", tmp_path / "b.yaml")
    assert result.exit_code == 0, result.output
    with np.load(run / "weights.npz") as trained, np.load(tmp_path / "b.weights.npz") as back:
        assert sorted(trained.files) == sorted(back.files)
        for name in trained.files:
            np.testing.assert_array_equal(trained[name], back[name])
    result = invoke("export-keras", ROOT / "configs" / "mlp_binary.yaml", "-o", tmp_path / "j")
    assert result.exit_code == 0 and (tmp_path / "j.json").is_file()
    assert not (tmp_path / "j.keras").exists()
    result = invoke("export-keras", ROOT / "configs" / "mlp_binary.yaml", "-o", tmp_path / "k",
                    "--weights", ROOT / "configs" / "mlp_softmax.yaml")
    assert result.exit_code == 2 and "Traceback" not in result.output


# --- Keras itself ------------------------------------------------------------------------------

KERAS_PREDICT = r"""
import json, sys
import numpy as np
import keras

for job in json.loads(sys.argv[1]):
    model = keras.saving.load_model(job["keras"])
    structure = keras.models.model_from_json(open(job["json"]).read())
    assert structure.count_params() == model.count_params() == job["params"], job
    with np.load(job["inputs"]) as data:
        xs = [data[f"x{i}"] for i in range(len(data.files))]
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    np.savez(job["outputs"], *[keras.ops.convert_to_numpy(o) for o in out])
    print("loaded", job["keras"], model.optimizer.__class__.__name__)
"""

#: kconf's example configs Keras loads in the test (the big vgg and twitter models and the
#: custom metric, whose function Keras cannot import, left out).
KERAS_CONFIGS = ["mlp_softmax", "mlp_binary", "regression_mse", "shared_lstm",
                 "time_distributed", "shared_conv_nodes", "digits_cnn", "digits_mlp",
                 "transformer_classifier", "text_bilstm"]


def _random_inputs(model, rng):
    xs = []
    for t in model.graph.inputs:
        shape = (3, *[d or 4 for d in t.shape[1:]])
        xs.append(rng.integers(0, 2, shape).astype(t.dtype) if t.dtype != "float32"
                  else rng.random(shape, dtype=np.float32))
    return xs


@pytest.mark.skipif(keras_runtime() is None,
                    reason="needs Keras 3 (KCONF_KERAS_PYTHON or /tmp/ref/bin/python); the "
                           "committed fixtures test the formats without it")
def test_keras_loads_exports_and_predicts_what_kconf_predicts(tmp_path):
    rng = np.random.default_rng(0)
    models = {case.name: imported_model(case)[1] for case in (*KERAS3_CASES, APP_BLOCKS)}
    for name in KERAS_CONFIGS:
        models[f"config_{name}"] = kconf.build_model(ROOT / "configs" / f"{name}.yaml")
    jobs, expected = [], {}
    for name, model in models.items():
        stem = tmp_path / name
        files = kconf.keras_io.export_keras(model, stem)
        xs = _random_inputs(model, rng)
        np.savez(tmp_path / f"{name}.in.npz", **{f"x{i}": x for i, x in enumerate(xs)})
        predicted = model.predict(xs if len(xs) > 1 else xs[0])
        expected[name] = predicted if isinstance(predicted, list) else [predicted]
        jobs.append({"keras": str(files[1]), "json": str(files[0]), "params":
                     model.count_params(), "inputs": str(tmp_path / f"{name}.in.npz"),
                     "outputs": str(tmp_path / f"{name}.out.npz")})
    done = run_keras(KERAS_PREDICT, json.dumps(jobs))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("loaded") == len(jobs)
    for name, want in expected.items():
        with np.load(tmp_path / f"{name}.out.npz") as got:
            assert len(got.files) == len(want), name
            for i, value in enumerate(want):
                np.testing.assert_allclose(got[f"arr_{i}"], value, atol=1e-5, rtol=1e-5,
                                           err_msg=name)
