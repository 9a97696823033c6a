"""Functional models, named models, multi-output compile and multi-IO data in the config:
what validates, and every mistake at its file:line:col (inside a graph line where it is)."""
from __future__ import annotations

import textwrap
import pytest
import yaml

from kconf.config import (
    GraphCall,
    json_schema,
    load_config,
    locate_graph_part,
    parse_graph_line,
)
from kconf.errors import SourcePos
from tests.test_config import errors, one_error, where, write

SHARED_LSTM = """\
name: shared_lstm
model:
  functional:
    inputs:
      tweet_a: {shape: [280, 256]}
      tweet_b: {shape: [280, 256]}
    layers:
      shared_lstm: {LSTM: {units: 64}}
      merge:       {Concatenate: {axis: -1}}
      predictions: {Dense: {units: 1, activation: sigmoid}}
    graph:
      - encoded_a = shared_lstm(tweet_a)
      - encoded_b = shared_lstm(tweet_b)
      - merged = merge(encoded_a, encoded_b)
      - out = predictions(merged)
    outputs: [out]
compile:
  optimizer: rmsprop
  loss: binary_crossentropy
  metrics: [accuracy]
data:
  train: {random: {samples: 16, x: {tweet_a: [280, 256], tweet_b: [280, 256]}, classes: 2}}
"""

TWITTER = """\
name: twitter_multi_io
model:
  functional:
    inputs:
      main_input: {shape: [100], dtype: int32}
      aux_input: {shape: [5]}
    layers:
      embedding: {Embedding: {output_dim: 512, input_dim: 10000, input_length: 100}}
      lstm: {LSTM: {units: 32}}
      aux_output: {Dense: {units: 1, activation: sigmoid}}
      dense_1: {Dense: {units: 64, activation: relu}}
      dense_2: {Dense: {units: 64, activation: relu}}
      dense_3: {Dense: {units: 64, activation: relu}}
      main_output: {Dense: {units: 1, activation: sigmoid}}
    graph:
      - x = embedding(main_input)
      - lstm_out = lstm(x)
      - aux = aux_output(lstm_out)
      - x = concatenate(lstm_out, aux_input)
      - x = dense_1(x)
      - x = dense_2(x)
      - x = dense_3(x)
      - main = main_output(x)
    outputs: [main, aux]
compile:
  optimizer: rmsprop
  loss: binary_crossentropy
  loss_weights: {main_output: 1.0, aux_output: 0.2}
data:
  train:
    random:
      samples: 32
      x:
        main_input: {shape: [100], dtype: int32, high: 10000}
        aux_input: [5]
      y: {main_output: {classes: 2}, aux_output: {classes: 2}}
fit: {epochs: 50, batch_size: 32}
"""

# A functional model in 8 lines, for the error tests; the graph starts on line 7.
SMALL = """\
model:
  functional:
    inputs:
      a: {shape: [4]}
    layers:
      dense: {Dense: {units: 2}}
    graph:
{graph}
    outputs: [{outputs}]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 8, x: [4], y: [2]}}
"""


def small(*lines: str, outputs: str = "y") -> str:
    graph = "".join(f"      - {line}\n" for line in lines).rstrip("\n")
    return SMALL.replace("{graph}", graph).replace("{outputs}", outputs)


# --- accepted models ----------------------------------------------------------------------------


def test_the_design_shared_lstm_validates(tmp_path):
    cfg = load_config(write(tmp_path, SHARED_LSTM))
    fn = cfg.model.functional
    assert cfg.model.sequential is None and cfg.model.kind == "functional"
    assert list(fn.inputs) == ["tweet_a", "tweet_b"] == cfg.input_names()
    assert fn.inputs["tweet_a"].shape == (280, 256) and fn.inputs["tweet_a"].dtype == "float32"
    assert {n: s.class_name for n, s in fn.layers.items()} == {
        "shared_lstm": "LSTM", "merge": "Concatenate", "predictions": "Dense"}
    assert [(c.targets, c.callee, c.args) for c in fn.graph] == [
        (("encoded_a",), "shared_lstm", ("tweet_a",)),
        (("encoded_b",), "shared_lstm", ("tweet_b",)),
        (("merged",), "merge", ("encoded_a", "encoded_b")),
        (("out",), "predictions", ("merged",)),
    ]
    assert all(c.helper is None for c in fn.graph)
    assert cfg.output_names() == ["out"] and cfg.output_aliases() == {"predictions": "out"}
    assert cfg.compile.loss_for(["out"]) == ["binary_crossentropy"]
    assert cfg.compile.metrics_for(["out"]) == [["accuracy"]]
    assert cfg.compile.loss_weights_for(["out"]) == [1.0]
    assert fn.layers["merge"].args.layer_kwargs() == {"axis": -1}
    assert fn.layers["shared_lstm"].args.layer_kwargs() == {
        "units": 64, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
        "kernel_initializer": "glorot_uniform", "recurrent_initializer": "orthogonal",
        "bias_initializer": "zeros", "unit_forget_bias": True, "return_sequences": False,
        "return_state": False, "go_backwards": False, "zero_output_for_mask": False,
    }
    x = cfg.data.train.args.x_for(cfg.input_names())
    assert [(a.shape, a.dtype, a.bounds()) for a in x] == [((280, 256), "float32", (0.0, 1.0))] * 2


def test_the_docs_twitter_multi_io_model_validates(tmp_path):
    cfg = load_config(write(tmp_path, TWITTER))
    fn = cfg.model.functional
    assert fn.inputs["main_input"].dtype == "int32"
    emb = fn.layers["embedding"].args
    assert emb.layer_kwargs() == {
        "input_dim": 10000, "output_dim": 512,
        "embeddings_initializer": {"random_uniform": {"minval": -0.05, "maxval": 0.05}},
        "mask_zero": False}
    assert emb.input_hint() == (None, (100,))
    merge = fn.graph[3]
    assert (merge.callee, merge.args) == ("concatenate", ("lstm_out", "aux_input"))
    assert merge.helper.class_name == "Concatenate"
    assert merge.helper.args.layer_kwargs() == {"axis": -1}
    outputs = cfg.output_names()
    assert outputs == ["main", "aux"]
    assert cfg.output_aliases() == {"main_output": "main", "aux_output": "aux"}
    aliases = cfg.output_aliases()
    assert cfg.compile.loss_for(outputs, aliases) == ["binary_crossentropy"] * 2
    assert cfg.compile.loss_weights_for(outputs, aliases) == [1.0, 0.2]
    train = cfg.data.train.args
    main, aux = train.x_for(cfg.input_names())
    assert (main.shape, main.dtype, main.bounds()) == ((100,), "int32", (0, 10000))
    assert (aux.shape, aux.dtype) == ((5,), "float32")
    assert [t.classes for t in train.y_for(outputs, cfg.output_aliases())] == [2, 2]


