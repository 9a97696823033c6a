"""Keras models in: ``kconf import-keras`` and ``kconf.from_keras``.

Against fixtures Keras itself wrote (tests/fixtures/keras/, see make_fixtures.py): the
imported config builds the same model, Keras's weights load by layer, and kconf's
predictions, loss, gradients and weights after one training step equal Keras's.
"""
from __future__ import annotations

import copy
import json
import shutil
import sys
import zipfile

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import kconf
from kconf.engine import loss_classes
from kconf.cli import app
from kconf.errors import ConfigError
from kconf.keras_io.importer import convert
from tests.keras_support import (
    CASES,
    FIXTURES,
    KERAS2_CASE,
    arrays,
    imported_model,
    model_inputs,
    reference,
    without_dropout,
)

h5py = pytest.importorskip("h5py", reason="Keras weight files need h5py ('.[keras]')")
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def listed(value):
    return value if isinstance(value, list) else [value]


# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_predictions_equal_keras(case):
    _, model = imported_model(case)
    ref = reference(case)
    preds = listed(model.predict(model_inputs(model, ref)))
    expected = arrays(ref, "pred", model.output_names)
    assert len(preds) == len(expected)
    for got, want in zip(preds, expected):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_one_training_step_equals_keras(case):
    """Loss, every gradient, and every weight after one step, as Keras computed them."""
    _, model = imported_model(case)
    ref = reference(case)
    without_dropout(model)
    ys = arrays(ref, "train_y", model.output_names)
    loss = listed(model.train_on_batch(model_inputs(model, ref, "train_x"),
                                       ys[0] if len(ys) == 1 else ys))[0]
    np.testing.assert_allclose(loss, ref["loss"], rtol=1e-6)
    grads = {f"{l.name}/{k}": np.asarray(g) for l in model.graph.layers
             for k, g in l.grads.items()}
    after = model.named_weights()
    assert sorted(after) == sorted(k[len("after/"):] for k in ref if k.startswith("after/"))
    # gradients of the trainable weights; every weight after the step (moving statistics too)
    assert sorted(grads) == sorted(k[len("grad/"):] for k in ref if k.startswith("grad/"))
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, ref[f"grad/{name}"], atol=1e-6, err_msg=name)
    for name, value in after.items():
        np.testing.assert_allclose(value, ref[f"after/{name}"], atol=1e-6, rtol=0,
                                   err_msg=name)


# --- the config written ------------------------------------------------------------------------


def test_import_writes_yaml_a_person_would_write_and_it_validates(tmp_path):
    out = tmp_path / "configs" / "mlp.yaml"
    result = invoke("import-keras", FIXTURES / "mlp.keras", "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# yaml-language-server: $schema=")
    assert lines[0].endswith("schemas/kconf.schema.json")
    schema = (out.parent / lines[0].split("$schema=")[1]).resolve()
    assert schema.is_file()
    assert "# Imported from mlp.keras (Keras 3.15.1 Sequential model 'mlp')" in text
    assert "\n".join(lines[lines.index("model:"):lines.index("compile:")]) == """model:
  sequential:
    - Dense: {units: 16, activation: relu, input_shape: [20]}
    - Dropout: {rate: 0.5}
    - Dense: {units: 16, activation: relu}
    - Dropout: {rate: 0.5}
    - Dense: {units: 10, activation: softmax}"""
    config = yaml.safe_load(text)
    assert config["compile"] == {
        "optimizer": {"SGD": {"learning_rate": {"InverseTimeDecay": {
            "initial_learning_rate": 0.01, "decay_steps": 1, "decay_rate": 1e-6}},
            "momentum": 0.9, "nesterov": True}},
        "loss": "categorical_crossentropy", "metrics": ["accuracy"]}
    assert "# Placeholder data" in text
    assert config["data"]["train"]["random"] == {"samples": 128, "x": [20], "classes": 10,
                                                 "one_hot": True}
    validated = invoke("validate", out)
    assert validated.exit_code == 0, validated.output
    assert f"{out}: OK (778 params)" in validated.output


