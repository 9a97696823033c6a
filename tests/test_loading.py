"""Loading returns data: the frozen pydantic model beside its positions and named models;
problems carry their kind and key; configs, sweep files and model files take one loader."""
from __future__ import annotations

import copy
import dataclasses
import pickle
import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

import kconf
import kconf.config.loader as loader
import kconf.config.problems as problems
from kconf.config import LoadedConfig, RunConfig, load_config, parse_override
from kconf.errors import (MISSING, OVERRIDE_PATH, UNKNOWN_KEY, UNREADABLE, ConfigError,
                          SourcePos)
from kconf.sweep import LoadedSweep, load_sweep, plan_sweep
from kconf.sweep.config import SweepConfig
from kconf.train.resolve import resolve_config

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
name: small
model:
  sequential:
    - Dense: {units: 4, activation: relu, input_dim: 3}
    - Dense: {units: 2}
compile: {optimizer: {SGD: {lr: 0.1}}, loss: mse}
data:
  train: {random: {samples: 8, x: [3], y: [2]}}
fit: {epochs: 2}
"""

# A config whose functional model calls a model of another file (parts/head.yaml).
WITH_MODELS = """\
models:
  head: {file: parts/head.yaml}
  tail: {sequential: [{Dense: {units: 2}}]}
model:
  functional:
    inputs: {x: {shape: [3]}}
    layers: {}
    graph:
      - h = head(x)
      - y = tail(h)
    outputs: y
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 8, x: [3], y: [2]}}
"""

HEAD = """\
model:
  sequential:
    - Dense: {units: 5}
"""

SWEEP = """\
base: small.yaml
parameters:
  fit.batch_size: [4, 8]
metric: loss
mode: min
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(source, overrides=None):
    with pytest.raises(ConfigError) as info:
        load_config(source, overrides)
    return info.value.problems


# --- the result of loading --------------------------------------------------------------------


def test_load_config_returns_the_model_its_positions_and_its_named_models(tmp_path):
    write(tmp_path, "parts/head.yaml", HEAD)
    path = write(tmp_path, "c.yaml", WITH_MODELS)
    cfg = load_config(path)
    assert type(cfg) is LoadedConfig and type(cfg.config) is RunConfig
    assert cfg.file == cfg.source.file == str(path)
    assert cfg.source.locate(("compile", "loss")) == SourcePos(str(path), 12, 33)
    assert list(cfg.named) == ["head", "tail"] and cfg.named_models() == dict(cfg.named)
    head = cfg.named["head"]
    assert head.source.file == str(tmp_path / "parts" / "head.yaml")
    assert head.path == ("model",) and head.config.sequential[0].args.units == 5
    assert cfg.named["tail"].source is cfg.source
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.source = None
    # the pydantic model is data only: no positions or names hang on it
    assert not cfg.config.__pydantic_private__
    assert not hasattr(cfg.config, "source") and not hasattr(cfg.config, "named_models")


def test_the_models_fields_and_methods_read_through_but_private_names_do_not(tmp_path):
    cfg = load_config(write(tmp_path, "small.yaml", CONFIG))
    for name in [*RunConfig.model_fields, "input_names", "output_names", "output_aliases",
                 "import_paths", "to_data", "to_yaml"]:
        assert getattr(cfg, name) == getattr(cfg.config, name), name
    assert cfg.model is cfg.config.model and cfg.fit.epochs == 2
    assert cfg.to_yaml() == cfg.config.to_yaml()
    with pytest.raises(AttributeError):
        cfg.__pydantic_private__  # noqa: B018  (a private name stays on the model)
    with pytest.raises(AttributeError):
        cfg.no_such_field  # noqa: B018


def test_a_loaded_config_copies_and_pickles_as_itself_with_its_positions(tmp_path):
    path = write(tmp_path, "small.yaml", CONFIG)
    cfg = load_config(path)
    for again in (copy.deepcopy(cfg), pickle.loads(pickle.dumps(cfg))):
        assert type(again) is LoadedConfig and again == cfg
        assert again.source.locate(("fit", "epochs")) == SourcePos(str(path), 9, 15)


def test_equality_is_the_models_not_where_they_came_from(tmp_path):
    from_file = load_config(write(tmp_path, "small.yaml", CONFIG))
    from_dict = load_config(yaml.safe_load(CONFIG))
    assert from_file == from_dict and from_file.source.file != from_dict.source.file
    assert from_file != load_config(yaml.safe_load(CONFIG), {"fit.epochs": 3})
    sweep = load_sweep(write(tmp_path, "s.yaml", SWEEP))
    assert sweep != from_file