def test_graph_lines_rebind_names_take_tuples_lists_and_helper_keywords(tmp_path):
    text = textwrap.dedent("""\
        model:
          functional:
            inputs: {a: {shape: [3, 4]}, b: {shape: [3, 4]}}
            layers:
              lstm: {LSTM: {units: 4, return_state: true, return_sequences: true}}
              merge: {Concatenate: {}}
            graph:
              - x, h, c = lstm(a)
              - x = merge([x, b])
              - y = concatenate([x, b], axis=1)
              - z = dot(h, c, axes=(1, 1), normalize=True)
              - s = add(h, c)
            outputs: [y, z, s]
        compile: {optimizer: sgd, loss: mse}
        data:
          train: {random: {samples: 4, x: {a: [3, 4], b: [3, 4]}, y: {y: [6, 8], z: [1], s: [4]}}}
        """)
    cfg = load_config(write(tmp_path, text))
    graph = cfg.model.functional.graph
    assert graph[0].targets == ("x", "h", "c")
    assert graph[1].args == ("x", "b") and graph[1].helper is None
    assert graph[2].helper.args.layer_kwargs() == {"axis": 1}
    assert graph[3].helper.args.layer_kwargs() == {"axes": (1, 1), "normalize": True}
    assert graph[4].helper.class_name == "Add" and graph[4].helper.args.layer_kwargs() == {}
    assert cfg.output_aliases() == {}  # helpers are anonymous; lstm computes no output


def test_parse_graph_line_records_where_each_name_starts():
    call = parse_graph_line("x, h = lstm([a, b])")
    assert isinstance(call, GraphCall) and str(call) == "x, h = lstm([a, b])"
    assert (call.targets, call.callee, call.args, call.helper) == (("x", "h"), "lstm",
                                                                   ("a", "b"), None)
    assert (call.target_offsets, call.callee_offset, call.arg_offsets) == ((0, 3), 7, (13, 16))
    assert call.span(("arg", 1)) == (16, "b") and call.span("callee") == (7, "lstm")


def test_outputs_may_be_one_name(tmp_path):
    cfg = load_config(write(tmp_path, small("y = dense(a)", outputs="y").replace("[y]", "y")))
    assert cfg.model.functional.outputs == ["y"]


def test_a_functional_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(write(tmp_path, TWITTER))
    data = cfg.to_data()
    assert data["model"]["functional"]["graph"][3] == "x = concatenate(lstm_out, aux_input)"
    assert "models" not in data  # an empty models section is left out
    again = load_config(write(tmp_path, yaml.safe_dump(data, sort_keys=False), "again.yaml"))
    assert again == cfg and again.to_data() == data


def test_the_json_schema_accepts_functional_configs():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    for text in (SHARED_LSTM, TWITTER):
        data = yaml.safe_load(text)
        assert list(validator.iter_errors(data)) == []
        assert list(validator.iter_errors(load_config(data).to_data())) == []
    bad = yaml.safe_load(TWITTER)
    bad["model"]["functional"]["inputs"]["aux_input"]["dtype"] = "float16"
    assert list(validator.iter_errors(bad))


# --- graph lines that are not graph lines -------------------------------------------------------

USAGE = "a graph line reads `result = layer(tensor, ...)`"


@pytest.mark.parametrize("line, why", [
    ("x = dense(a) + 1", "the value is a call of a layer, a model or a helper"),
    ("x = dense(a[0])", "the arguments are tensor names, or one list of them"),
    ("x = dense(a.b)", "the arguments are tensor names, or one list of them"),
    ("x = dense(dense(a))", "the arguments are tensor names, or one list of them"),
    ("x = dense('a')", "the arguments are tensor names, or one list of them"),
    ("x = dense([a], b)", "the arguments are tensor names, or one list of them"),
    ("x = dense(*a)", "the arguments are tensor names, or one list of them"),
    ("x = layers.dense(a)", "call a layer, a model or a helper by its name only (declare a "
                            "layer under layers:)"),
    ("x = Dense(64)(a)", "a layer is not built inside a graph line: declare it under layers: "
                         "and call it by its name"),
    ("x = dense()", "call it on at least one tensor"),
    ("dense(a)", "name the result of each call (`x = ...`)"),
    ("x = y = dense(a)", "only one `=` per line"),
    ("x[0] = dense(a)", "the result is a name, or names separated by commas"),
    ("x.y = dense(a)", "the result is a name, or names separated by commas"),
    ("x += dense(a)", "name the result of each call (`x = ...`)"),
    ("x = dense(a); y = dense(x)", "give one call per line"),
    ("import os", "name the result of each call (`x = ...`)"),
    ("x = dense(a", "this one is not valid Python syntax"),
    ("x = concatenate(a, a, axs=1)", "concatenate takes the keyword axis, not 'axs' (did you "
                                     "mean 'axis'?)"),
    ("x = add(a, a, axis=1)", "add takes no keyword arguments"),
    ("x = concatenate(a, a, axis=0)", "concatenate: axis: axis 0 is the batch axis; count the "
                                      "axes of one sample from 1, or from the end with -1"),
    ("x = concatenate(a, a, axis=a)", "a keyword's value is an integer, True/False or a pair "
                                      "like (1, 2)"),
    ("x = dot(a, a, axes=1, normalize=true)", "write True, as in Python"),
    ("x = dot(a, a, axes=(1, 2, 3))", "dot: axes: expected an axis (a nonzero integer) or a "
                                      "list of two, one per input, got [1, 2, 3]"),
    ("x = concatenate(a, a, **k)", "`**` is not allowed; write each keyword"),
    ("x = dense(\u00e9)", "names are letters, digits and '_' (ASCII)"),
])
def test_lines_of_another_form_are_refused_at_the_line(tmp_path, line, why):
    text = small(f'"{line}"' if ":" in line or "#" in line else line)
    path = write(tmp_path, text)
    assert one_error(path) == f"{path}:8:9: model.functional.graph[0]: {USAGE}: {why}"