def test_shared_layer_is_one_entry_called_twice():
    fn = kconf.from_keras(FIXTURES / "shared_lstm.json")["model"]["functional"]
    assert fn["inputs"] == {"tweet_a": {"shape": [6, 5]}, "tweet_b": {"shape": [6, 5]}}
    assert fn["layers"] == {"shared_lstm": {"LSTM": {"units": 4}},
                            "predictions": {"Dense": {"units": 1, "activation": "sigmoid"}}}
    assert fn["graph"] == ["shared_lstm_0 = shared_lstm(tweet_a)",
                           "shared_lstm_1 = shared_lstm(tweet_b)",
                           "x = concatenate(shared_lstm_0, shared_lstm_1)",
                           "predictions = predictions(x)"]
    assert fn["outputs"] == ["predictions"]


def test_multi_input_multi_output_model_keeps_names_dtypes_and_loss_weights():
    config = kconf.from_keras(FIXTURES / "twitter.keras")
    fn = config["model"]["functional"]
    assert fn["inputs"]["main_input"] == {"shape": [10], "dtype": "int32"}
    assert fn["graph"][:3] == ["x = embedding(main_input)", "lstm = lstm(x)",
                               "x = concatenate(lstm, aux_input)"]
    assert fn["outputs"] == ["main_output", "aux_output"]
    assert config["compile"] == {
        "optimizer": "rmsprop",
        "loss": {"main_output": "binary_crossentropy", "aux_output": "binary_crossentropy"},
        "loss_weights": {"main_output": 1.0, "aux_output": 0.2}}
    x = config["data"]["train"]["random"]["x"]
    assert x["main_input"] == {"shape": [10], "dtype": "int32", "high": 50}


def test_time_distributed_model_becomes_a_named_model():
    config = kconf.from_keras(FIXTURES / "time_distributed.keras")
    assert list(config) == ["name", "models", "model", "compile", "data"]
    assert config["models"] == {"classifier": {"sequential": [
        {"Dense": {"units": 8, "activation": "relu", "input_shape": [12]}},
        {"Dense": {"units": 8, "activation": "relu"}},
        {"Dense": {"units": 4, "activation": "softmax"}}]}}
    fn = config["model"]["functional"]
    assert fn["layers"] == {"per_step": {"TimeDistributed": {"layer": "classifier"}}}
    assert fn["graph"] == ["per_step = per_step(input_sequences)"]
    assert config["compile"]["optimizer"] == "adam"


def test_keras2_json_nested_lists_initializers_and_no_compile_config(tmp_path):
    out = tmp_path / "k2.yaml"
    result = invoke("import-keras", FIXTURES / "keras2_functional.json", "-o", out,
                    "--weights", FIXTURES / "keras2_functional.h5")
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "(Keras 2.11.0 Functional model 'model_1')" in text
    assert "# Not in the Keras file (the model was saved uncompiled)" in text
    config = yaml.safe_load(text)
    fn = config["model"]["functional"]
    assert fn["layers"]["score"] == {"Dense": {"units": 3, "activation": "softmax",
                                               "kernel_initializer": "he_normal"}}
    assert fn["layers"]["gru_1"] == {"GRU": {"units": 5, "return_sequences": True}}
    assert fn["graph"][-2:] == ["x = add(simple_rnn_1, x)", "score = score(x)"]
    assert config["compile"] == {"optimizer": "rmsprop", "loss": "categorical_crossentropy"}
    with np.load(tmp_path / "k2.weights.npz") as saved:
        assert sorted(saved.files) == sorted(
            k[len("after/"):] for k in reference(KERAS2_CASE) if k.startswith("after/"))


def test_keras3_call_arguments_and_keras2_lists_give_the_same_config():
    """The two ways Keras writes inbound nodes are read alike."""
    data = json.loads((FIXTURES / "twitter.json").read_text())
    legacy = copy.deepcopy(data)
    for layer in legacy["config"]["layers"]:
        layer["inbound_nodes"] = [
            [[*t["config"]["keras_history"], {}] for t in _tensors(node["args"])]
            for node in layer["inbound_nodes"]]
    assert kconf.from_keras(legacy)["model"] == kconf.from_keras(data)["model"]


