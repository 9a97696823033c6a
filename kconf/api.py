"""The public Python API: config in, compiled model out."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kconf.config import LoadedConfig, RunConfig, load_config
from kconf.config.objectives import class_weight_problems, metric_problems
from kconf.engine import optimizers
from kconf.engine.schedules import SCHEDULES
from kconf.errors import ConfigError, Problem
from kconf.graph.construct import build_graph
from kconf.imports import import_object
from kconf.model import Model


def init_rng(seed: int) -> np.random.Generator:
    """The stream weights are initialised from."""
    return np.random.default_rng([seed, 0])


def train_rng(seed: int) -> np.random.Generator:
    """The stream shuffling and dropout draw from."""
    return np.random.default_rng([seed, 1])


def build_model(config: LoadedConfig | RunConfig | str | Path | dict) -> Model:
    """Build, initialise and compile the model a config describes.

    Args:
        config: a config from ``load_config``, a ``RunConfig``, a path to a YAML file, or a
            dict.

    Returns:
        A compiled ``Model`` whose weights are initialised from the config's seed.

    Raises:
        ConfigError: anything wrong in the config, located in the YAML.
    """
    cfg = as_config(config)
    model = model_from_config(cfg)
    model.build(init_rng(cfg.seed))
    model.train_rng = train_rng(cfg.seed)
    comp = cfg.compile
    outputs = [t.name for t in model.graph.outputs]  # the config names outputs by tensor
    opt = make_optimizer(comp.optimizer)
    metrics = resolve_metrics(cfg)
    aliases = cfg.output_aliases()
    model.compile(optimizer=opt, loss=comp.loss_for(outputs, aliases),
                  metrics=[[metrics.get(m, m) if isinstance(m, str) else m for m in ms]
                           for ms in comp.metrics_for(outputs, aliases)],
                  loss_weights=comp.loss_weights_for(outputs, aliases),
                  weighted_metrics=[[metrics.get(m, m) if isinstance(m, str) else m
                                     for m in ms] for ms in
                                    comp.metrics_for(outputs, aliases, "weighted_metrics")])
    return model


def make_optimizer(spec) -> optimizers.Optimizer:
    """The engine optimizer of a config's ``compile.optimizer`` entry (its schedule built).

    Args:
        spec: a validated optimizer entry (``OptimizerSpecBase``).

    Returns:
        A new optimizer.
    """
    kwargs = spec.kwargs()
    if isinstance(kwargs["learning_rate"], dict):  # {ExponentialDecay: {...}}
        ((name, args),) = kwargs["learning_rate"].items()
        kwargs["learning_rate"] = SCHEDULES[name](**args)
    return optimizers.get(spec.class_name, **kwargs)


def as_config(config: LoadedConfig | RunConfig | str | Path | dict) -> LoadedConfig:
    """A loaded config from a loaded config, a ``RunConfig``, a YAML path or a dict."""
    return config if isinstance(config, LoadedConfig) else load_config(config)


def model_from_config(config: LoadedConfig | RunConfig | str | Path | dict) -> Model:
    """The model's graph with every shape inferred, but no weights: instant, for validate and
    summary.

    Raises:
        ConfigError: a layer that cannot take its input shape, a missing input shape, a
            metric that does not fit its output (``metric_problems``) ...
    """
    cfg = as_config(config)
    graph = build_graph(cfg)
    problems = metric_problems(cfg, graph) + class_weight_problems(cfg, graph)
    if problems:
        raise ConfigError(problems, cfg.source.file)
    return Model(graph, name=cfg.name, sequential=cfg.model.sequential is not None)


def resolve_metrics(cfg: LoadedConfig) -> dict:
    """Every metric name the config gives -> itself, or for an import path the function it
    names (a ``{Class: args}`` metric is left to ``Model.compile``).

    Raises:
        ConfigError: an import path that cannot be imported, at its line.
    """
    out, problems = {}, []
    search = (cfg.source.base_dir, Path.cwd())
    imports = {spec for _, spec in cfg.import_paths()}
    for path, metric in cfg.compile.metric_items():
        if not isinstance(metric, str) or metric in out:  # {AUC: {...}}: the model builds it
            continue
        if metric not in imports:
            out[metric] = metric
            continue
        try:
            out[metric] = import_object(metric, search)
        except ImportError as exc:
            problems.append(Problem(str(exc), path, cfg.source.locate(path)))
    if problems:
        raise ConfigError(problems, cfg.source.file)
    return out


def load_data(config: LoadedConfig | RunConfig | str | Path | dict,
              overrides: dict | None = None) -> dict:
    """A config's data as its model is trained on it: every split loaded, encoded and
    preprocessed (each step fitted on the training split), as ``kconf train`` prepares it.

    Args:
        config: a config from ``load_config``, a ``RunConfig``, a YAML path or a dict.
        overrides: dotted path -> value, applied first (``{"data.split.seed": 3}``).

    Returns:
        ``{"train": Split, "validation": ..., "test": ...}`` (the splits the config has);
        a ``Split``'s ``x`` and ``y`` are lists of arrays, one per input and output.

    Raises:
        ConfigError: a config or data problem, located in the YAML.
    """
    from kconf.data.sources import load_prepared

    if not overrides:
        cfg = as_config(config)
    elif isinstance(config, LoadedConfig):
        cfg = load_config(config.config, overrides, base_dir=config.source.base_dir)
    else:
        cfg = load_config(config, overrides)
    return load_prepared(cfg).splits