def test_code_in_a_graph_line_is_refused_never_run(tmp_path):
    marker = tmp_path / "ran"
    line = f"x = __import__('os').system('touch {marker}')"
    path = write(tmp_path, small(line))
    assert one_error(path) == (f"{path}:8:9: model.functional.graph[0]: {USAGE}: call a "
                               "layer, a model or a helper by its name only (declare a layer "
                               "under layers:)")
    with pytest.raises(ValueError, match="the arguments are tensor names"):
        parse_graph_line(f"y = exec('open(\"{marker}\", \"w\")')")
    assert not marker.exists()
    # parsing never evaluates: even a well-formed call of a builtin is only read
    call = parse_graph_line("y = exec(a)")
    assert (call.callee, call.args) == ("exec", ("a",))


def test_a_graph_line_must_be_a_string(tmp_path):
    path = write(tmp_path, small("{y: dense(a)}"))
    assert one_error(path) == (f"{path}:8:9: model.functional.graph[0]: {USAGE}, got a "
                               "mapping")


# --- static checks, each at the name it is about ------------------------------------------------


def test_unknown_callee_points_inside_the_line_with_a_suggestion(tmp_path):
    text = small("y = dens(a)", "z = dense(y)", outputs="z")
    path = write(tmp_path, text)
    assert where(text, "dens(") == "8:13"
    assert errors(path) == [
        f"{path}:8:13: model.functional.graph[0]: 'dens' is not a layer (did you mean "
        "'dense'?)",
    ]


def test_the_design_broken_example_points_at_mergd(tmp_path):
    text = SHARED_LSTM.replace("merged = merge(", "merged = mergd(")
    path = write(tmp_path, text, "broken.yaml")
    assert one_error(path) == (f"{path}:{where(text, 'mergd')}: model.functional.graph[2]: "
                               "'mergd' is not a layer (did you mean 'merge'?)")


@pytest.mark.parametrize("callee, message", [
    ("a", "'a' is a tensor, not a layer: call a layer on it (`y = layer(a)`)"),
    ("Dense", "'Dense' is a layer class, not a layer: declare one under layers (e.g. dense: "
              "{Dense: {...}}) and call it by that name"),
    ("frobnicate", "'frobnicate' is not a layer, a model or a helper; layers and models: "
                   "dense"),
])
def test_calling_what_is_not_a_layer(tmp_path, callee, message):
    text = small(f"y = {callee}(a)", "z = dense(a)", outputs="y, z")
    path = write(tmp_path, text)
    found = [e for e in errors(path) if "graph[0]" in e]
    assert found == [f"{path}:8:13: model.functional.graph[0]: {message}"]


def test_unknown_tensor_with_a_suggestion(tmp_path):
    text = SHARED_LSTM.replace("merge(encoded_a, encoded_b)", "merge(encoded_a, encoded_c)")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'encoded_c')}: model.functional.graph[2]: "
                               "unknown tensor 'encoded_c' (did you mean 'encoded_a'?)")


def test_a_name_used_before_its_line_names_the_line_that_defines_it(tmp_path):
    text = small("y = dense(z)", "z = dense(a)", outputs="y")
    path = write(tmp_path, text)
    assert where(text, "z)") == "8:19"
    assert one_error(path) == (f"{path}:8:19: model.functional.graph[0]: 'z' is used before "
                               "it is defined (line 9 defines it)")


def test_a_cycle_is_a_use_before_definition(tmp_path):
    text = small("x = add(a, y)", "y = dense(x)", outputs="y")
    path = write(tmp_path, text)
    assert errors(path) == [f"{path}:8:20: model.functional.graph[0]: 'y' is used before it "
                            "is defined (line 9 defines it)"]
    text = small("y = add(a, y)", "z = dense(y)", outputs="z")  # its own target: not yet
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:8:20: model.functional.graph[0]: 'y' is used before "
                               "it is defined (line 8 defines it)")


def test_rebinding_refers_to_the_latest_earlier_binding(tmp_path):
    text = small("y = dense(a)", "y = relu(y)", outputs="y").replace(
        "dense: {Dense: {units: 2}}", "dense: {Dense: {units: 4}}\n      relu: {Activation: "
                                      "{activation: relu}}")
    cfg = load_config(write(tmp_path, text))
    assert [c.args for c in cfg.model.functional.graph] == [("a",), ("y",)]


def test_a_layer_used_as_a_tensor(tmp_path):
    text = small("x = dense(a)", "y = add(x, dense)", outputs="y")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:9:20: model.functional.graph[1]: 'dense' is a layer, "
                               "not a tensor: call it on a tensor (`y = dense(x)`)")


@pytest.mark.parametrize("line, col, message", [
    ("a = dense(a)", 9, "'a' is an input; give the result another name"),
    ("y, y = dense(a)", 12, "'y' is assigned twice on this line"),
])
def test_targets_cannot_shadow_inputs(tmp_path, line, col, message):
    path = write(tmp_path, small(line, "y = dense(a)", outputs="y"))
    assert one_error(path) == f"{path}:8:{col}: model.functional.graph[0]: {message}"


def test_a_result_may_share_its_layers_name_as_in_the_docs(tmp_path):
    cfg = load_config(write(tmp_path, small("dense = dense(a)", outputs="dense")))
    assert cfg.output_names() == ["dense"]


def test_outputs_must_be_computed(tmp_path):
    text = small("y = dense(a)", outputs="y, yy, dense, y")
    path = write(tmp_path, text)
    assert [e for e in errors(path) if "outputs" in e.split(": ")[1]] == [
        f"{path}:{where(text, 'yy')}: model.functional.outputs[1]: output 'yy' is not computed "
        "by any graph line (did you mean 'y'?)",
        f"{path}:{where(text, 'dense, y')}: model.functional.outputs[2]: 'dense' is a layer; "
        "outputs are tensors, the results of graph lines (did you mean 'y', the tensor it "
        "computes?)",
        f"{path}:{where(text, 'y]')}: model.functional.outputs[3]: output 'y' is listed twice",
    ]


def test_an_unused_input_and_an_uncalled_layer_are_errors_at_their_keys(tmp_path):
    text = small("y = dense(a)").replace(
        "      a: {shape: [4]}\n", "      a: {shape: [4]}\n      aux_input: {shape: [5]}\n"
    ).replace("dense: {Dense: {units: 2}}", "dense: {Dense: {units: 2}}\n      dense_3: "
                                            "{Dense: {units: 2}}"
    ).replace("x: [4]", "x: {a: [4], aux_input: [5]}")
    path = write(tmp_path, text)
    assert errors(path) == [
        f"{path}:{where(text, 'aux_input')}: model.functional.inputs.aux_input: input "
        "'aux_input' is not used by any graph line",
        f"{path}:{where(text, 'dense_3')}: model.functional.layers.dense_3: layer 'dense_3' is "
        "declared but no graph line calls it",
    ]


