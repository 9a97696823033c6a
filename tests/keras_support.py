"""Shared by tests/test_keras_*.py: the Keras fixtures, and Keras itself when it is around.

The fixtures (tests/fixtures/keras/, made by make_fixtures.py with Keras 3 + JAX) hold each
model's JSON or archive, its weights, and Keras's numbers (``<name>.npz``: predictions,
loss, gradients and weights after one training step). Keras is never imported here: the
tests that need it run a Keras interpreter in a subprocess, found by ``keras_python()``.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kconf.api import build_model
from kconf.engine.layers.dropout import Dropout
from kconf.keras_io.h5 import read_keras_weights
from kconf.keras_io.importer import Imported, convert
from kconf.train.trained import set_named_weights

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "keras"

#: The Keras-2 fixture's JSON holds no compile config; make_fixtures.py compiled it so.
KERAS2_COMPILE = {"optimizer": {"SGD": {"learning_rate": 0.1}},
                  "loss": "categorical_crossentropy"}


@dataclass(frozen=True)
class Case:
    """One fixture: the model file, its weights file (None: the archive's own)."""

    name: str
    model: str
    weights: str | None = None

    @property
    def model_path(self) -> Path:
        return FIXTURES / self.model

    def weights_source(self, imported: Imported):
        return FIXTURES / self.weights if self.weights else imported.source.weights


#: The Keras 2 model (hand-written JSON, see make_fixtures.py).
KERAS2_CASE = Case("keras2_functional", "keras2_functional.json", "keras2_functional.h5")
#: keras.applications' building blocks in one model (make_app_blocks.py).
APP_BLOCKS = Case("app_blocks", "app_blocks.keras")
CASES = [
    Case("mlp", "mlp.keras"),
    Case("vgg", "vgg.json", "vgg.weights.h5"),
    Case("twitter", "twitter.keras"),
    Case("shared_lstm", "shared_lstm.json", "shared_lstm.weights.h5"),
    Case("time_distributed", "time_distributed.keras"),
    KERAS2_CASE,
    APP_BLOCKS,
]
#: The fixtures written by Keras 3 (the Keras-2 one is hand-written in that format).
KERAS3_CASES = CASES[:5]


def imported_model(case: Case):
    """The fixture imported, compiled as Keras compiled it, holding Keras's weights."""
    imported = convert(case.model_path)
    if case.name == "keras2_functional":
        imported.config["compile"] = KERAS2_COMPILE
    model = build_model(imported.config)
    named = read_keras_weights(model, case.weights_source(imported), imported.keras_names)
    set_named_weights(model, named, case.model)
    return imported, model


def reference(case: Case) -> dict[str, np.ndarray]:
    """Keras's numbers for the fixture."""
    with np.load(FIXTURES / f"{case.name}.npz") as data:
        return {k: data[k] for k in data.files}


def arrays(ref: dict, prefix: str, names: list[str]) -> list[np.ndarray]:
    """``ref[prefix/name]`` for each name; a Sequential model's single input is ``x``."""
    found = [ref[f"{prefix}/{n}"] for n in names if f"{prefix}/{n}" in ref]
    if len(found) != len(names):
        found = [v for k, v in ref.items() if k.startswith(prefix + "/")]
    return found


def model_inputs(model, ref: dict, prefix: str = "x"):
    xs = arrays(ref, prefix, model.input_names)
    return xs[0] if len(xs) == 1 else xs


def without_dropout(model) -> None:
    """Dropout rate 0 everywhere: the fixtures' training step was taken so (see
    make_fixtures.py: the two random streams cannot agree)."""
    for layer in model.graph.layers:
        if isinstance(layer, Dropout):
            layer.rate = 0.0


# --- Keras in a subprocess -------------------------------------------------------------------

#: Where a Keras 3 interpreter may be (outside kconf's environment): $KCONF_KERAS_PYTHON,
#: the reference environment of the issue, then this interpreter.
_CANDIDATES = (os.environ.get("KCONF_KERAS_PYTHON"), "/tmp/ref/bin/python", sys.executable)


@functools.lru_cache(maxsize=1)
def keras_runtime() -> tuple[str, str] | None:
    """``(python, backend)``: an interpreter that imports Keras 3 with the torch (quickest to
    start) or JAX backend; None when there is none."""
    for python in _CANDIDATES:
        if not python or not (Path(python).exists() or shutil.which(python)):
            continue
        for backend in ("torch", "jax"):
            done = subprocess.run([python, "-c", "import keras; assert keras.__version__ >= '3'"],
                                  env=keras_env(backend), capture_output=True, timeout=300)
            if done.returncode == 0:
                return python, backend
    return None


def keras_env(backend: str) -> dict[str, str]:
    """The environment of a Keras subprocess: the backend, one BLAS thread."""
    env = dict(os.environ)
    env["KERAS_BACKEND"] = backend
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_keras(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``script`` with Keras (``keras_runtime()`` must not be None)."""
    python, backend = keras_runtime()
    return subprocess.run([python, "-c", script, *args], env=keras_env(backend),
                          capture_output=True, text=True, timeout=timeout)