def test_a_run_config_alone_loads_and_builds(tmp_path):
    cfg = load_config(write(tmp_path, "small.yaml", CONFIG))
    again = load_config(cfg.config)
    assert type(again) is LoadedConfig and again == cfg and again.source.file == "<dict>"
    model = kconf.build_model(cfg.config)
    assert [tuple(t.shape) for t in model.graph.outputs] == [(None, 2)]


def test_load_sweep_returns_the_sweep_and_its_positions(tmp_path):
    write(tmp_path, "small.yaml", CONFIG)
    path = write(tmp_path, "s.yaml", SWEEP)
    sweep = load_sweep(path)
    assert type(sweep) is LoadedSweep and type(sweep.config) is SweepConfig
    assert sweep.metric == sweep.config.metric == "loss" and sweep.name == "s"
    assert sweep.base_path == tmp_path / "small.yaml"
    assert sweep.source.locate(("parameters", "fit.batch_size", 1)) == SourcePos(str(path), 3,
                                                                                  23)
    assert not sweep.config.__pydantic_private__


def test_the_output_aliases_are_passed_not_recorded(tmp_path):
    text = CONFIG.replace("loss: mse}", "loss: {out: mse}}").replace(
        "- Dense: {units: 2}", "- Dense: {units: 2, name: out}")
    cfg = load_config(write(tmp_path, "small.yaml", text))
    assert cfg.compile.loss_for(["out"]) == ["mse"]
    # an output named by its layer needs the config's aliases; without them it is an error,
    # never a silent default
    compile_ = cfg.compile.model_copy(update={"loss_weights": {"dense_9": 0.5}})
    with pytest.raises(ValueError, match="'dense_9' is not an output"):
        compile_.loss_weights_for(["out"])
    assert compile_.loss_weights_for(["out"], {"dense_9": "out"}) == [0.5]


# --- problems carry their kind and key ------------------------------------------------------


@pytest.mark.parametrize("overrides, kind, key, path, message", [
    ({"model.sequential.0.Dense.unitz": 3}, UNKNOWN_KEY, "unitz",
     ("model", "sequential", 0, "Dense"), "unknown key 'unitz' (did you mean 'units'?)"),
    ({"compile": {"optimizer": "sgd"}}, MISSING, "loss", ("compile",),
     "missing required key 'loss'"),
    ({"model.sequential.7.Dense.units": 3}, OVERRIDE_PATH, "model.sequential.7.Dense.units",
     (), "override 'model.sequential.7.Dense.units': index 7 is out of range"),
    ({"model.sequential.0": {"Dens": {"units": 2}}}, "union_tag_invalid", "Dens",
     ("model", "sequential", 0), "unknown layer 'Dens' (did you mean 'Dense'?)"),
    ({"fit.epochs": "two"}, "int_type", None, ("fit", "epochs"), "expected an integer"),
])
def test_problems_carry_their_kind_and_key(overrides, kind, key, path, message):
    (problem,) = problems_of(yaml.safe_load(CONFIG), overrides)
    assert (problem.kind, problem.key, problem.path) == (kind, key, path)
    assert problem.message.startswith(message)


def test_unreadable_files_and_malformed_overrides_are_typed(tmp_path):
    (problem,) = problems_of(tmp_path / "absent.yaml")
    assert (problem.kind, problem.message) == (UNREADABLE, "file not found")
    with pytest.raises(ConfigError) as info:
        parse_override("fit.epochs")
    (problem,) = info.value.problems
    assert (problem.kind, problem.key) == (OVERRIDE_PATH, "fit.epochs")


def test_an_unknown_key_is_placed_by_its_key_whatever_its_message_says(tmp_path, monkeypatch):
    monkeypatch.setattr(problems, "_unknown_key_message", lambda model, key: "no such thing")
    path = write(tmp_path, "small.yaml", CONFIG)
    with pytest.raises(ConfigError) as info:
        resolve_config(path, ["fit.epochs=1", "compile.optimizer.SGD.lrr=0.5", "seed=2"])
    (problem,) = info.value.problems
    assert problem.format() == ("override 'compile.optimizer.SGD.lrr=0.5': "
                                "compile.optimizer.SGD: no such thing")
    # in a sweep, the parameter that names the key is the place
    sweep = write(tmp_path, "s.yaml", SWEEP.replace("fit.batch_size: [4, 8]",
                                                    "fit.batch_size: [4, 8]\n"
                                                    "  compile.optimizer.SGD.lrr: 0.5"))
    with pytest.raises(ConfigError) as info:
        plan_sweep(sweep)
    assert [p.format() for p in info.value.problems] == [
        f"{sweep}:4:3: parameters.compile.optimizer.SGD.lrr: no such thing"]