def test_names_are_declared_once_across_inputs_layers_models_and_helpers(tmp_path):
    text = textwrap.dedent("""\
        models:
          enc: {sequential: [{Dense: {units: 2}}]}
        model:
          functional:
            inputs: {a: {shape: [4]}, enc: {shape: [4]}, add: {shape: [4]}}
            layers:
              a: {Dense: {units: 2}}
              concatenate: {Concatenate: {}}
              named: {Dense: {units: 2, name: other}}
            graph:
              - x = a(a)
              - y = concatenate(x, enc)
              - z = named(add)
            outputs: [y, z]
        compile: {optimizer: sgd, loss: mse}
        data:
          train: {random: {samples: 4, x: {a: [4], enc: [4], add: [4]}, y: {y: [4], z: [2]}}}
        """)
    path = write(tmp_path, text)
    enc, add, named = (where(text, k) for k in ("enc: {shape", "add: {shape", "name: other"))
    assert errors(path) == [
        f"{path}:{enc}: model.functional.inputs.enc: 'enc' names both an input and a model "
        "(models.enc); give each its own name",
        f"{path}:{add}: model.functional.inputs.add: 'add' is the name of a helper (the merge "
        "layer Add); give the input another name",
        f"{path}:7:7: model.functional.layers.a: 'a' names both an input and a layer; give "
        "each its own name",
        f"{path}:8:7: model.functional.layers.concatenate: 'concatenate' is the name of a "
        "helper (the merge layer Concatenate); give the layer another name",
        f"{path}:{named}: model.functional.layers.named.Dense.name: a functional model's layer "
        "is named by its key ('named'); remove name",
    ]


def test_names_must_be_python_style(tmp_path):
    text = small("y = dense(a)").replace("      a: {shape: [4]}", "      main-input: {shape: [4]}")
    path = write(tmp_path, text)
    assert one_error(path) == (
        f"{path}:{where(text, 'main-input')}: model.functional.inputs.main-input: 'main-input' "
        "cannot be a name in graph lines: use letters, digits and '_', not starting with a "
        "digit")


def test_every_problem_is_reported_at_once_with_schema_errors(tmp_path):
    text = SHARED_LSTM.replace("units: 64", "units: -64").replace(
        "merge(encoded_a, encoded_b)", "merge(encoded_a, encoded_c)")
    path = write(tmp_path, text)
    assert errors(path) == [  # a graph is checked once its model section validates
        f"{path}:{where(text, '-64')}: model.functional.layers.shared_lstm.LSTM.units: must be "
        "a positive integer, got -64",
    ]
    text = SHARED_LSTM.replace("merge(encoded_a, encoded_b)", "merge(encoded_a, encoded_c)") \
        + "fit: {epochs: 0}\n"
    path = write(tmp_path, text)
    assert errors(path) == [
        f"{path}:{where(text, 'encoded_c')}: model.functional.graph[2]: unknown tensor "
        "'encoded_c' (did you mean 'encoded_a'?)",
        f"{path}:{where(text, '0}')}: fit.epochs: must be a positive integer, got 0",
    ]


# --- positions inside graph lines ---------------------------------------------------------------


def test_locate_graph_part_plain_quoted_and_block_scalars(tmp_path):
    text = textwrap.dedent("""\
        model:
          functional:
            inputs: {a: {shape: [4]}, b: {shape: [4]}}
            layers: {d: {Dense: {units: 4}}, m: {Add: {}}}
            graph:
              - x = d(a)
              - "y = m(x,  b)"
              - 'z = m(y, x)'
              - |-
                w = d(z)
            outputs: [w]
        compile: {optimizer: sgd, loss: mse}
        data:
          train: {random: {samples: 4, x: {a: [4], b: [4]}, y: [4]}}
        """)
    path = write(tmp_path, text)
    cfg = load_config(path)

    def at(needle: str) -> SourcePos:
        line, col = where(text, needle).split(":")
        return SourcePos(str(path), int(line), int(col))

    assert locate_graph_part(cfg, 0, "callee") == at("d(a)")
    assert locate_graph_part(cfg, 0, ("target", 0)) == at("x = d")
    assert locate_graph_part(cfg, 0, ("arg", 0)) == at("a)")
    assert locate_graph_part(cfg, 1, ("arg", 0)) == at("x,  b")
    assert locate_graph_part(cfg, 1, ("arg", 1)) == at("b)")
    assert locate_graph_part(cfg, 2, "callee") == at("m(y")
    assert locate_graph_part(cfg, 2, ("target", 0)) == at("z = m")
    assert locate_graph_part(cfg, 3, ("arg", 0)) == at("|-")  # a block scalar: its start
    assert locate_graph_part(cfg, 3) == at("|-")
    assert locate_graph_part(cfg, 1) == at('"y = m')


def test_locate_graph_part_in_a_dict_and_after_an_override(tmp_path):
    data = yaml.safe_load(SHARED_LSTM)
    cfg = load_config(data)
    assert locate_graph_part(cfg, 2, ("arg", 1)) == SourcePos("<dict>")
    path = write(tmp_path, SHARED_LSTM)
    cfg = load_config(path, {"model.functional.graph.3": "out = predictions(merged)"})
    assert locate_graph_part(cfg, 3, "callee") == SourcePos("<override>")
    assert locate_graph_part(cfg, 2, "callee") == SourcePos(str(path), 14, 18)


def test_an_error_in_an_overridden_graph_line_is_at_the_override(tmp_path):
    path = write(tmp_path, SHARED_LSTM)
    assert one_error(path, {"model.functional.graph.3": "out = predictons(merged)"}) == (
        "<override>: model.functional.graph[3]: 'predictons' is not a layer (did you mean "
        "'predictions'?)")


# --- named models -------------------------------------------------------------------------------

