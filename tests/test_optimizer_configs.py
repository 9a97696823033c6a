"""Optimizers and schedules in configs: every optimizer by name and by entry, the common
options reaching the engine, located errors for bad arguments (exit 2), and the AdamW +
cosine warm-up example."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import kconf
from kconf.api import make_optimizer
from kconf.args.names import OPTIMIZER_ALIASES
from kconf.cli import app
from kconf.engine import optimizers
from kconf.engine.schedules import CosineDecay

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

BASE = """\
name: opt
seed: 0
model:
  sequential:
    - Dense: {units: 2, input_dim: 3}
compile:
  optimizer: OPTIMIZER
  loss: mse
data:
  train: {random: {samples: 16, x: [3], y: [2]}}
fit: {epochs: 1, batch_size: 8}
"""


def write(tmp_path: Path, optimizer: str) -> Path:
    path = tmp_path / "opt.yaml"
    path.write_text(BASE.replace("OPTIMIZER", optimizer))
    return path


@pytest.mark.parametrize("alias", sorted(OPTIMIZER_ALIASES))
def test_every_optimizer_by_name_trains(alias, tmp_path):
    model = kconf.build_model(write(tmp_path, alias))
    assert type(model.optimizer) is optimizers.OPTIMIZERS[OPTIMIZER_ALIASES[alias]]
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch(np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32))
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_options_and_keras2_spellings_reach_the_engine(tmp_path):
    path = write(tmp_path, "{Nadam: {lr: 0.01, decay: 0.001, clipvalue: 0.5, use_ema: true, "
                           "ema_overwrite_frequency: 3, gradient_accumulation_steps: 2, "
                           "loss_scale_factor: 128.0}}")
    opt = kconf.build_model(path).optimizer
    assert isinstance(opt, optimizers.Nadam)
    assert (opt.learning_rate, opt.decay) == (0.01, 0.001)
    assert opt.options == optimizers.Options(
        clipvalue=0.5, use_ema=True, ema_overwrite_frequency=3, gradient_accumulation_steps=2,
        loss_scale_factor=128.0)
    adamw = kconf.build_model(write(tmp_path, "adamw")).optimizer
    assert adamw.options.weight_decay == 0.004  # AdamW's default


@pytest.mark.parametrize("optimizer, at, message", [
    ("{Adam: {learning_rate: 0.01, clipnorm: -1.0}}",
     "-1.0", "compile.optimizer.Adam.clipnorm: must be a non-negative number, got -1.0"),
    ("{SGD: {clipnorm: 1.0, global_clipnorm: 2.0}}",
     "global_clipnorm", "compile.optimizer.SGD.global_clipnorm: give only one of clipnorm, clipvalue and "
         "global_clipnorm (here: clipnorm, global_clipnorm)"),
    ("{Lion: {beta_1: 0.9, nesterov: true}}",
     "nesterov", "compile.optimizer.Lion: unknown key 'nesterov'; valid keys: learning_rate, beta_1, "
         "beta_2, decay, lazy_sparse, weight_decay, clipnorm"),
    ("{Adamax: {gradient_accumulation_steps: 1}}",
     " 1}", "compile.optimizer.Adamax.gradient_accumulation_steps: must be >= 2, got 1"),
    ("{Adagrad: {gradient_accumulation_steps: 2, lazy_sparse: true}}",
     "lazy_sparse", "compile.optimizer.Adagrad.lazy_sparse: lazy_sparse cannot be used with "
         "gradient_accumulation_steps"),
    ("{Ftrl: {learning_rate_power: 0.5}}",
     "0.5", "compile.optimizer.Ftrl.learning_rate_power: must be <= 0, got 0.5"),
    ("adamz", "adamz", "compile.optimizer: unknown optimizer 'adamz' (did you mean 'adam'"),
    ("{SGD: {learning_rate: {PolynomialDecay: {initial_learning_rate: 0.1}}}}",
     "{initial", "compile.optimizer.SGD.learning_rate.PolynomialDecay: missing required key 'decay_steps'"),
])
def test_bad_optimizers_are_located_errors(optimizer, at, message, tmp_path):
    """Exactly one ``FILE:LINE:COL: path: message`` line, where ``at`` is (the optimizer
    entry starts at line 7, column 14), exit 2."""
    path = write(tmp_path, optimizer)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line = result.output.splitlines()[0]
    column = 14 + optimizer.index(at) + (1 if at.startswith(" ") else 0)
    assert line.startswith(f"{path}:7:{column}: {message}"), line
    assert len(result.output.splitlines()) == 1


def test_the_adamw_cosine_warmup_example(tmp_path):
    """The example's learning rate climbs linearly for 32 steps, then follows the cosine; the
    weights end as their moving average."""
    path = ROOT / "configs" / "adamw_cosine_warmup.yaml"
    config = kconf.load_config(path)
    opt = make_optimizer(config.compile.optimizer)
    assert isinstance(opt, optimizers.AdamW)
    assert isinstance(opt.learning_rate, CosineDecay)
    assert opt.options.use_ema and opt.options.global_clipnorm == 1.0
    rates = [opt.learning_rate(step) for step in range(161)]
    assert rates[0] == 0.0 and rates[16] == pytest.approx(0.0015)
    assert rates[32] == pytest.approx(0.003) and max(rates) == rates[32]
    assert rates[160] == pytest.approx(0.0003)
    assert all(a > b for a, b in zip(rates[32:160], rates[33:161]))
    text = yaml.safe_load(path.read_text())
    assert text["fit"]["epochs"] * 1024 // text["fit"]["batch_size"] == 160


@pytest.mark.parametrize("optimizer", [
    "{AdamW: {learning_rate: {CosineDecay: {initial_learning_rate: 0.0, decay_steps: 10, "
    "warmup_target: 0.01, warmup_steps: 3}}, use_ema: true, ema_momentum: 0.9, "
    "global_clipnorm: 1.0}}",
    "{Nadam: {learning_rate: {CosineDecayRestarts: {initial_learning_rate: 0.01, "
    "first_decay_steps: 5, m_mul: 0.5}}, clipvalue: 0.3, loss_scale_factor: 2.0, "
    "gradient_accumulation_steps: 4}}",
    "{Ftrl: {learning_rate: {PolynomialDecay: {initial_learning_rate: 0.1, decay_steps: 7, "
    "cycle: true}}, l1_regularization_strength: 0.01, clipnorm: 2.0, weight_decay: 0.001}}",
    "{Lion: {beta_2: 0.95, ema_overwrite_frequency: 4, use_ema: true}}",
    "{Adagrad: {lr: 0.05, decay: 0.01}}",
])
def test_export_then_import_keeps_the_optimizer_entry(optimizer, tmp_path):
    """kconf -> Keras 3 JSON (compile_config) -> kconf gives the same optimizer entry (Keras 2's
    ``lr``/``decay`` come back as Keras 3 writes them: ``learning_rate``, InverseTimeDecay)."""
    from kconf.keras_io.export import keras_json

    path = write(tmp_path, optimizer)
    model = kconf.build_model(path)
    data = keras_json(model)
    assert data["compile_config"]["optimizer"]["class_name"] == next(
        iter(yaml.safe_load(optimizer)))
    back = kconf.from_keras(data)["compile"]["optimizer"]
    written = yaml.safe_load(optimizer)
    if "lr" in next(iter(written.values())):
        written = {"Adagrad": {"learning_rate": {"InverseTimeDecay": {
            "initial_learning_rate": 0.05, "decay_steps": 1, "decay_rate": 0.01}}}}
    assert back == written
