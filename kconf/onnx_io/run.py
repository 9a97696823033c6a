"""``kconf export-onnx``: a config or a run folder (its trained weights) as an ONNX file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from kconf.keras_io.export_run import exported_model
from kconf.onnx_io.export import DEFAULT_OPSET, export_onnx, require_onnx
from kconf.train.trained import is_run_dir


def run_preprocessing(folder: Path) -> Mapping[str, Sequence[Any]]:
    """The preprocessing a run folder saved, as layers to put in front of the model's inputs:
    ``{input name: [{Rescaling: {...}} | {Normalization: {...}} | engine layer, ...]}``.

    The one place that reads it for ONNX export: the run's ``preprocess.json`` (issue 15,
    part 1) goes through here once kconf saves it; until then there is nothing to read.
    """
    return {}


def export_model(config: str | os.PathLike, out: str | os.PathLike,
                 opset: int | None = None,
                 weights: str | os.PathLike | None = None,
                 preprocessing: Mapping[str, Sequence[Any]] | None = None) -> Path:
    """``kconf export-onnx``: a config's model (its seed's initial weights, or ``weights``)
    or a run folder's (its ``weights.npz`` and saved preprocessing) as ``out``.

    Args:
        config: a config file or a run folder.
        out: the ``.onnx`` file to write.
        opset: the ONNX opset (default ``DEFAULT_OPSET``).
        weights: a run folder, ``weights.npz`` or checkpoint to load instead.
        preprocessing: input name -> Rescaling/Normalization layers put first (default: a
            run folder's saved preprocessing, ``run_preprocessing``).

    Returns:
        The path written.

    Raises:
        ConfigError: the onnx package is missing, a config problem, weights that do not fit,
            or layers ONNX export cannot express (all listed, located in the config).
    """
    require_onnx()
    if preprocessing is None and is_run_dir(config):
        preprocessing = run_preprocessing(Path(config))
    model, cfg, _ = exported_model(config, weights)
    return export_onnx(model, out, opset or DEFAULT_OPSET, preprocessing, source=cfg.source)