TIME_DISTRIBUTED = """\
models:
  classifier:
    sequential:
      - Dense: {units: 64, activation: relu, input_shape: [784]}
      - Dense: {units: 64, activation: relu}
      - Dense: {units: 10, activation: softmax}
model:
  functional:
    inputs:
      input_sequences: {shape: [20, 784]}
    layers:
      processed: {TimeDistributed: {layer: classifier}}
    graph:
      - processed_sequences = processed(input_sequences)
    outputs: processed_sequences
compile: {optimizer: rmsprop, loss: categorical_crossentropy}
data:
  train: {random: {samples: 8, x: [20, 784], y: [20, 10]}}
"""


def test_time_distributed_wraps_a_named_model(tmp_path):
    cfg = load_config(write(tmp_path, TIME_DISTRIBUTED))
    td = cfg.model.functional.layers["processed"]
    assert td.class_name == "TimeDistributed"
    assert td.args.layer == "classifier" == td.args.model_name
    assert td.args.layer_kwargs() == {}
    named = cfg.named_models()["classifier"]
    assert named.name == "classifier" and named.path == ("models", "classifier")
    assert named.config.kind == "sequential" and named.source is cfg.source
    assert [s.args.units for s in named.config.sequential] == [64, 64, 10]
    assert list(named.models) == ["classifier"]


def test_time_distributed_wraps_a_layer_in_a_sequential_model(tmp_path):
    text = TIME_DISTRIBUTED.replace(
        "model:\n  functional:", "model:\n  sequential:\n    - TimeDistributed: {layer: {Dense: "
        "{units: 8}}, input_shape: [20, 784]}\n  unused:")
    text = text[:text.index("  unused:")] + text[text.index("compile:"):]
    cfg = load_config(write(tmp_path, text))
    (td,) = cfg.model.sequential
    assert td.args.layer.class_name == "Dense" and td.args.model_name is None
    assert td.args.layer.args.layer_kwargs()["units"] == 8
    assert td.args.input_hint() == (None, (20, 784))


def test_the_wrapped_layer_takes_no_input_shape(tmp_path):
    text = TIME_DISTRIBUTED.replace("{layer: classifier}",
                                    "{layer: {Dense: {units: 3, input_dim: 784}}}")
    path = write(tmp_path, text)
    assert one_error(path) == (
        f"{path}:{where(text, 'input_dim')}: "
        "model.functional.layers.processed.TimeDistributed.layer.Dense.input_dim: give the "
        "input shape to TimeDistributed (with the time axis first), not to the layer it wraps")


def test_the_wrapped_layer_takes_no_activity_regularizer(tmp_path):
    # Keras 3's TimeDistributed runs the wrapped layer's call(): its activity regularizer
    # adds no loss (checked with Keras 3.15: model.losses is empty)
    text = TIME_DISTRIBUTED.replace(
        "{layer: classifier}", "{layer: {Dense: {units: 3, activity_regularizer: l2}}}")
    path = write(tmp_path, text)
    assert one_error(path) == (
        f"{path}:{where(text, 'activity_regularizer')}: model.functional.layers.processed.TimeDistributed.layer"
        ".Dense.activity_regularizer: Keras's TimeDistributed ignores the activity_regularizer "
        "of the layer it wraps (it adds no loss); for a penalty on the output, put an "
        "ActivityRegularization layer after the TimeDistributed")


def test_unknown_model_names(tmp_path):
    text = TIME_DISTRIBUTED.replace("{layer: classifier}", "{layer: clasifier}")
    path = write(tmp_path, text)
    assert errors(path) == [
        f"{path}:{where(text, 'clasifier')}: model.functional.layers.processed.TimeDistributed"
        ".layer: unknown model 'clasifier' (did you mean 'classifier'?)",
    ]
    text = small("y = dense(a)").replace("dense: {Dense: {units: 2}}",
                                         "dense: {TimeDistributed: {layer: encoder}}")
    path = write(tmp_path, text)
    assert one_error(path) == (
        f"{path}:{where(text, 'encoder')}: model.functional.layers.dense.TimeDistributed.layer: "
        "unknown model 'encoder': no models section defines it (wrap a layer, like {Dense: "
        "{units: 10}}, or define the model under models)")


def test_a_model_is_called_like_a_layer(tmp_path):
    text = TIME_DISTRIBUTED.replace(
        "      - processed_sequences = processed(input_sequences)\n",
        "      - processed_sequences = processed(input_sequences)\n"
        "      - again = classifier(processed_sequences)\n").replace(
        "outputs: processed_sequences", "outputs: [again]")
    cfg = load_config(write(tmp_path, text))
    call = cfg.model.functional.graph[1]
    assert (call.callee, call.helper) == ("classifier", None)
    assert cfg.output_aliases() == {"classifier": "again"}


def test_a_model_from_another_file(tmp_path):
    (tmp_path / "parts").mkdir()
    other = textwrap.dedent("""\
        name: encoder
        models:
          inner: {sequential: [{Dense: {units: 10}}]}
        model:
          functional:
            inputs: {x: {shape: [784]}}
            layers: {head: {Dense: {units: 10}}}
            graph:
              - y = head(x)
              - z = inner(y)
            outputs: z
        compile: {optimizer: sgd, loss: mse}
        """)
    write(tmp_path / "parts", other, "encoder.yaml")
    text = TIME_DISTRIBUTED.replace(
        "  classifier:\n    sequential:", "  classifier: {file: parts/encoder.yaml}\n  old:\n"
                                          "    sequential:")
    text = text.replace("      processed: {TimeDistributed: {layer: classifier}}",
                        "      processed: {TimeDistributed: {layer: classifier}}\n"
                        "      old_td: {TimeDistributed: {layer: old}}")
    text = text.replace("      - processed_sequences = processed(input_sequences)\n",
                        "      - processed_sequences = processed(input_sequences)\n"
                        "      - other = old_td(input_sequences)\n")
    text = text.replace("outputs: processed_sequences", "outputs: [processed_sequences, other]")
    text = text.replace("y: [20, 10]}", "y: {processed_sequences: [20, 10], other: [20, 10]}}")
    path = write(tmp_path, text)
    cfg = load_config(path)
    named = cfg.named_models()["classifier"]
    assert named.config.kind == "functional" and named.path == ("model",)
    assert named.source.file == str(tmp_path / "parts" / "encoder.yaml")
    assert list(named.models) == ["inner"]
    assert named.models["inner"].config.sequential[0].args.units == 10
    assert locate_graph_part(cfg, 1, ("arg", 0), model="classifier") == SourcePos(
        str(tmp_path / "parts" / "encoder.yaml"), 10, 19)
    assert cfg.to_data()["models"]["classifier"] == {"file": "parts/encoder.yaml"}


