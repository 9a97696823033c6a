"""``kconf export-keras``: a config or a run folder, with its trained weights, as Keras files.

The conversion itself (``export.export_keras``) takes a model; this builds that model from a
config, or a run folder's ``resolved.yaml``, and loads the weights into it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from kconf.api import build_model
from kconf.config import load_config
from kconf.errors import ConfigError, Problem, SourcePos
from kconf.graph.construct import snake_case
from kconf.keras_io.export import export_keras
from kconf.train.preprocessing import (
    PREPROCESS_FILE,
    NotExpressible,
    keras_layers,
    read_preprocessing,
)
from kconf.train.resolve import resolve_config
from kconf.train.runs import read_source_info
from kconf.train.trained import RESOLVED, WEIGHTS, is_run_dir, read_weight_file, set_named_weights


def export_model(config: str | os.PathLike, out: str | os.PathLike,
                 weights: str | os.PathLike | None = None,
                 with_preprocessing: bool = True) -> list[Path]:
    """``kconf export-keras``: a config (or run folder) and its weights, as Keras files.

    Args:
        config: a config file, or a run folder (its ``resolved.yaml``, and its
            ``weights.npz`` unless ``weights`` is given).
        out: the path stem (``OUT.json``, ``OUT.keras``).
        weights: a run folder, a ``weights.npz`` or a checkpoint; without weights (and a
            config file) only ``OUT.json`` is written.
        with_preprocessing: a run folder's saved preprocessing goes in front of the model
            as Keras preprocessing layers (``Rescaling``, ``Normalization``, ``Reshape``),
            so the exported model takes raw inputs; False: the bare model.

    Returns:
        The files written.

    Raises:
        ConfigError: a config problem, weights that do not fit (naming the layer), or a
            setting Keras cannot express.
    """
    model, _, weights = exported_model(config, weights, with_preprocessing)
    return export_keras(model, out, weights=weights is not None)


def exported_model(config: str | os.PathLike, weights: str | os.PathLike | None = None,
                   with_preprocessing: bool = False):
    """The model an export writes: a config's (or a run folder's ``resolved.yaml``), with
    ``weights`` (a run folder, ``weights.npz`` or checkpoint; a run folder's own by default).

    Args:
        config: a config file or a run folder.
        weights: the weights to load.
        with_preprocessing: put a run folder's saved preprocessing in front of its inputs
            as layers (``with_layers``).

    Returns:
        ``(model, loaded config, the weights file or None)``.
    """
    config = Path(config)
    base = None
    layers = shapes = None
    if with_preprocessing and is_run_dir(config):
        layers, shapes = _run_layers(config)
    if is_run_dir(config):
        base = read_source_info(config).get("base_dir")
        if weights is None:
            weights = config / WEIGHTS
        config = config / RESOLVED
    if weights is not None and is_run_dir(weights):
        weights = Path(weights) / WEIGHTS
    cfg, _ = resolve_config(config, (), base_dir=base if base and Path(base).is_dir() else None)
    if layers:
        cfg = with_layers(cfg, layers, shapes)
    model = build_model(cfg)
    if weights is not None:
        set_named_weights(model, read_weight_file(weights), str(weights))
    return model, cfg, weights


def _run_layers(run_dir: Path) -> tuple[dict[int, list], list[list[int]]]:
    """A run's saved preprocessing as layers per input index, and the raw input shapes."""
    pre = read_preprocessing(run_dir)
    if not pre:
        return {}, []
    try:
        return keras_layers(pre), pre.x_shapes
    except NotExpressible as exc:
        raise ConfigError([Problem(f"{exc}; export without it: --without-preprocessing", (),
                                   SourcePos(str(run_dir / PREPROCESS_FILE)))]) from None


def with_layers(cfg, layers: dict[int, list[dict[str, Any]]], shapes: list[list[int]]):
    """The config with layers put in front of its inputs (each input then takes the raw
    sample shape ``shapes[i]``); the model's own layers keep their names, so its weights
    load by name as before.

    Args:
        cfg: a loaded config.
        layers: input index -> ``[{ClassName: {args}}, ...]`` in the order they apply.
        shapes: the raw sample shape of each input.

    Returns:
        The new loaded config (its data paths resolved as ``cfg``'s).
    """
    data = cfg.to_data()
    model = data["model"]
    counts: dict[str, int] = {}

    def named(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        ((cls, args),) = spec.items()
        base = f"preprocess_{snake_case(cls)}"
        n = counts.get(base, 0)
        counts[base] = n + 1
        name = base if n == 0 else f"{base}_{n}"
        return name, {cls: {**args, "name": name}}

    if "sequential" in model:
        specs = [named(spec)[1] for spec in layers.get(0, [])]
        if specs:
            ((cls, args),) = specs[0].items()
            args["input_shape"] = list(shapes[0])
            model["sequential"] = [*specs, *model["sequential"]]
    else:
        fn = model["functional"]
        names = list(fn["inputs"])
        lines = []
        renamed = {}
        for k, specs in sorted(layers.items()):
            if not specs:
                continue
            source = names[k]
            fn["inputs"][source]["shape"] = list(shapes[k])
            tensor = source
            for spec in specs:
                name, entry = named(spec)
                ((cls, args),) = entry.items()
                del args["name"]
                fn["layers"][name] = entry
                lines.append(f"{name} = {name}({tensor})")
                tensor = name
            renamed[source] = tensor
        pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, renamed)) + r")(?![\w])")
        fn["graph"] = lines + [line.split("=", 1)[0] + "=" + pattern.sub(
            lambda m: renamed[m.group(1)], line.split("=", 1)[1]) if renamed else line
            for line in fn["graph"]]
        fn["outputs"] = [renamed.get(o, o) for o in fn["outputs"]]
    return load_config(data, base_dir=cfg.source.base_dir)
