"""Config loading: what is accepted, and every kind of mistake reported at its file:line:col."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from kconf.config import (
    LAYER_SPECS,
    OPTIMIZER_ALIASES,
    OPTIMIZER_NAMES,
    OPTIMIZER_SPECS,
    RunConfig,
    json_schema,
    load_config,
    parse_override,
    write_json_schema,
)
from kconf.engine.layers import REGISTRY
from kconf.errors import ConfigError, SourcePos
from tests.layer_cases import CASES as LAYER_CASES

ROOT = Path(__file__).resolve().parents[1]

MLP = """\
name: mlp_softmax
seed: 0
model:
  sequential:
    - Dense: {units: 64, activation: relu, input_dim: 20}
    - Dropout: {rate: 0.5}
    - Dense: {units: 10, activation: softmax}
compile:
  optimizer: {SGD: {lr: 0.01, decay: 1.0e-6, momentum: 0.9, nesterov: true}}
  loss: categorical_crossentropy
  metrics: [accuracy, "kconf_examples.metrics:mean_pred"]
data:
  train: {random: {samples: 1000, x: [20], classes: 10, one_hot: true}}
  test:  {random: {samples: 100,  x: [20], classes: 10, one_hot: true}}
fit: {epochs: 20, batch_size: 128}
"""

# The tail every test config below shares, after its own model section (lines 5-9).
TAIL = """\
compile:
  optimizer: sgd
  loss: mse
data:
  train: {random: {samples: 8, x: [4], y: [1]}}
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def with_layers(*layers: str) -> str:
    """A config whose model lists ``layers``; the first layer is on line 3."""
    items = "".join(f"    - {layer}\n" for layer in layers)
    return f"model:\n  sequential:\n{items}{TAIL}"


QUOTE = "'"