def test_model_file_problems_are_located(tmp_path):
    text = TIME_DISTRIBUTED.replace("  classifier:\n    sequential:",
                                    "  classifier: {file: nope.yaml}\n  old:\n    sequential:")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'nope.yaml')}: models.classifier.file: "
                               f"model file not found: {tmp_path / 'nope.yaml'}")
    write(tmp_path, "model:\n  sequential:\n    - Dense: {units: 0}\n", "nope.yaml")
    assert one_error(path) == (f"{tmp_path / 'nope.yaml'}:3:22: model.sequential[0].Dense."
                               "units: must be a positive integer, got 0")
    write(tmp_path, f"models:\n  back: {{file: {path.name}}}\nmodel:\n  sequential:\n"
                    "    - Dense: {units: 1}\n", "nope.yaml")
    assert one_error(path) == (
        f"{tmp_path / 'nope.yaml'}:2:16: models.back.file: {tmp_path / path.name} includes "
        "itself (c.yaml -> nope.yaml -> c.yaml); a model file cannot use itself")


def test_models_cannot_use_themselves(tmp_path):
    text = textwrap.dedent("""\
        models:
          a: {sequential: [{TimeDistributed: {layer: b, input_shape: [3, 4]}}]}
          b:
            functional:
              inputs: {x: {shape: [4]}}
              graph: [y = a(x)]
              outputs: y
        model:
          sequential: [{Dense: {units: 1, input_dim: 4}}]
        compile: {optimizer: sgd, loss: mse}
        data:
          train: {random: {samples: 4, x: [4], y: [1]}}
        """)
    path = write(tmp_path, text)
    assert one_error(path) == f"{path}:2:3: models.a: model 'a' uses itself: a -> b -> a"


def test_a_model_cannot_take_a_helpers_name(tmp_path):
    text = TIME_DISTRIBUTED.replace("  classifier:", "  add:").replace("layer: classifier",
                                                                      "layer: add")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:2:3: models.add: 'add' is the name of a helper (the "
                               "merge layer Add); give the model another name")


def test_a_models_entry_is_one_kind(tmp_path):
    text = TIME_DISTRIBUTED.replace("  classifier:\n    sequential:",
                                    "  classifier:\n    file: x.yaml\n    sequential:")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'file:')}: models.classifier.file: give "
                               "sequential or file, not both")


# --- layers of this issue -----------------------------------------------------------------------


def spec_of(tmp_path, layer: str):
    text = small("y = dense(a)").replace("dense: {Dense: {units: 2}}", f"dense: {layer}")
    return load_config(write(tmp_path, text)).model.functional.layers["dense"]


def layer_error(tmp_path, layer: str) -> str:
    text = small("y = dense(a)").replace("dense: {Dense: {units: 2}}", f"dense: {layer}")
    return one_error(write(tmp_path, text))


def test_recurrent_layers_and_their_keras_defaults(tmp_path):
    gru = spec_of(tmp_path, "{GRU: {units: 3}}").args.layer_kwargs()
    assert gru["reset_after"] is True and "unit_forget_bias" not in gru
    assert gru["recurrent_activation"] == "sigmoid"
    rnn = spec_of(tmp_path, "{SimpleRNN: {units: 3, return_sequences: true}}").args
    assert rnn.layer_kwargs() == {
        "units": 3, "activation": "tanh", "use_bias": True,
        "kernel_initializer": "glorot_uniform", "recurrent_initializer": "orthogonal",
        "bias_initializer": "zeros", "return_sequences": True, "return_state": False,
        "go_backwards": False, "zero_output_for_mask": False}
    lstm = spec_of(tmp_path, "{LSTM: {units: 3, input_dim: 8, input_length: 5}}").args
    assert lstm.input_hint() == (None, (5, 8))
    assert spec_of(tmp_path, "{LSTM: {units: 3, input_dim: 8}}").args.input_hint() == (
        None, (None, 8))
    assert spec_of(tmp_path, "{LSTM: {units: 3, dropout: 0}}").args.layer_kwargs()["units"] == 3


@pytest.mark.parametrize("args, key, message", [
    ("dropout: 0.2", "dropout", "dropout inside recurrent layers is not supported yet; put a "
                                "Dropout layer before or after"),
    ("recurrent_dropout: 0.1", "recurrent_dropout",
     "dropout inside recurrent layers is not supported yet; put a Dropout layer before or "
     "after"),
    ("stateful: true", "stateful",
     "stateful recurrent layers are not supported: kconf starts every batch from zero states "
     "(stateful: true would carry the last states of a batch into the next); remove stateful, "
     "or start a call from given states with initial_state in a functional graph line "
     "(y = lstm(x, initial_state=[h, c]))"),
    ("input_length: 5", "input_length", "input_length needs input_dim (the features of each "
                                        "step), or give input_shape"),
    ("input_dim: 5, input_shape: [3, 5]", "input_shape",
     "give only one of input_dim, input_shape: each sets the input shape"),
])
def test_recurrent_arguments_that_are_not_supported(tmp_path, args, key, message):
    layer = f"{{LSTM: {{units: 3, {args}}}}}"
    text = small("y = dense(a)").replace("dense: {Dense: {units: 2}}", f"dense: {layer}")
    path = write(tmp_path, text)
    at = where(text, f" {key}:").split(":")
    assert one_error(path) == (f"{path}:{at[0]}:{int(at[1]) + 1}: "
                               f"model.functional.layers.dense.LSTM.{key}: {message}")


def test_embedding(tmp_path):
    emb = spec_of(tmp_path, "{Embedding: {input_dim: 50, output_dim: 8}}").args
    assert emb.input_hint() == (None, (None,))  # Keras 2: any length when first
    assert emb.layer_kwargs()["input_dim"] == 50
    assert emb.layer_kwargs()["mask_zero"] is False
    masked = spec_of(tmp_path, "{Embedding: {input_dim: 50, output_dim: 8, mask_zero: true}}")
    assert masked.args.layer_kwargs()["mask_zero"] is True  # masks: tests/test_masking.py
    assert layer_error(tmp_path, "{Embedding: {input_dim: 0, output_dim: 8}}").endswith(
        "Embedding.input_dim: must be a positive integer, got 0")