def test_a_problem_every_sweep_trial_has_is_reported_once_without_the_trials_note(tmp_path):
    write(tmp_path, "small.yaml", CONFIG)
    sweep = write(tmp_path, "s.yaml", SWEEP.replace("metric: loss", "metric: val_loss"))
    with pytest.raises(ConfigError) as info:
        plan_sweep(sweep)
    assert [p.format() for p in info.value.problems] == [
        f"{sweep}:4:9: metric: 'val_loss' is not logged; logged: loss"]
    # one trial alone keeps its note
    one = write(tmp_path, "one.yaml", SWEEP.replace("metric: loss", "metric: val_loss")
                .replace("[4, 8]", "[4]"))
    with pytest.raises(ConfigError) as info:
        plan_sweep(one)
    assert [p.format() for p in info.value.problems] == [
        f"{one}:4:9: metric: 'val_loss' is not logged; logged: loss (trial_000)"]


# --- one loader ---------------------------------------------------------------------------------


def test_configs_model_files_and_sweep_files_take_the_same_loader(tmp_path, monkeypatch):
    seen = []
    convert = loader.problems_from

    def spy(error, root, source, poisoned=()):
        seen.append((root.__name__, Path(source.file).name))
        return convert(error, root, source, poisoned)

    monkeypatch.setattr(loader, "problems_from", spy)
    write(tmp_path, "parts/head.yaml", HEAD.replace("units: 5", "units: 5, unitz: 5"))
    config = write(tmp_path, "c.yaml", WITH_MODELS.replace(
        "compile: {optimizer: sgd, loss: mse}", "compile: {optimizer: sgd, los: mse}"))
    sweep = write(tmp_path, "s.yaml", SWEEP.replace("mode: min", "mode: min\nmetrc: loss"))
    with pytest.raises(ConfigError) as info:
        load_config(config)
    config_problems = info.value.problems
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep)
    sweep_problems = info.value.problems
    # the config's own errors, then (checking its valid sections) its model file's
    assert seen == [("RunConfig", "c.yaml"), ("_ModelFile", "head.yaml"),
                    ("SweepConfig", "s.yaml")]
    assert [(p.kind, p.key, p.pos.file) for p in config_problems] == [
        (MISSING, "loss", str(config)), (UNKNOWN_KEY, "los", str(config)),
        (UNKNOWN_KEY, "unitz", str(tmp_path / "parts" / "head.yaml"))]
    assert [(p.kind, p.key, p.path) for p in sweep_problems] == [(UNKNOWN_KEY, "metrc", ())]
    assert sweep_problems[0].format().startswith(f"{sweep}:6:1: unknown key 'metrc'")


@pytest.mark.parametrize("text, config_message, sweep_message", [
    ("", "the config is empty; it needs the sections model, compile and data",
     "the sweep file is empty; it needs base, parameters, metric and mode"),
    ("[1, 2]\n", "a config must be a mapping of sections (model, compile, data), got [1, 2]",
     "a sweep file must be a mapping (base, parameters, metric, mode, ...), got [1, 2]"),
])
def test_a_config_and_a_sweep_file_that_are_not_mappings_are_told_alike(
        tmp_path, text, config_message, sweep_message):
    path = write(tmp_path, "x.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [p.format() for p in info.value.problems] == [f"{path}:1:1: {config_message}"]
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert [p.format() for p in info.value.problems] == [f"{path}:1:1: {sweep_message}"]


# --- nothing is set on frozen pydantic models ----------------------------------------------------


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_no_kconf_pydantic_model_has_private_attributes():
    models = [m for m in _subclasses(BaseModel) if m.__module__.startswith("kconf.")]
    assert RunConfig in models and SweepConfig in models
    assert {m.__qualname__: m.__private_attributes__ for m in models
            if m.__private_attributes__} == {}


def test_no_module_sets_private_attributes_on_configs():
    """The source of kconf: no ``PrivateAttr``, and no ``x._name = ...`` on another object
    (a config) than ``self``."""
    assignment = re.compile(r"^\s*(?!self\.)\w+(\.\w+)*\._\w+\s*=[^=]", re.MULTILINE)
    found = []
    for file in sorted((ROOT / "kconf").rglob("*.py")):
        text = file.read_text(encoding="utf-8")
        rel = file.relative_to(ROOT).as_posix()
        if "PrivateAttr" in text:
            found.append(f"{rel}: PrivateAttr")
        if rel.startswith(("kconf/config/", "kconf/sweep/", "kconf/train/resolve.py")):
            found += [f"{rel}: {m.group(0).strip()}" for m in assignment.finditer(text)]
    assert found == []


def test_the_readme_example_of_the_python_api_still_reads(tmp_path):
    cfg = kconf.load_config(write(tmp_path, "small.yaml", CONFIG))
    assert cfg.model.sequential[0].class_name == "Dense"
    assert cfg.source.locate(("model", "sequential", 0, "Dense", "units")).line == 4
    assert cfg.named_models() == {}
    assert cfg.to_yaml().startswith("kconf: 1\nname: small")  # written configs say their version