def where(text: str, needle: str, occurrence: int = 1) -> str:
    """``line:col`` (1-based) of the n-th occurrence of ``needle`` in ``text``."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    before = text[:index]
    return f"{before.count(chr(10)) + 1}:{index - before.rfind(chr(10))}"


def test_where_counts_from_one():
    assert where("ab\ncd: x\n", "x") == "2:5"
    assert where("a a", "a", 2) == "1:3"


def errors(source, overrides=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(source, overrides)
    return [p.format() for p in info.value.problems]


def one_error(source, overrides=None) -> str:
    found = errors(source, overrides)
    assert len(found) == 1, found
    return found[0]


# --- accepted configs ---------------------------------------------------------------------------


def test_the_docs_mlp_loads_with_every_value_in_place(tmp_path):
    cfg = load_config(write(tmp_path, MLP))
    assert isinstance(cfg.config, RunConfig)
    assert (cfg.name, cfg.seed) == ("mlp_softmax", 0)
    first, dropout, last = cfg.model.sequential
    assert [s.class_name for s in cfg.model.sequential] == ["Dense", "Dropout", "Dense"]
    assert first.args.layer_kwargs() == {
        "units": 64, "activation": "relu", "use_bias": True,
        "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
    }
    assert first.args.input_hint() == (None, (20,))
    assert (first.args.name, first.args.trainable) == (None, True)
    assert dropout.args.layer_kwargs() == {"rate": 0.5, "noise_shape": None}
    assert dropout.args.input_hint() is None
    assert last.args.activation == "softmax"
    opt = cfg.compile.optimizer
    assert opt.class_name == "SGD"
    assert opt.kwargs() == {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True,
                            "decay": 1e-6}
    assert cfg.compile.metrics == ["accuracy", "kconf_examples.metrics:mean_pred"]
    assert cfg.import_paths() == [(("compile", "metrics", 1), "kconf_examples.metrics:mean_pred")]
    train = cfg.data.train
    assert train.kind == "random"
    assert (train.args.samples, train.args.x, train.args.classes, train.args.one_hot) == (
        1000, (20,), 10, True)
    assert cfg.data.validation is None and cfg.data.test.kind == "random"
    assert (cfg.fit.epochs, cfg.fit.batch_size, cfg.fit.shuffle, cfg.fit.validation_split) == (
        20, 128, True, 0.0)


def test_source_locates_values_keys_and_falls_back_to_the_enclosing_value(tmp_path):
    path = write(tmp_path, MLP)
    cfg = load_config(path)
    src = cfg.source
    assert src.file == str(path) and src.text == MLP and src.base_dir == tmp_path.resolve()
    assert src.locate(("model", "sequential", 0, "Dense", "units")) == SourcePos(str(path), 5, 22)
    assert src.locate(("data", "train", "random", "x")) == SourcePos(str(path), 13, 38)
    assert src.locate(("data", "train", "random", "x", 0)) == SourcePos(str(path), 13, 39)
    # use_bias is not in the file: the enclosing mapping is the best position
    assert src.locate(("model", "sequential", 0, "Dense", "use_bias")) == SourcePos(str(path), 5, 14)
    assert src.locate_key(("fit", "epochs")) == SourcePos(str(path), 15, 7)
    assert src.locate(("fit", "epochs")) == SourcePos(str(path), 15, 15)


def test_a_dict_loads_with_a_default_name_and_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = yaml.safe_load(MLP)
    del data["name"]
    cfg = load_config(data)
    assert cfg.name == "model"
    assert cfg.source.file == "<dict>" and cfg.source.text is None
    assert cfg.source.base_dir == tmp_path
    assert cfg.source.locate(("fit", "epochs")) == SourcePos("<dict>")


def test_the_name_defaults_to_the_file_stem(tmp_path):
    cfg = load_config(write(tmp_path, with_layers("Dense: {units: 1, input_dim: 4}"), "my net.yaml"))
    assert cfg.name == "my_net"


def test_defaults_are_filled(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}").replace("optimizer: sgd",
                                                                   "optimizer: {SGD: {momentum: 0.5}}")
    cfg = load_config(write(tmp_path, text))
    assert cfg.compile.optimizer.kwargs() == {"learning_rate": 0.01, "momentum": 0.5,
                                              "nesterov": False, "decay": 0.0}
    assert cfg.compile.metrics == []
    assert (cfg.seed, cfg.fit.epochs, cfg.fit.batch_size, cfg.fit.shuffle,
            cfg.fit.validation_split) == (0, 1, 32, True, 0.0)
    assert cfg.to_data()["compile"]["optimizer"] == {
        "SGD": {"learning_rate": 0.01, "momentum": 0.5, "nesterov": False, "decay": 0.0}}


@pytest.mark.parametrize("written, name, kwargs", [
    ("sgd", "SGD", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False, "decay": 0.0}),
    ("RMSprop", "RMSprop", {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0,
                            "epsilon": 1e-7, "centered": False, "decay": 0.0}),
    ("{Adam: {lr: 0.1}}", "Adam", {"learning_rate": 0.1, "beta_1": 0.9, "beta_2": 0.999,
                                   "epsilon": 1e-7, "amsgrad": False, "decay": 0.0}),
    ("{Adam: null}", "Adam", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999,
                              "epsilon": 1e-7, "amsgrad": False, "decay": 0.0}),
])
def test_optimizer_forms(tmp_path, written, name, kwargs):
    text = with_layers("Dense: {units: 1, input_dim: 4}").replace("optimizer: sgd",
                                                                   f"optimizer: {written}")
    opt = load_config(write(tmp_path, text)).compile.optimizer
    assert (opt.class_name, opt.kwargs()) == (name, kwargs)


def test_conv_layers_normalise_pairs_and_initializers(tmp_path):
    text = with_layers(
        "Conv2D: {filters: 8, kernel_size: 3, padding: Same, input_shape: [28, 28, 1], "
        "batch_size: 16, kernel_initializer: {random_normal: {stddev: 0.1}}}",
        "MaxPooling2D: {pool_size: [2, 3]}",
        "Flatten:",
        "Flatten: {}",
        "Activation: {activation: tanh}",
        "Dense: {units: 1, bias_initializer: ones, kernel_initializer: {orthogonal: null}}",
    )
    conv, pool, flat, flat2, act, dense = load_config(write(tmp_path, text)).model.sequential
    assert conv.args.layer_kwargs() == {
        "filters": 8, "kernel_size": (3, 3), "strides": (1, 1), "padding": "same",
        "dilation_rate": (1, 1), "groups": 1, "activation": None, "use_bias": True,
        "kernel_initializer": {"random_normal": {"mean": 0.0, "stddev": 0.1}},
        "bias_initializer": "zeros",
    }
    assert conv.args.input_hint() == (16, (28, 28, 1))
    assert pool.args.layer_kwargs() == {"pool_size": (2, 3), "strides": (2, 3),
                                        "padding": "valid"}
    assert pool.args.strides is None  # the validated model keeps what was written
    assert flat.args.layer_kwargs() == {} == flat2.args.layer_kwargs()
    assert act.args.layer_kwargs() == {"activation": "tanh"}
    assert dense.args.layer_kwargs()["kernel_initializer"] == {"orthogonal": {"gain": 1.0}}
    assert dense.args.layer_kwargs()["bias_initializer"] == "ones"


def test_batch_input_shape_gives_the_batch_size(tmp_path):
    text = with_layers("Dense: {units: 1, batch_input_shape: [null, 4], name: out, "
                       "trainable: false}")
    args = load_config(write(tmp_path, text)).model.sequential[0].args
    assert args.input_hint() == (None, (4,))
    assert (args.name, args.trainable) == ("out", False)


def test_data_sources_npz_and_npy(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}").replace(
        "  train: {random: {samples: 8, x: [4], y: [1]}}\n",
        "  train: {npz: {path: data/train.npz}}\n"
        "  validation: {npy: {x: vx.npy, y: vy.npy}}\n")
    data = load_config(write(tmp_path, text)).data
    assert data.train.kind == "npz" and data.train.args.path == "data/train.npz"
    assert (data.train.args.x, data.train.args.y) == ("x", "y")
    assert data.validation.kind == "npy"
    assert (data.validation.args.x, data.validation.args.y) == ("vx.npy", "vy.npy")
    assert list(data.splits()) == ["train", "validation"]


def test_scientific_notation_without_a_dot_is_a_number(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}").replace(
        "optimizer: sgd", "optimizer: {SGD: {decay: 1e-6}}")
    assert load_config(write(tmp_path, text)).compile.optimizer.kwargs()["decay"] == 1e-6


def test_yaml_anchors_and_merge_keys_work(tmp_path):
    text = with_layers("Dense: &hidden {units: 8, activation: relu, input_dim: 4}",
                       "Dense: {<<: *hidden, units: 2, input_dim: null}")
    first, second = load_config(write(tmp_path, text)).model.sequential
    assert (second.args.units, second.args.activation) == (2, "relu")


def test_layer_specs_are_the_engine_layers_without_input_layer():
    assert list(LAYER_SPECS) == [name for name in REGISTRY if name != "InputLayer"]
    for tag, spec in LAYER_SPECS.items():
        assert list(spec.model_fields) == [tag]
        example = spec.model_validate({tag: LAYER_CASES[tag][0].args})
        assert example.class_name == tag and type(example.args) is REGISTRY[tag].args


def test_an_empty_fit_section_means_the_defaults(tmp_path):
    cfg = load_config(write(tmp_path, with_layers("Dense: {units: 1, input_dim: 4}") + "fit:\n"))
    assert (cfg.fit.epochs, cfg.fit.batch_size) == (1, 32)


def test_optimizer_specs_match_the_optimizer_names():
    assert tuple(OPTIMIZER_SPECS) == OPTIMIZER_NAMES
    assert set(OPTIMIZER_ALIASES.values()) == set(OPTIMIZER_NAMES)


def test_configs_are_frozen(tmp_path):
    cfg = load_config(write(tmp_path, MLP))
    with pytest.raises(Exception):
        cfg.fit.epochs = 3  # type: ignore[misc]


# --- round trip and schema ----------------------------------------------------------------------


def test_to_data_round_trips_through_yaml(tmp_path):
    text = with_layers(
        "Conv2D: {filters: 2, kernel_size: [3, 1], input_shape: [8, 8, 1], "
        "kernel_initializer: {random_uniform: {minval: -0.1}}}",
        "MaxPooling2D: {}",
        "Flatten: null",
        "Dropout: {rate: 0.25}",
        "Dense: {units: 1, activation: sigmoid}",
    )
    cfg = load_config(write(tmp_path, text))
    data = cfg.to_data()
    again = load_config(write(tmp_path, yaml.safe_dump(data, sort_keys=False), "again.yaml"))
    assert again.to_data() == data
    assert again == cfg  # equality ignores where a config came from
    mlp = load_config(write(tmp_path, MLP))
    assert load_config(yaml.safe_load(mlp.to_yaml())) == mlp
    assert mlp.to_data()["compile"]["optimizer"]["SGD"]["learning_rate"] == 0.01


def test_committed_json_schema_is_up_to_date():
    committed = json.loads((ROOT / "schemas" / "kconf.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), (
        "schemas/kconf.schema.json is stale: run "
        "python -c 'from kconf.config import write_json_schema as w; "
        "w(\"schemas/kconf.schema.json\")'")


def test_write_json_schema_is_indented_with_a_trailing_newline(tmp_path):
    path = tmp_path / "s.json"
    write_json_schema(path)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.startswith('{\n  "$schema"')
    schema = json.loads(text)
    assert set(schema["required"]) == {"model", "compile", "data"}
    assert "lr" in schema["$defs"]["SGDArgs"]["properties"]


# --- YAML-level mistakes ------------------------------------------------------------------------


def test_yaml_syntax_error_is_reported_at_yaml_problem_mark(tmp_path):
    path = write(tmp_path, "model:\n  sequential: [\n    - Dense: {units: 3}\n")
    message = one_error(path)
    assert message.startswith(f"{path}:3:5: invalid YAML: ")


def test_tab_indentation_gets_its_own_message(tmp_path):
    path = write(tmp_path, "model:\n  sequential:\n\t- Dense: {units: 3}\n")
    assert one_error(path) == f"{path}:3:1: tabs cannot indent YAML; use spaces"


def test_duplicate_key_is_reported_at_the_second_occurrence(tmp_path):
    text = with_layers("Dense: {units: 3, input_dim: 4, units: 5}")
    path = write(tmp_path, text)
    assert where(text, "units") == "3:15"
    assert one_error(path) == (
        f"{path}:{where(text, 'units', 2)}: model.sequential[0].Dense: duplicate key 'units' "
        "(first given at line 3, column 15); remove one of them")


def test_duplicate_section_is_reported(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}") + "seed: 1\nseed: 2\n"
    path = write(tmp_path, text)
    assert (where(text, "seed"), where(text, "seed", 2)) == ("9:1", "10:1")
    assert one_error(path) == (f"{path}:10:1: duplicate key 'seed' (first given at line 9, "
                               "column 1); remove one of them")


def test_python_tags_are_refused_not_run(tmp_path):
    marker = tmp_path / "ran"
    text = with_layers(f"!!python/object/apply:os.system ['touch {marker}']")
    path = write(tmp_path, text)
    assert one_error(path) == (
        f"{path}:3:7: model.sequential[0]: YAML tag !!python/object/apply:os.system is not "
        "allowed: a config holds plain data only (mappings, lists, strings, numbers, "
        "true/false, null)")
    assert not marker.exists()


def test_empty_file(tmp_path):
    path = write(tmp_path, "# nothing yet\n")
    assert one_error(path) == (f"{path}:1:1: the config is empty; it needs the sections model, "
                               "compile and data")


def test_a_document_that_is_not_a_mapping(tmp_path):
    path = write(tmp_path, "- Dense: {units: 3}\n")
    assert one_error(path) == (f"{path}:1:1: a config must be a mapping of sections (model, "
                               "compile, data), got a list")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert one_error(path) == f"{path}: file not found"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].pos == SourcePos(str(path))


def test_a_directory_is_not_a_config(tmp_path):
    assert one_error(tmp_path) == f"{tmp_path}: is a directory, not a YAML file"


def test_text_that_is_not_utf8_or_has_control_characters(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"seed: \xff\n")
    assert one_error(path) == f"{path}: is not UTF-8 text (byte 6 cannot be decoded)"
    path.write_bytes(b'seed: "\x07"\n')
    assert one_error(path) == (f"{path}:1:8: invalid YAML: character 0x0007 is not allowed "
                               "(special characters are not allowed)")


def test_a_recursive_alias_is_one_problem(tmp_path):
    path = write(tmp_path, with_layers("Dense: {units: 1, input_dim: 4}") + "seed: &s [*s]\n")
    assert one_error(path) == (f"{path}:9:7: seed: a YAML alias cannot refer to a value that "
                               "contains it")


# --- schema-level mistakes ----------------------------------------------------------------------


def test_unknown_layer_with_suggestion_points_at_the_key(tmp_path):
    path = write(tmp_path, with_layers("Dense: {units: 3, input_dim: 4}", "Dens: {units: 1}"))
    assert one_error(path) == (
        f"{path}:4:7: model.sequential[1]: unknown layer 'Dens' (did you mean 'Dense'?)")


def test_unknown_layer_without_a_close_name_lists_the_layers(tmp_path):
    path = write(tmp_path, with_layers("Dense: {units: 3, input_dim: 4}",
                                       "QuantumCircuit: {}"))
    layers = [name for name in REGISTRY if name != "InputLayer"]  # in the registry's order
    assert layers[:3] == ["Dense", "Activation", "Dropout"]
    assert one_error(path) == (
        f"{path}:4:7: model.sequential[1]: unknown layer 'QuantumCircuit'; valid: "
        + ", ".join(layers))


def test_a_layer_must_be_a_single_key_mapping(tmp_path):
    path = write(tmp_path, with_layers("Dense: {units: 3, input_dim: 4}", "Flatten",
                                       "{Dense: {units: 1}, Dropout: {rate: 0.1}}"))
    assert errors(path) == [
        f"{path}:4:7: model.sequential[1]: expected a layer as a mapping like "
        "{Dense: {units: 10}}, got 'Flatten'",
        f"{path}:5:7: model.sequential[2]: expected one layer per mapping, like "
        "{Dense: {units: 10}}; got keys 'Dense', 'Dropout'",
    ]


def test_unknown_activation_with_suggestion(tmp_path):
    text = with_layers("Dense: {units: 3, activation: reluu, input_dim: 4}")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'reluu')}: "
                               "model.sequential[0].Dense.activation: unknown "
                               "activation 'reluu' (did you mean 'relu'?)")


def test_negative_units(tmp_path):
    path = write(tmp_path, with_layers("Dense: {units: -64, input_dim: 4}"))
    assert one_error(path) == (f"{path}:3:22: model.sequential[0].Dense.units: must be a "
                               "positive integer, got -64")


@pytest.mark.parametrize("value, message", [
    ("'abc'", "expected an integer, got 'abc'"),
    ("2.5", "expected an integer, got 2.5"),
    ("true", "expected an integer, got true"),
    ("null", "expected an integer, got null"),
])
def test_units_must_be_an_integer(tmp_path, value, message):
    path = write(tmp_path, with_layers(f"Dense: {{units: {value}, input_dim: 4}}"))
    assert one_error(path) == f"{path}:3:22: model.sequential[0].Dense.units: {message}"


@pytest.mark.parametrize("rate", ["1.5", "1", "-0.1"])
def test_dropout_rate_must_be_below_one(tmp_path, rate):
    path = write(tmp_path, with_layers("Dense: {units: 3, input_dim: 4}",
                                       f"Dropout: {{rate: {rate}}}"))
    assert one_error(path) == (f"{path}:4:23: model.sequential[1].Dropout.rate: must be in "
                               f"[0, 1), got {rate}")


def test_unknown_key_with_suggestion_and_valid_keys(tmp_path):
    path = write(tmp_path, with_layers("Dense: {unit: 3, input_dim: 4}"))
    assert errors(path) == [
        f"{path}:3:14: model.sequential[0].Dense: missing required key 'units'",
        f"{path}:3:15: model.sequential[0].Dense: unknown key 'unit' (did you mean 'units'?); "
        "valid keys: units, activation, use_bias, kernel_initializer, bias_initializer, "
        "input_dim, kernel_regularizer, bias_regularizer, activity_regularizer, "
        "kernel_constraint, bias_constraint, name, trainable, input_shape, batch_size, "
        "batch_input_shape",
    ]


def test_unknown_section(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}") + "fitt: {epochs: 2}\n"
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'fitt')}: unknown key 'fitt' (did you mean "
                               "'fit'?); valid keys: kconf, name, seed, model, models, compile, "
                               "data, fit")


def test_a_model_is_sequential_or_functional(tmp_path):
    path = write(tmp_path, "model:\n  sequentail: []\n" + TAIL)
    assert errors(path) == [
        f"{path}:2:3: model: unknown key 'sequentail' (did you mean 'sequential'?); valid "
        "keys: sequential, functional",
    ]
    path = write(tmp_path, "model: {}\n" + TAIL)
    assert errors(path) == [
        f"{path}:1:8: model: give sequential (a list of layers) or functional (inputs, "
        "layers, graph, outputs)",
    ]
    path = write(tmp_path, "model:\n  functional: {}\n" + TAIL)
    assert errors(path) == [
        f"{path}:2:15: model.functional: missing required key 'inputs'",
        f"{path}:2:15: model.functional: missing required key 'graph'",
        f"{path}:2:15: model.functional: missing required key 'outputs'",
    ]


def test_missing_sections(tmp_path):
    path = write(tmp_path, "seed: 1\n")
    assert errors(path) == [
        f"{path}:1:1: missing required section 'model'",
        f"{path}:1:1: missing required section 'compile'",
        f"{path}:1:1: missing required section 'data'",
    ]


def test_bad_import_path_syntax(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}").replace(
        "  loss: mse\n", "  loss: mse\n  metrics: [mae, 'my.metrics:', 'a-b:c', acuracy]\n")
    path = write(tmp_path, text)
    assert errors(path) == [
        f"{path}:{where(text, QUOTE + 'my')}: compile.metrics[1]: 'my.metrics:' is not a valid "
        "import path; write 'package.module:function'",
        f"{path}:{where(text, QUOTE + 'a-b')}: compile.metrics[2]: 'a-b:c' is not a valid "
        "import path; write 'package.module:function'",
        f"{path}:{where(text, 'acuracy')}: compile.metrics[3]: unknown metric 'acuracy' (did "
        "you mean 'accuracy'?); a custom metric is an import path 'package.module:function'",
    ]


def test_lr_and_learning_rate_together_conflict(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}").replace(
        "optimizer: sgd", "optimizer: {SGD: {learning_rate: 0.1, lr: 0.2}}")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'lr:')}: compile.optimizer.SGD: give "
                               "learning_rate or its alias lr, not both")


def test_unknown_optimizer_and_loss(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}").replace(
        "optimizer: sgd", "optimizer: adamm").replace("loss: mse", "loss: hingee")
    path = write(tmp_path, text)
    assert errors(path) == [
        f"{path}:{where(text, 'adamm')}: compile.optimizer: unknown optimizer 'adamm' (did you "
        "mean 'adam'?)",
        f"{path}:{where(text, 'hingee')}: compile.loss: unknown loss 'hingee' (did you mean "
        "'hinge'?)",
    ]


@pytest.mark.parametrize("hints, key, message", [
    ("input_dim: 4, input_shape: [4]", "input_shape",
     "give only one of input_dim, input_shape: each sets the input shape"),
    ("input_shape: [4], batch_input_shape: [null, 4]", "batch_input_shape",
     "give only one of input_shape, batch_input_shape: each sets the input shape"),
    ("batch_input_shape: [2, 4], batch_size: 2", "batch_size",
     "give batch_input_shape or batch_size, not both"),
    ("batch_size: 2", "batch_size", "batch_size needs an input shape: give input_shape too"),
])
def test_conflicting_input_hints(tmp_path, hints, key, message):
    text = with_layers(f"Dense: {{units: 1, {hints}}}")
    path = write(tmp_path, text)
    at = where(text, f" {key}:") .split(":")
    at = f"{at[0]}:{int(at[1]) + 1}"  # the key itself, after the space
    assert one_error(path) == f"{path}:{at}: model.sequential[0].Dense.{key}: {message}"


def test_random_data_needs_classes_or_y(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}").replace(
        "{random: {samples: 8, x: [4], y: [1]}}",
        "{random: {samples: 8, x: [4], y: [1], classes: 3}}")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'y:')}: data.train.random.y: give classes "
                               "or y, not both")


def test_unknown_data_source(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}").replace(
        "{random: {samples: 8, x: [4], y: [1]}}", "{npzz: {path: a.npz}}")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'npzz')}: data.train: unknown data source "
                               "'npzz' (did you mean 'npz'?)")


def test_kernel_size_must_be_an_int_or_a_pair(tmp_path):
    text = with_layers("Conv2D: {filters: 2, kernel_size: [3, 3, 3], input_shape: [8, 8, 1]}")
    path = write(tmp_path, text)
    assert one_error(path) == (
        f"{path}:{where(text, '[3, 3, 3]')}: model.sequential[0].Conv2D.kernel_size: expected a "
        "positive integer or a list of two positive integers, got [3, 3, 3]")


def test_bad_initializer_names_and_arguments(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4, kernel_initializer: glorot_unifrom, "
                       "bias_initializer: {random_normal: {stdev: 1}}}")
    path = write(tmp_path, text)
    assert errors(path) == [
        f"{path}:{where(text, 'glorot_unifrom')}: model.sequential[0].Dense.kernel_initializer: "
        "unknown initializer 'glorot_unifrom' (did you mean 'glorot_uniform'?)",
        f"{path}:{where(text, 'stdev')}: "
        "model.sequential[0].Dense.bias_initializer.random_normal: unknown key 'stdev' (did "
        "you mean 'stddev'?); valid keys: mean, stddev",
    ]


def test_every_error_is_reported_at_once_sorted_by_position(tmp_path):
    text = textwrap.dedent("""\
        name: broken
        model:
          sequential:
            - Dense: {units: 64, activation: relu, input_dim: 20}
            - Dropout: {rate: 0.5}
            - Dense: {units: 64, activation: relu}
            - Dense: {units: -64, activation: relu}
            - Dropout: {rate: 0.5}
            - Dense: {units: 10, activation: reluu}
        compile:
          optimizer: {SGD: {lr: 0.01, momentum: -0.9}}
          loss: categorical_crossentropy
        data:
          train: {random: {samples: 1000, x: [20], classes: 10, one_hot: true}}
        fit: {epochs: 0, batch_size: 128}
        """)
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [where(text, v) for v in ("-64", "reluu", "-0.9", "0, batch")] == [
        "7:22", "9:38", "11:41", "15:15"]
    assert str(info.value) == "\n".join([
        f"{path}:7:22: model.sequential[3].Dense.units: must be a positive integer, got -64",
        f"{path}:9:38: model.sequential[5].Dense.activation: unknown activation 'reluu' "
        "(did you mean 'relu'?)",
        f"{path}:11:41: compile.optimizer.SGD.momentum: must be a non-negative number, "
        "got -0.9",
        f"{path}:15:15: fit.epochs: must be a positive integer, got 0",
        f"4 errors in {path}",
    ])


def test_dict_configs_are_validated_with_paths(tmp_path):
    data = yaml.safe_load(MLP)
    data["fit"]["epochs"] = 0
    assert one_error(data) == "<dict>: fit.epochs: must be a positive integer, got 0"


# --- overrides ----------------------------------------------------------------------------------


def test_overrides_are_applied_before_validation(tmp_path):
    cfg = load_config(write(tmp_path, MLP), overrides={
        "fit.epochs": 1,
        "seed": 3,
        "compile.optimizer.SGD.lr": 0.5,
        "model.sequential.0.Dense.units": 32,
        "data.train.random.samples": 10,
        "data.validation": {"random": {"samples": 5, "x": [20], "classes": 10}},
    })
    assert (cfg.fit.epochs, cfg.seed, cfg.data.train.args.samples) == (1, 3, 10)
    assert cfg.compile.optimizer.kwargs()["learning_rate"] == 0.5
    assert cfg.model.sequential[0].args.units == 32
    assert cfg.data.validation.args.samples == 5
    assert cfg.source.locate(("fit", "epochs")) == SourcePos("<override>")
    assert cfg.source.locate(("data", "validation", "random", "x")) == SourcePos("<override>")
    assert cfg.source.locate(("fit", "batch_size")).line == 15  # untouched values keep theirs


def test_an_override_replaces_a_string_on_its_way(tmp_path):
    path = write(tmp_path, with_layers("Dense: {units: 1, input_dim: 4}"))
    cfg = load_config(path, {"compile.optimizer.SGD.momentum": 0.9, "fit.epochs": 2})
    assert cfg.compile.optimizer.kwargs()["momentum"] == 0.9
    assert cfg.fit.epochs == 2  # the missing fit section was created


def test_bad_override_values_are_reported_at_the_override(tmp_path):
    path = write(tmp_path, MLP)
    assert errors(path, {"fit.epochs": 0, "fit.epoch": 2, "model.sequential.9.Dense.units": 1,
                         "model.sequential.first": 1}) == [
        "<override>: override 'model.sequential.9.Dense.units': index 9 is out of range, "
        "model.sequential has 3 items",
        "<override>: override 'model.sequential.first': model.sequential is a list; index it "
        "with a number, e.g. model.sequential.0",
        "<override>: fit.epochs: must be a positive integer, got 0",
        "<override>: fit: unknown key 'epoch' (did you mean 'epochs'?); valid keys: epochs, "
        "batch_size, shuffle, validation_split, callbacks, terminate_on_nan, class_weight",
    ]


def test_override_and_file_errors_are_reported_together(tmp_path):
    path = write(tmp_path, with_layers("Dense: {units: 0, input_dim: 4}"))
    assert errors(path, {"fit.batch_size": -1}) == [
        f"{path}:3:22: model.sequential[0].Dense.units: must be a positive integer, got 0",
        "<override>: fit.batch_size: must be a positive integer, got -1",
    ]


@pytest.mark.parametrize("text, expected", [
    ("fit.epochs=3", ("fit.epochs", 3)),
    ("compile.optimizer=adam", ("compile.optimizer", "adam")),
    ("data.train.random.x=[8, 8]", ("data.train.random.x", [8, 8])),
    ("compile.optimizer.SGD.lr=1e-3", ("compile.optimizer.SGD.lr", 1e-3)),
    ("name=a: b", ("name", {"a": "b"})),
])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_parse_override_needs_an_equals_sign():
    with pytest.raises(ConfigError):
        parse_override("fit.epochs")


def test_the_json_schema_accepts_what_load_config_accepts_and_rejects_unknown_keys():
    jsonschema = pytest.importorskip("jsonschema")  # an editor-side check; not a dependency
    validator = jsonschema.Draft202012Validator(json_schema())
    conv = yaml.safe_load(with_layers(
        "Conv2D: {filters: 2, kernel_size: 3, strides: [1, 1], input_shape: [8, 8, 1], "
        "kernel_initializer: {random_normal: {stddev: 0.1}}, bias_initializer: ones}",
        "MaxPooling2D: null",
        "Flatten:",
        "Dense: {units: 1, activation: sigmoid}",
    ))
    for data in (yaml.safe_load(MLP), conv, load_config(conv).to_data()):
        assert list(validator.iter_errors(data)) == []
    bad = yaml.safe_load(MLP)
    bad["model"]["sequential"][0]["Dense"]["unit"] = 3
    assert list(validator.iter_errors(bad))


def test_validation_data_and_validation_split_together_conflict(tmp_path):
    text = with_layers("Dense: {units: 1, input_dim: 4}") + (
        "  validation: {random: {samples: 4, x: [4], y: [1]}}\n"
        "fit: {validation_split: 0.2}\n")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'validation_split')}: fit.validation_split: "
                               "give data.validation or fit.validation_split, not both")
