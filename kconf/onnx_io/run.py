"""``kconf export-onnx``: a config or a run folder (its trained weights) as an ONNX file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kconf.api import build_model
from kconf.onnx_io.export import DEFAULT_OPSET, export_onnx, require_onnx
from kconf.train.resolve import resolve_config
from kconf.train.runs import read_source_info
from kconf.train.trained import RESOLVED, WEIGHTS, is_run_dir, read_weight_file, set_named_weights

#: ``run folder -> {input name: [Rescaling/Normalization specs]}``: the preprocessing a run
#: saved, put in front of the model's inputs. None: no saved preprocessing is read (the lead
#: wires this to the run's ``preprocess.json`` reader).
RUN_PREPROCESSING: Callable[[Path], Mapping[str, Sequence[Any]]] | None = None


def export_model(config: str | os.PathLike, out: str | os.PathLike,
                 opset: int = DEFAULT_OPSET,
                 weights: str | os.PathLike | None = None) -> Path:
    """``kconf export-onnx``: a config's model (its seed's initial weights, or ``weights``)
    or a run folder's (its ``weights.npz`` and saved preprocessing) as ``out``.

    Raises:
        ConfigError: the onnx package is missing, a config problem, weights that do not fit,
            or layers ONNX export cannot express (all listed, located in the config).
    """
    require_onnx()
    config = Path(config)
    base, preprocessing = None, None
    if is_run_dir(config):
        base = read_source_info(config).get("base_dir")
        if RUN_PREPROCESSING is not None:
            preprocessing = RUN_PREPROCESSING(config)
        if weights is None:
            weights = config / WEIGHTS
        config = config / RESOLVED
    if weights is not None and is_run_dir(weights):
        weights = Path(weights) / WEIGHTS
    cfg, _ = resolve_config(config, (), base_dir=base if base and Path(base).is_dir() else None)
    model = build_model(cfg)
    if weights is not None:
        set_named_weights(model, read_weight_file(weights), str(weights))
    return export_onnx(model, out, opset, preprocessing, source=cfg.source)
