"""``kconf upgrade``: version-0 configs (Keras 2's spellings) rewritten in version 1, comments
kept, the meaning unchanged; bad version keys refused at their FILE:LINE:COL."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from kconf.api import make_optimizer
from kconf.cli import app
from kconf.config import load_config
from kconf.config.upgrade import upgrade_file

runner = CliRunner()

OLD = """\
# The docs' MLP, Keras 2 style
name: old_mlp
model:
  sequential:
    - Dense: {units: 6, activation: relu, input_dim: 5}   # the first layer
    - LeakyReLU: {alpha: 0.2}
    - Reshape: {target_shape: [3, 2]}
    - LSTM: {units: 4, input_dim: 2, input_length: 3}
    - Dense: {units: 3, activation: softmax}
compile:
  optimizer:
    SGD:
      lr: 0.05        # Keras 2's name
      decay: 0.01
      momentum: 0.9
  loss: categorical_crossentropy
data:
  train: {random: {samples: 8, x: [5], classes: 3, one_hot: true}}
fit: {epochs: 1}
"""

NEW = """\
# The docs' MLP, Keras 2 style
kconf: 1
name: old_mlp
model:
  sequential:
    - Dense: {units: 6, activation: relu, input_shape: [5]}   # the first layer
    - LeakyReLU: {negative_slope: 0.2}
    - Reshape: {target_shape: [3, 2]}
    - LSTM: {units: 4, input_shape: [3, 2]}
    - Dense: {units: 3, activation: softmax}
compile:
  optimizer:
    SGD:
      learning_rate: {InverseTimeDecay: {initial_learning_rate: 0.05, decay_steps: 1, decay_rate: 0.01}}        # Keras 2's name
      momentum: 0.9
  loss: categorical_crossentropy
data:
  train: {random: {samples: 8, x: [5], classes: 3, one_hot: true}}
