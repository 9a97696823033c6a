"""``kconf export-onnx``: a config or a run folder (its trained weights) as an ONNX file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kconf.keras_io.export_run import exported_model
from kconf.onnx_io.export import DEFAULT_OPSET, export_onnx, require_onnx
from kconf.train.trained import is_run_dir

#: ``run folder -> {input name: [Rescaling/Normalization specs]}``: the preprocessing a run
#: saved, put in front of the model's inputs. None: no saved preprocessing is read (the lead
#: wires this to the run's ``preprocess.json`` reader).
RUN_PREPROCESSING: Callable[[Path], Mapping[str, Sequence[Any]]] | None = None


def export_model(config: str | os.PathLike, out: str | os.PathLike,
                 opset: int | None = None,
                 weights: str | os.PathLike | None = None) -> Path:
    """``kconf export-onnx``: a config's model (its seed's initial weights, or ``weights``)
    or a run folder's (its ``weights.npz`` and saved preprocessing) as ``out``.

    Raises:
        ConfigError: the onnx package is missing, a config problem, weights that do not fit,
            or layers ONNX export cannot express (all listed, located in the config).
    """
    require_onnx()
    preprocessing = None
    if is_run_dir(config) and RUN_PREPROCESSING is not None:
        preprocessing = RUN_PREPROCESSING(Path(config))
    model, cfg, _ = exported_model(config, weights)
    return export_onnx(model, out, opset or DEFAULT_OPSET, preprocessing, source=cfg.source)
