"""``kconf export-keras``: a config or a run folder, with its trained weights, as Keras files.

The conversion itself (``export.export_keras``) takes a model; this builds that model from a
config, or a run folder's ``resolved.yaml``, and loads the weights into it.
"""
from __future__ import annotations

import os
from pathlib import Path

from kconf.api import build_model
from kconf.keras_io.export import export_keras
from kconf.train.resolve import resolve_config
from kconf.train.runs import read_source_info
from kconf.train.trained import RESOLVED, WEIGHTS, is_run_dir, read_weight_file, set_named_weights


def export_model(config: str | os.PathLike, out: str | os.PathLike,
                 weights: str | os.PathLike | None = None) -> list[Path]:
    """``kconf export-keras``: a config (or run folder) and its weights, as Keras files.

    Args:
        config: a config file, or a run folder (its ``resolved.yaml``, and its
            ``weights.npz`` unless ``weights`` is given).
        out: the path stem (``OUT.json``, ``OUT.keras``).
        weights: a run folder, a ``weights.npz`` or a checkpoint; without weights (and a
            config file) only ``OUT.json`` is written.

    Returns:
        The files written.

    Raises:
        ConfigError: a config problem, weights that do not fit (naming the layer), or a
            setting Keras cannot express.
    """
    model, _, weights = exported_model(config, weights)
    return export_keras(model, out, weights=weights is not None)


def exported_model(config: str | os.PathLike, weights: str | os.PathLike | None = None):
    """The model an export writes: a config's (or a run folder's ``resolved.yaml``), with
    ``weights`` (a run folder, ``weights.npz`` or checkpoint; a run folder's own by default).

    Returns:
        ``(model, loaded config, the weights file or None)``.
    """
    config = Path(config)
    base = None
    if is_run_dir(config):
        base = read_source_info(config).get("base_dir")
        if weights is None:
            weights = config / WEIGHTS
        config = config / RESOLVED
    if weights is not None and is_run_dir(weights):
        weights = Path(weights) / WEIGHTS
    cfg, _ = resolve_config(config, (), base_dir=base if base and Path(base).is_dir() else None)
    model = build_model(cfg)
    if weights is not None:
        set_named_weights(model, read_weight_file(weights), str(weights))
    return model, cfg, weights