fit: {epochs: 1}
"""


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_upgrade_prints_a_diff_and_writes_only_when_asked(tmp_path):
    path = write(tmp_path, OLD)
    result = runner.invoke(app, ["upgrade", str(path)])
    assert result.exit_code == 0, result.output
    assert f"--- {path}\n+++ {path} (version 1)\n" in result.output
    assert "-      lr: 0.05        # Keras 2's name\n" in result.output
    assert "-      decay: 0.01\n" in result.output
    assert "+kconf: 1\n" in result.output
    assert path.read_text() == OLD  # printed only
    result = runner.invoke(app, ["upgrade", str(path), "--write"])
    assert result.exit_code == 0, result.output
    assert path.read_text() == NEW  # comments and layout kept
    result = runner.invoke(app, ["upgrade", str(path)])
    assert result.exit_code == 0 and f"{path} is up to date (kconf: 1)" in result.output
    assert "---" not in result.output


def test_the_upgraded_config_means_the_same(tmp_path):
    old = load_config(write(tmp_path, OLD, "old.yaml"))
    new = load_config(write(tmp_path, NEW, "new.yaml"))
    old_layers = [s.args.layer_kwargs() for s in old.model.sequential]
    new_layers = [s.args.layer_kwargs() for s in new.model.sequential]
    assert old_layers == new_layers  # LeakyReLU's slope, no shortcut left
    assert [s.args.input_hint() for s in old.model.sequential] == \
        [s.args.input_hint() for s in new.model.sequential]
    a, b = make_optimizer(old.compile.optimizer), make_optimizer(new.compile.optimizer)
    rng = np.random.default_rng(0)
    wa = rng.standard_normal((4, 3)).astype(np.float32)
    wb = wa.copy()
    for _ in range(6):  # Keras 2's decay and InverseTimeDecay(decay_steps=1): every step
        grad = rng.standard_normal((4, 3)).astype(np.float32)
        a.apply([wa], [grad.copy()])
        b.apply([wb], [grad.copy()])
        assert a.current_learning_rate() == pytest.approx(b.current_learning_rate(), rel=1e-12)
    np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=0)


@pytest.mark.parametrize("args, expected, note", [
    ("{decay: 0.0, momentum: 0.5}", {"momentum": 0.5}, None),
    ("{decay: 0.1}", {"learning_rate": {"InverseTimeDecay": {
        "initial_learning_rate": 0.01, "decay_steps": 1, "decay_rate": 0.1}}}, None),
    ("{learning_rate: {ExponentialDecay: {initial_learning_rate: 0.1, decay_steps: 10, "
     "decay_rate: 0.5}}, decay: 0.1}", None, "compile.optimizer.SGD.decay: kept"),
])
def test_decay(tmp_path, args, expected, note):
    path = write(tmp_path, OLD.replace("""\
    SGD:
      lr: 0.05        # Keras 2's name
      decay: 0.01
      momentum: 0.9""", f"    SGD: {args}"))
    result = upgrade_file(path)
    data = yaml.safe_load(result.new)
    if expected is not None:  # the default learning rate of SGD is 0.01
        assert data["compile"]["optimizer"]["SGD"] == expected
        assert result.notes == []
    else:
        assert data["compile"]["optimizer"]["SGD"]["decay"] == 0.1
        assert any(n.startswith(note) for n in result.notes)
    load_config(data)  # the upgraded config is valid


def test_an_embedding_input_dim_is_its_vocabulary_and_stays(tmp_path):
    dense = "    - Dense: {units: 6, activation: relu, input_dim: 5}   # the first layer\n"
    text = OLD.replace(dense, "    - Embedding: {input_dim: 10, output_dim: 6, input_length: 5}\n"
                              "    - Flatten: {}\n")
    result = upgrade_file(write(tmp_path, text))
    assert "- Embedding: {input_dim: 10, output_dim: 6, input_shape: [5]}\n" in result.new
    old = load_config(write(tmp_path, text, "old.yaml"))
    new = load_config(write(tmp_path, result.new, "new.yaml"))
    assert old.model.sequential[0].args.input_hint() == new.model.sequential[0].args.input_hint()


def test_a_file_with_aliases_is_written_anew_and_says_so(tmp_path):
    text = OLD.replace("fit: {epochs: 1}", "fit: {epochs: 1}\nmodels:\n  m:\n    sequential:\n"
                       "      - *first\n").replace("- Dense: {units: 6, activation: relu, "
                                                   "input_dim: 5}",
                                                   "- &first {Dense: {units: 6, activation: "
                                                   "relu, input_dim: 5}}")
    path = write(tmp_path, text)
    result = runner.invoke(app, ["upgrade", str(path), "--write"])
    assert result.exit_code == 0, result.output
    assert "its comments are not kept" in result.output
    data = yaml.safe_load(path.read_text())
    assert data["kconf"] == 1
    first = {"Dense": {"units": 6, "activation": "relu", "input_shape": [5]}}
    assert data["models"]["m"]["sequential"][0] == data["model"]["sequential"][0] == first


def test_an_included_file_is_named(tmp_path):
    path = write(tmp_path, "include: [base.yaml]\nfit: {epochs: 3}\n")
    result = runner.invoke(app, ["upgrade", str(path)])
    assert result.exit_code == 0
    assert "the files it includes are upgraded on their own" in result.output
    assert "+kconf: 1\n" in result.output


@pytest.mark.parametrize("value, message", [
    ("3", "kconf: this config is written in version 3 of the config language"),
    ("one", "kconf: must be the version of the config language, a whole number from 0 to 1 "
            "(write kconf: 1), got 'one'"),
])
def test_upgrade_refuses_a_bad_version(tmp_path, value, message):
    path = write(tmp_path, f"name: x\nkconf: {value}\n")
    result = runner.invoke(app, ["upgrade", str(path), "--write"])
    assert result.exit_code == 2
    assert result.output.startswith(f"{path}:2:8: {message}")
    assert path.read_text() == f"name: x\nkconf: {value}\n"


def test_upgrade_of_a_broken_file_is_a_located_error(tmp_path):
    path = write(tmp_path, "name: [x\n")
    result = runner.invoke(app, ["upgrade", str(path)])
    assert result.exit_code == 2 and result.output.startswith(f"{path}:2:1: invalid YAML")


def _layers(cfg):
    """Each layer's Keras arguments and input hint, sequential or functional."""
    model = cfg.model
    specs = model.sequential or list(model.functional.layers.values())
    return [(s.class_name, s.args.layer_kwargs(), s.args.input_hint()) for s in specs]


def test_every_example_config_upgrades_to_the_same_model(tmp_path):
    root = Path(__file__).resolve().parents[1] / "configs"
    for path in sorted(p for p in root.glob("*.yaml") if not p.name.startswith("sweep_")):
        result = upgrade_file(path)
        assert result.notes == []  # comments kept: no file needed writing anew
        assert "kconf: 1\n" in result.new, path.name
        assert [line for line in result.old.splitlines() if line.lstrip().startswith("#")] == \
            [line for line in result.new.splitlines() if line.lstrip().startswith("#")]
        upgraded = tmp_path / path.name
        upgraded.write_text(result.new, encoding="utf-8")
        old = load_config(path, base_dir=root)
        new = load_config(upgraded, base_dir=root)
        assert _layers(old) == _layers(new), path.name
        a, b = make_optimizer(old.compile.optimizer), make_optimizer(new.compile.optimizer)
        for _ in range(3):
            a.iterations += 1
            b.iterations += 1
            assert a.current_learning_rate() == pytest.approx(b.current_learning_rate(),
                                                              rel=1e-12), path.name
        assert upgrade_file(upgraded).changed is False  # upgraded once for all