def test_merge_layers(tmp_path):
    for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"):
        assert spec_of(tmp_path, f"{{{name}: {{}}}}").args.layer_kwargs() == {}
    assert spec_of(tmp_path, "{Dot: {axes: 1}}").args.layer_kwargs() == {
        "axes": 1, "normalize": False}
    assert spec_of(tmp_path, "{Dot: {axes: [1, -1]}}").args.layer_kwargs()["axes"] == (1, -1)
    assert layer_error(tmp_path, "{Dot: {}}").endswith(
        "model.functional.layers.dense.Dot: missing required key 'axes'")
    assert layer_error(tmp_path, "{Concatenate: {axis: 0}}").endswith(
        "Concatenate.axis: axis 0 is the batch axis; count the axes of one sample from 1, or "
        "from the end with -1")
    assert layer_error(tmp_path, "{Add: {axis: 1}}").endswith(
        "model.functional.layers.dense.Add: unknown key 'axis'; valid keys: name, trainable, "
        "input_shape, batch_size, batch_input_shape")


# --- compile: several outputs -------------------------------------------------------------------


def twitter_with(compile_lines: str) -> str:
    start = TWITTER.index("  loss: binary_crossentropy\n")
    end = TWITTER.index("data:")
    return TWITTER[:start] + compile_lines + TWITTER[end:]


@pytest.mark.parametrize("lines, losses, weights", [
    ("  loss: mse\n", ["mse", "mse"], [1.0, 1.0]),
    ("  loss: [mse, binary_crossentropy]\n  loss_weights: [1, 0.2]\n",
     ["mse", "binary_crossentropy"], [1.0, 0.2]),
    ("  loss: {aux: mse, main: binary_crossentropy}\n  loss_weights: {aux: 0.5}\n",
     ["binary_crossentropy", "mse"], [1.0, 0.5]),
    ("  loss: {main_output: mae, aux_output: mse}\n", ["mae", "mse"], [1.0, 1.0]),
])
def test_loss_and_loss_weights_forms(tmp_path, lines, losses, weights):
    cfg = load_config(write(tmp_path, twitter_with(lines)))
    outputs = cfg.output_names()
    assert cfg.compile.loss_for(outputs, cfg.output_aliases()) == losses
    assert cfg.compile.loss_weights_for(outputs, cfg.output_aliases()) == weights


def test_metrics_forms_and_their_import_paths(tmp_path):
    cfg = load_config(write(tmp_path, twitter_with(
        "  loss: mse\n  metrics: [accuracy, 'my.metrics:f']\n")))
    assert cfg.compile.metrics_for(["main", "aux"]) == [["accuracy", "my.metrics:f"]] * 2
    assert cfg.import_paths() == [(("compile", "metrics", 1), "my.metrics:f")]
    cfg = load_config(write(tmp_path, twitter_with(
        "  loss: mse\n  metrics: {main_output: [accuracy, 'my.metrics:f'], aux: 'a.b:c'}\n")))
    assert cfg.compile.metrics_for(["main", "aux"], cfg.output_aliases()) == [
        ["accuracy", "my.metrics:f"], ["a.b:c"]]
    assert cfg.import_paths() == [(("compile", "metrics", "main_output", 1), "my.metrics:f"),
                                  (("compile", "metrics", "aux"), "a.b:c")]
    cfg = load_config(write(tmp_path, twitter_with("  loss: mse\n  metrics: {aux: [mae]}\n")))
    assert cfg.compile.metrics_for(["main", "aux"]) == [[], ["mae"]]


@pytest.mark.parametrize("lines, needle, path, message", [
    ("  loss: [mse]\n", "[mse]", "compile.loss",
     "loss has 1 item but the model has 2 outputs (main, aux)"),
    ("  loss: mse\n  loss_weights: [1, 2, 3]\n", "[1, 2, 3]", "compile.loss_weights",
     "loss weights has 3 items but the model has 2 outputs (main, aux)"),
    ("  loss: {main: mse}\n", "{main: mse}", "compile.loss",
     "no loss for output 'aux'; give one for every output"),
    ("  loss: {main: mse, aux: mse, mian: mse}\n", "mian", "compile.loss.mian",
     "unknown output 'mian' (did you mean 'main'?); the model's outputs: main, aux"),
    ("  loss: {main: mse, main_output: mse, aux: mse}\n", "main_output: mse",
     "compile.loss.main_output", "'main_output' and 'main' both name output 'main'; give one"),
    ("  loss: mse\n  loss_weights: {aux_outptu: 0.2}\n", "aux_outptu",
     "compile.loss_weights.aux_outptu",
     "unknown output 'aux_outptu' (did you mean 'aux_output'?); the model's outputs: main, aux"),
    ("  loss: mse\n  metrics: {lstm: [accuracy]}\n", "lstm: [",
     "compile.metrics.lstm", "unknown output 'lstm'; the model's outputs: main, aux"),
    ("  loss: mse\n  loss_weights: [1, -1]\n", "-1", "compile.loss_weights[1]",
     "must be a non-negative number, got -1"),
    ("  loss: 3\n", "3\n", "compile.loss", "expected a string, got 3"),
    ("  loss: mse\n  loss_weights: 0.5\n", "0.5", "compile.loss_weights",
     "expected a list (one weight per output) or a mapping output -> weight, got 0.5"),
])
def test_multi_output_compile_errors(tmp_path, lines, needle, path, message):
    text = twitter_with(lines)
    file = write(tmp_path, text)
    assert one_error(file) == f"{file}:{where(text, needle)}: {path}: {message}"


def test_a_layer_that_computes_two_outputs_cannot_name_them(tmp_path):
    text = small("y = dense(a)", "z = dense(a)", outputs="y, z").replace(
        "compile: {optimizer: sgd, loss: mse}", "compile: {optimizer: sgd, loss: {dense: mse}}"
    ).replace("y: [2]}", "y: {y: [2], z: [2]}}")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, 'dense: mse')}: compile.loss.dense: "
                               "'dense' computes several outputs (y, z); name the output "
                               "tensor instead")


def test_sequential_models_name_their_output_after_a_named_last_layer(tmp_path):
    base = "model:\n  sequential:\n    - Dense: {units: 1, input_dim: 4%s}\n" \
           "compile: {optimizer: sgd, loss: %s}\ndata:\n" \
           "  train: {random: {samples: 8, x: [4], y: [1]}}\n"
    cfg = load_config(write(tmp_path, base % ("", "[mse]")))
    assert cfg.output_names() is None and cfg.input_names() is None
    assert cfg.compile.loss_for(["dense"]) == ["mse"]
    cfg = load_config(write(tmp_path, base % (", name: out", "{out: mae}")))
    assert cfg.compile.loss_for(["out"]) == ["mae"]
    text = base % ("", "{out: mae}")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, '{out')}: compile.loss: a sequential "
                               "model's output is named after its last layer, which has no "
                               "name: give that layer a name to key loss by it")
    text = base % ("", "[mse, mae]")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, '[mse')}: compile.loss: a sequential "
                               "model has one output: give one loss, got 2")