def _tensors(value):
    if isinstance(value, dict):
        return [value] if value.get("class_name") == "__keras_tensor__" else []
    return [t for item in value for t in _tensors(item)] if isinstance(value, list) else []


def test_renamed_layers_still_find_their_weights(tmp_path):
    """Keras names kconf cannot use in graph lines are renamed; weights are still matched
    by the Keras name."""
    data = json.loads((FIXTURES / "shared_lstm.json").read_text())
    text = json.dumps(data).replace('"predictions"', '"add"').replace('"shared_lstm"',
                                                                        '"shared-lstm"')
    (tmp_path / "renamed.json").write_text(text)
    weights = tmp_path / "renamed.weights.h5"
    shutil.copy(FIXTURES / "shared_lstm.weights.h5", weights)
    with h5py.File(weights, "r+") as f:
        f["layers/dense/vars"].attrs["name"] = "add"
        f["layers/lstm/vars"].attrs["name"] = "shared-lstm"
    imported = convert(tmp_path / "renamed.json")
    fn = imported.config["model"]["functional"]
    assert set(fn["layers"]) == {"shared_lstm", "add_layer"}
    assert imported.keras_names == {(None, "shared_lstm"): "shared-lstm",
                                    (None, "add_layer"): "add"}
    result = invoke("import-keras", tmp_path / "renamed.json", "-o", tmp_path / "r.yaml",
                    "--weights", weights)
    assert result.exit_code == 0, result.output
    model = kconf.build_model(tmp_path / "r.yaml")
    with np.load(tmp_path / "r.weights.npz") as saved:
        model.set_weights([saved[k] for k in model.named_weights()])
    ref = reference(CASES[3])
    np.testing.assert_allclose(model.predict(model_inputs(model, ref)), ref["pred/predictions"],
                               atol=1e-6)


# --- what kconf cannot do -------------------------------------------------------------------

#: (mask_zero, the NotEqual operation computing its mask and the ``mask=`` arguments it feeds
#: are supported since masks are: ``tests/test_keras_masking.py``)
#: (its Dense layers' kernel_regularizer L2 and kernel_constraint MaxNorm import since kconf
#: has them)
UNSUPPORTED = [
    "config.layers[3].config.recurrent_dropout: LSTM 'lstm': recurrent_dropout=0.2",
    "config.layers[4]: Lambda layer 'double' is not supported",
    "config.layers[8].config.dtype: Dense 'dense_1': dtype 'bfloat16' changes the numbers",
    "config.layers[10].config.renorm: BatchNormalization 'batch_normalization': renorm=True",
]


def test_every_unsupported_part_is_listed_where_it_is(tmp_path):
    out = tmp_path / "u.yaml"
    result = invoke("import-keras", FIXTURES / "unsupported.json", "-o", out)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    file = str(FIXTURES / "unsupported.json")
    assert lines[-1] == f"{len(UNSUPPORTED)} errors in {file}"
    assert len(lines) == len(UNSUPPORTED) + 1
    for line, expected in zip(lines, UNSUPPORTED):
        assert line.startswith(f"{file}: {expected}"), line
    assert "Traceback" not in result.output
    assert not out.exists()


def _dense_model(activation, version):
    """A Keras 2 (or 3) Sequential model of one Dense layer."""
    layer = {"class_name": "Dense", "config": {"name": "dense", "units": 2,
                                               "activation": activation,
                                               "batch_input_shape": [None, 3]}}
    data = {"class_name": "Sequential", "config": {"name": "s", "layers": [layer]},
            "keras_version": version}
    return data


def test_keras2_hard_sigmoid_differs_and_is_refused():
    with pytest.raises(ConfigError) as err:
        kconf.from_keras(_dense_model("hard_sigmoid", "2.2.4"))
    assert "config.layers[0].config.activation: Dense 'dense': Keras 2's hard_sigmoid" in str(
        err.value)
    config = kconf.from_keras(_dense_model("hard_sigmoid", "3.15.1"))
    assert config["model"]["sequential"] == [
        {"Dense": {"units": 2, "activation": "hard_sigmoid", "input_shape": [3]}}]


