"""Keras interoperability, both ways, with Keras's numbers.

In: a Keras model (``model.to_json()``'s JSON, Keras 3 or Keras 2 format, or a ``.keras``
archive) becomes a kconf config, and Keras weights (``.weights.h5``, the archive's own, a
Keras 2 ``.h5``) kconf's ``weights.npz``. Every layer, argument or option kconf does not
implement stops the import, each one named at its place in the Keras JSON.

Out: a kconf model becomes Keras 3's JSON and a ``.keras`` archive that
``keras.saving.load_model`` opens, with the same predictions.

Keras is never imported; HDF5 files need h5py (``pip install 'kconf[keras]'``).

    import kconf
    config = kconf.from_keras("model.keras")         # a dict: kconf.build_model(config)
    model.save_keras("model.keras")                  # a kconf.Model, with its weights
"""
from __future__ import annotations

from kconf.keras_io.export import export_keras, keras_json, save_keras
from kconf.keras_io.h5 import read_keras_weights
from kconf.keras_io.importer import ImportResult, from_keras, import_keras

__all__ = ["from_keras", "import_keras", "ImportResult", "read_keras_weights", "keras_json",
           "export_keras", "save_keras"]