# --- data: several inputs and outputs -----------------------------------------------------------


def twitter_data(train: str) -> str:
    return TWITTER[:TWITTER.index("data:")] + f"data:\n  train: {train}\n"


def test_file_sources_by_position_and_by_name(tmp_path):
    cfg = load_config(write(tmp_path, twitter_data(
        "{npz: {path: t.npz, x: [tokens, extra], y: {main_output: m, aux: a}}}")))
    args = cfg.data.train.args
    assert args.x_for(cfg.input_names()) == ["tokens", "extra"]
    assert args.y_for(cfg.output_names(), cfg.output_aliases()) == ["m", "a"]
    cfg = load_config(write(tmp_path, twitter_data(
        "{npy: {x: {aux_input: aux.npy, main_input: main.npy}, y: [m.npy, a.npy]}}")))
    args = cfg.data.train.args
    assert args.x_for(cfg.input_names()) == ["main.npy", "aux.npy"]
    assert args.y_for(cfg.output_names()) == ["m.npy", "a.npy"]


def test_random_targets_by_output(tmp_path):
    cfg = load_config(write(tmp_path, twitter_data(
        "{random: {samples: 4, x: {main_input: {shape: [100], dtype: int64, low: 1, high: 9},"
        " aux_input: [5]}, y: {main: [1], aux: {classes: 3, one_hot: true}}}}")))
    main, aux = cfg.data.train.args.y_for(cfg.output_names())
    assert (main.shape, main.classes) == ((1,), None)
    assert (aux.shape, aux.classes, aux.one_hot) == (None, 3, True)
    assert cfg.data.train.args.x_for(cfg.input_names())[0].bounds() == (1, 9)


def test_single_x_with_integer_values(tmp_path):
    text = ("model:\n  sequential:\n    - Embedding: {input_dim: 100, output_dim: 4}\n"
            "compile: {optimizer: sgd, loss: mse}\ndata:\n"
            "  train: {random: {samples: 8, x: [10], dtype: int32, high: 100, y: [10, 4]}}\n")
    cfg = load_config(write(tmp_path, text))
    (spec,) = cfg.data.train.args.x_for(None)
    assert (spec.shape, spec.dtype, spec.bounds()) == ((10,), "int32", (0, 100))


@pytest.mark.parametrize("train, needle, path, message", [
    ("{random: {samples: 4, x: [100], y: {main: [1], aux: [1]}}}", "[100]", "data.train.random.x",
     "the model has 2 inputs (main_input, aux_input): give x as a mapping by name"),
    ("{random: {samples: 4, x: {main_input: [100], aux_inptu: [5]}, y: {main: [1], aux: [1]}}}",
     "aux_inptu", "data.train.random.x.aux_inptu",
     "unknown input 'aux_inptu' (did you mean 'aux_input'?); the model's inputs: main_input, "
     "aux_input"),
    ("{random: {samples: 4, x: {main_input: [100]}, y: {main: [1], aux: [1]}}}",
     "{main_input: [100]}", "data.train.random.x",
     "no x for input 'aux_input'; give one for every input"),
    ("{random: {samples: 4, x: {main_input: [100], aux_input: [5]}, classes: 2}}", "classes",
     "data.train.random.classes", "classes gives labels for one output; the model has 2 "
     "outputs (main, aux): give y as a mapping by output name"),
    ("{random: {samples: 4, x: {main_input: [100], aux_input: [5]}, y: [1]}}", "[1]",
     "data.train.random.y", "the model has 2 outputs (main, aux): give y as a mapping by name"),
    ("{npz: {path: t.npz, x: [a, b, c], y: [m, a]}}", "[a, b, c]", "data.train.npz.x",
     "x has 3 items but the model has 2 inputs (main_input, aux_input)"),
    ("{npz: {path: t.npz, x: [a, b]}}", "{path", "data.train.npz.y",
     "the model has 2 outputs (main, aux): give y as a mapping by name or a list in that "
     "order"),
    ("{npy: {x: x.npy, y: [m.npy, a.npy]}}", "x.npy", "data.train.npy.x",
     "the model has 2 inputs (main_input, aux_input): give x as a mapping by name or a list "
     "in that order"),
    ("{random: {samples: 4, x: {main_input: {shape: [100], dtype: int32}, aux_input: [5]}, "
     "y: {main: [1], aux: [1]}}}", "dtype", "data.train.random.x.main_input.dtype",
     "int32 data needs high: integers are drawn from [low, high)"),
    ("{random: {samples: 4, x: {main_input: {shape: [100], dtype: int32, high: 2.5}, "
     "aux_input: [5]}, y: {main: [1], aux: [1]}}}", "high", "data.train.random.x.main_input."
     "high", "high must be an integer for int32 data, got 2.5"),
    ("{random: {samples: 4, x: {main_input: [100], aux_input: [5]}, high: 3, "
     "y: {main: [1], aux: [1]}}}", "high", "data.train.random.high",
     "high describes a single x; give it in each input's spec"),
    ("{random: {samples: 4, x: 100, classes: 2}}", "100", "data.train.random.x",
     "expected a shape or a mapping input -> shape, got 100"),
])
def test_data_names_are_checked_against_the_model(tmp_path, train, needle, path, message):
    text = twitter_data(train)
    file = write(tmp_path, text)
    before = text[:text.index(needle, text.index("\ndata:"))]
    at = f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"
    assert one_error(file) == f"{file}:{at}: {path}: {message}"


def test_sequential_data_cannot_be_keyed_by_input_name(tmp_path):
    text = ("model:\n  sequential:\n    - Dense: {units: 1, input_dim: 4}\n"
            "compile: {optimizer: sgd, loss: mse}\ndata:\n"
            "  train: {random: {samples: 8, x: {input: [4]}, y: [1]}}\n")
    path = write(tmp_path, text)
    assert one_error(path) == (f"{path}:{where(text, '{input')}: data.train.random.x: a "
                               "sequential model's input has no name: give x for its one "
                               "input, not a mapping")