def test_unknown_arguments_and_options_are_never_dropped():
    data = _dense_model("relu", "3.15.1")
    data["config"]["layers"][0]["config"]["fancy"] = 1
    data["compile_config"] = {"optimizer": {"class_name": "Muon", "config": {}},
                              "loss": "ctc", "weighted_metrics": ["fancy"]}
    with pytest.raises(ConfigError) as err:
        kconf.from_keras(data)
    found = [p.format() for p in err.value.problems]
    assert found[-1].startswith("<keras config>: compile_config.weighted_metrics[0]: metric "
                                "'fancy' is not supported by kconf (kconf has accuracy, ")
    assert found[:-1] == [
        "<keras config>: config.layers[0].config.fancy: Dense 'dense': argument 'fancy' is "
        "not supported by kconf",
        "<keras config>: compile_config.optimizer: optimizer 'Muon' is not supported by kconf "
        "(kconf has SGD, RMSprop, Adam, AdamW, Adamax, Nadam, Adagrad, Adadelta, Ftrl, Lion, "
        "Lamb)",
        "<keras config>: compile_config.loss: loss 'ctc' is not supported by kconf (kconf "
        f"has {', '.join(loss_classes.NAMES)})"]


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON (line 1, column 2"),
    ('{"layers": []}', "is not a Keras model's JSON"),
    ('{"class_name": "Dense", "config": {}}', "class_name: 'Dense' is not a Keras model class"),
])
def test_files_that_are_not_keras_models_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "m.json"
    path.write_text(content)
    result = invoke("import-keras", path, "-o", tmp_path / "c.yaml")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_archive_without_config_and_missing_file(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    result = invoke("import-keras", tmp_path / "m.keras", "-o", tmp_path / "c.yaml")
    assert result.exit_code == 2 and "zip archive without config.json" in result.output
    result = invoke("import-keras", tmp_path / "nothing.json", "-o", tmp_path / "c.yaml")
    assert result.exit_code == 2 and "nothing.json: file not found" in result.output


# --- weights that do not fit --------------------------------------------------------------------


def test_wrong_shaped_weights_name_the_layer(tmp_path):
    weights = tmp_path / "vgg.weights.h5"
    shutil.copy(FIXTURES / "vgg.weights.h5", weights)
    with h5py.File(weights, "r+") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset("0", data=np.zeros((99, 16), "float32"))
    result = invoke("import-keras", FIXTURES / "vgg.json", "-o", tmp_path / "vgg.yaml",
                    "--weights", weights)
    assert result.exit_code == 2
    assert (f"{weights}: layer 'dense' (Dense): weight 'kernel' has shape (32, 16) in the "
            "model but (99, 16) in the weights file (layers/dense/vars)") in result.output
    assert not (tmp_path / "vgg.weights.npz").exists()


def test_weights_of_another_model_name_each_missing_layer(tmp_path):
    result = invoke("import-keras", FIXTURES / "shared_lstm.json", "-o", tmp_path / "s.yaml",
                    "--weights", FIXTURES / "vgg.weights.h5")
    assert result.exit_code == 2
    assert ("layer 'shared_lstm' (LSTM): the weights file has no weights for a layer named "
            "'shared_lstm' in the model (it has: conv2d, conv2d_1, conv2d_2, conv2d_3, dense, "
            "dense_1)") in result.output
    assert "layer 'predictions' (Dense): the weights file has no weights" in result.output
    assert "the weights file has weights for layers the model does not have: conv2d" in \
        result.output


def test_missing_h5py_is_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # `import h5py` now fails
    result = invoke("import-keras", FIXTURES / "mlp.keras", "-o", tmp_path / "m.yaml")
    assert result.exit_code == 2
    assert result.output.strip() == ("Keras weight files (HDF5) need h5py: pip install "
                                     "'kconf[keras]' (or: pip install h5py)")


# --- using the weights: predict, evaluate, fine-tune ---------------------------------------------


def test_imported_weights_predict_and_evaluate_like_keras(tmp_path):
    config, weights = tmp_path / "twitter.yaml", tmp_path / "twitter.weights.npz"
    result = invoke("import-keras", FIXTURES / "twitter.keras", "-o", config)
    assert result.exit_code == 0, result.output
    assert f"wrote {weights}: 14 weight arrays" in result.output
    ref = reference(CASES[2])
    np.savez(tmp_path / "x.npz", main_input=ref["x/main_input"], aux_input=ref["x/aux_input"])
    result = invoke("predict", config, "--weights", weights, "--input", tmp_path / "x.npz",
                    "--output", tmp_path / "p.npz")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "p.npz") as pred:
        for name in ("main_output", "aux_output"):
            np.testing.assert_allclose(pred[name], ref[f"pred/{name}"], atol=1e-6)
    result = invoke("evaluate", config, "--weights", weights, "--json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)) == {"loss", "main_output_loss", "aux_output_loss"}


def _train(tmp_path, config, *extra):
    out = tmp_path / "runs"
    result = invoke("train", config, "compile.optimizer={SGD: {learning_rate: 1.0e-12}}",
                    "--epochs", "1", "--output-dir", out, "--quiet", *extra)
    runs = sorted(p for p in out.glob("*/*") if p.is_dir()) if out.exists() else []
    return result, runs


def test_train_init_weights_fine_tunes_from_imported_weights(tmp_path):
    config = tmp_path / "mlp.yaml"
    assert invoke("import-keras", FIXTURES / "mlp.keras", "-o", config).exit_code == 0
    initial = tmp_path / "mlp.weights.npz"
    result, (run,) = _train(tmp_path, config, "--init-weights", initial)
    assert result.exit_code == 0, result.output
    with np.load(initial) as before, np.load(run / "weights.npz") as after:
        for name in before.files:  # a learning rate of 1e-12: the weights barely move
            np.testing.assert_allclose(after[name], before[name], atol=1e-6)
    source = json.loads((run / "source.json").read_text())
    assert source["init_weights"] == str(initial.resolve())
    checkpoint = run / "checkpoints" / "last.npz"
    result, runs = _train(tmp_path, config, "--init-weights", checkpoint)
    assert result.exit_code == 0, result.output
    assert len(runs) == 2
    with np.load(checkpoint) as saved, np.load(runs[1] / "weights.npz") as after:
        np.testing.assert_allclose(after["dense/kernel"], saved["weights/dense/kernel"],
                                   atol=1e-6)


def test_train_init_weights_that_do_not_fit_make_no_run(tmp_path):
    config = tmp_path / "mlp.yaml"
    assert invoke("import-keras", FIXTURES / "mlp.keras", "-o", config).exit_code == 0
    other = tmp_path / "vgg.yaml"
    assert invoke("import-keras", FIXTURES / "vgg.json", "-o", other, "--weights",
                  FIXTURES / "vgg.weights.h5").exit_code == 0
    result, runs = _train(tmp_path, config, "--init-weights", tmp_path / "vgg.weights.npz")
    assert result.exit_code == 2
    assert "layer 'dense' (Dense): weight 'kernel' has shape (20, 16) in the model but " \
           "(32, 16) in the file" in result.output
    assert runs == []
    result = invoke("train", "--resume", tmp_path, "--init-weights", tmp_path / "x.npz")
    assert result.exit_code == 2 and "or --resume RUN_DIR alone" in result.output


def test_from_keras_returns_a_config_dict_build_model_takes():
    data = json.loads((FIXTURES / "vgg.json").read_text())
    config = kconf.from_keras(data)
    assert isinstance(config, dict) and config["name"] == "vgg"
    assert yaml.safe_load(yaml.safe_dump(config)) == config
    model = kconf.build_model(config)
    assert model.count_params() == 1_838
    assert [l.name for l in model.layers][:3] == ["conv2d", "conv2d_1", "max_pooling2d"]


def test_a_keras2_whole_model_h5_file_imports_with_its_weights(tmp_path):
    """Keras 2's ``model.save('m.h5')``: the config in an attribute, the weights in
    ``model_weights`` (written here from the fixture's parts, as Keras 2 lays them out)."""
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f, h5py.File(FIXTURES / "keras2_functional.h5", "r") as w:
        f.attrs["model_config"] = (FIXTURES / "keras2_functional.json").read_text()
        f.attrs["keras_version"] = "2.11.0"
        w.copy(w["/"], f, "model_weights")
    result = invoke("import-keras", path, "-o", tmp_path / "k2.yaml")
    assert result.exit_code == 0, result.output
    model = kconf.build_model(tmp_path / "k2.yaml")
    with np.load(tmp_path / "k2.weights.npz") as saved:
        model.set_weights([saved[k] for k in model.named_weights()])
    ref = reference(KERAS2_CASE)
    np.testing.assert_allclose(model.predict(model_inputs(model, ref)), ref["pred/score"],
                               atol=1e-6)


def test_the_rules_cover_exactly_kconfs_layers_and_initializers():
    """Every layer kconf has can be imported and exported, and the Keras defaults the
    import leaves out are kconf's own."""
    from kconf.config.layers import LAYER_SPECS
    from kconf.args.layer import ConstantArgs, OrthogonalArgs, RandomNormalArgs, RandomUniformArgs
    from kconf.args.names import INITIALIZER_NAMES
    from kconf.engine.layers import LAYERS
    from kconf.keras_io.initializers import INITIALIZERS
    from kconf.keras_io.layers import RULES

    assert set(RULES) == set(LAYER_SPECS) == set(LAYERS) - {"InputLayer"}
    assert sorted(name for name, _ in INITIALIZERS.values()) == sorted(INITIALIZER_NAMES)
    for cls, args in [("RandomUniform", RandomUniformArgs), ("RandomNormal", RandomNormalArgs),
                      ("TruncatedNormal", RandomNormalArgs), ("Constant", ConstantArgs),
                      ("Orthogonal", OrthogonalArgs)]:
        assert INITIALIZERS[cls][1] == args().model_dump(), cls
    for cls, rule in RULES.items():
        fields = LAYER_SPECS[cls].model_fields[cls].annotation.model_fields
        assert set(rule.args) <= set(fields), cls


def test_keras2_sequential_list_and_keras2_optimizer_spellings():
    """Keras 2.0's Sequential config is a bare list of layers; Keras 2 optimizers say ``lr``
    and ``decay`` (kconf honours decay as Keras 2 did)."""
    data = _dense_model("relu", "2.1.6")
    data["config"] = data["config"]["layers"]
    data["compile_config"] = {"optimizer": {"class_name": "SGD", "config": {
        "lr": 0.01, "decay": 1e-6, "momentum": 0.9, "nesterov": True}},
        "loss": "mse", "metrics": ["mae"]}
    config = kconf.from_keras(data)
    assert config["name"] == "sequential"
    assert config["model"] == {"sequential": [
        {"Dense": {"units": 2, "activation": "relu", "input_shape": [3]}}]}
    assert config["compile"] == {"optimizer": {"SGD": {"decay": 1e-6, "momentum": 0.9,
                                                       "nesterov": True}},
                                 "loss": "mse", "metrics": ["mae"]}
    assert config["data"]["train"]["random"]["y"] == [2]


def test_a_single_output_keyed_by_name_is_written_plainly():
    data = _dense_model("softmax", "3.15.1")
    data["compile_config"] = {"optimizer": "adam", "loss": {"dense": "categorical_crossentropy"},
                              "loss_weights": {"dense": 0.5}, "metrics": {"dense": "accuracy"}}
    assert kconf.from_keras(data)["compile"] == {
        "optimizer": "adam", "loss": "categorical_crossentropy", "loss_weights": [0.5],
        "metrics": ["accuracy"]}
