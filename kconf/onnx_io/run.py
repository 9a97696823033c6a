"""``kconf export-onnx``: a config or a run folder (its trained weights) as an ONNX file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from kconf.keras_io.export_run import exported_model
from kconf.onnx_io.export import DEFAULT_OPSET, export_onnx, require_onnx
from kconf.errors import ConfigError, Problem, SourcePos
from kconf.train.preprocessing import (
    PREPROCESS_FILE,
    NotExpressible,
    keras_layers,
    read_preprocessing,
)
from kconf.train.trained import is_run_dir


def run_preprocessing(folder: Path) -> tuple[dict[str, list[Any]], dict[str, list[int]]]:
    """The preprocessing a run folder saved (``preprocess.json``), as layers to put in front
    of the model's inputs, and the raw sample shape each such input takes:
    ``({input name: [{Rescaling: {...}} | {Normalization: {...}} | {Reshape: {...}}]},
    {input name: shape})``; empty for a run without preprocessing. A table's encoding stays
    outside (the ONNX inputs are its encoded columns).

    Raises:
        ConfigError: a step with no ONNX form (a one-hot input), at the run's file.
    """
    pre = read_preprocessing(folder)
    if not pre:
        return {}, {}
    try:
        layers = keras_layers(pre)
    except NotExpressible as exc:
        raise ConfigError([Problem(f"{exc}; export without it: --without-preprocessing", (),
                                   SourcePos(str(Path(folder) / PREPROCESS_FILE)))]) from None
    names = pre.inputs
    return ({names[k]: specs for k, specs in layers.items()},
            {names[k]: list(pre.x_shapes[k]) for k in layers})


def export_model(config: str | os.PathLike, out: str | os.PathLike,
                 opset: int | None = None,
                 weights: str | os.PathLike | None = None,
                 preprocessing: Mapping[str, Sequence[Any]] | None = None,
                 with_preprocessing: bool = True) -> Path:
    """``kconf export-onnx``: a config's model (its seed's initial weights, or ``weights``)
    or a run folder's (its ``weights.npz`` and saved preprocessing) as ``out``.

    Args:
        config: a config file or a run folder.
        out: the ``.onnx`` file to write.
        opset: the ONNX opset (default ``DEFAULT_OPSET``).
        weights: a run folder, ``weights.npz`` or checkpoint to load instead.
        preprocessing: input name -> Rescaling/Normalization layers put first (default: a
            run folder's saved preprocessing, ``run_preprocessing``).
        with_preprocessing: False: a run folder's model without its saved preprocessing
            (its inputs take preprocessed data).

    Returns:
        The path written.

    Raises:
        ConfigError: the onnx package is missing, a config problem, weights that do not fit,
            or layers ONNX export cannot express (all listed, located in the config).
    """
    require_onnx()
    raw_shapes = None
    if preprocessing is None and with_preprocessing and is_run_dir(config):
        preprocessing, raw_shapes = run_preprocessing(Path(config))
    model, cfg, _ = exported_model(config, weights)
    return export_onnx(model, out, opset or DEFAULT_OPSET, preprocessing, source=cfg.source,
                       raw_shapes=raw_shapes)
