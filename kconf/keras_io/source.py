"""Reading what ``kconf import-keras`` is given: a model's JSON or a ``.keras`` archive.

    model.json        what ``model.to_json()`` writes (Keras 3, or Keras 2 / tf.keras)
    model.keras       a zip of config.json, model.weights.h5 and metadata.json (Keras 3)
    model.h5          a whole Keras 2 model saved to HDF5 (its config and weights)
    a dict            the parsed JSON
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kconf.keras_io.archive import ARCHIVE_CONFIG, ARCHIVE_METADATA, ARCHIVE_WEIGHTS
from kconf.keras_io.findings import fail

#: The file name of messages about a model given as a dict.
DICT_SOURCE = "<keras config>"


@dataclass
class KerasSource:
    """A Keras model as read from its file.

    Attributes:
        data: the model's JSON (``class_name``, ``config``, maybe ``compile_config``).
        file: the file's name, for messages.
        version: the Keras major version whose format it is (2 or 3).
        weights: the weights it carries (an archive's ``model.weights.h5`` as bytes, or the
            path of a Keras 2 ``.h5`` model), or None.
        keras_version: the Keras version that wrote it, when the file says.
    """

    data: dict[str, Any]
    file: str
    version: int
    weights: bytes | Path | None = None
    keras_version: str | None = None


def read_source(source: str | os.PathLike | Mapping[str, Any]) -> KerasSource:
    """Read a Keras model file (or take its parsed JSON).

    Args:
        source: a ``.json``, ``.keras`` or Keras 2 ``.h5`` file, or the JSON as a dict.

    Returns:
        The ``KerasSource``.

    Raises:
        ConfigError: a missing or unreadable file, or one that holds no Keras model.
    """
    if isinstance(source, Mapping):
        data = dict(source)
        return KerasSource(data, DICT_SOURCE, format_version(data), None,
                           data.get("keras_version"))
    path = Path(source)
    file = str(source)
    if not path.is_file():
        raise fail(file, "is a directory, not a Keras model file" if path.is_dir()
                   else "file not found")
    if zipfile.is_zipfile(path):
        return _read_archive(path, file)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\x89HDF"):
        return _read_h5_model(path, file)
    data = _parse_json(_read_text(path, file), file)
    return KerasSource(data, file, format_version(data), None, data.get("keras_version"))


def format_version(data: Mapping[str, Any]) -> int:
    """The Keras major version of a model's JSON: what it says, else 3 when it has Keras 3's
    ``module`` keys, else 2."""
    version = str(data.get("keras_version", ""))
    if version[:1].isdigit():
        return 3 if int(version.split(".")[0]) >= 3 else 2
    return 3 if "module" in data else 2


def _read_text(path: Path, file: str) -> str:
    """A file's text; a clear error for anything that is not UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise fail(file, f"is not a Keras model's JSON: not UTF-8 text (byte {err.start})") \
            from None
    except OSError as err:
        raise fail(file, f"cannot be read: {err.strerror or err}") from None


def _parse_json(text: str, file: str) -> dict[str, Any]:
    """The JSON of a model; a clear error for anything else."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise fail(file, f"is not valid JSON (line {err.lineno}, column {err.colno}: "
                         f"{err.msg}); give what model.to_json() writes, or a .keras file") \
            from None
    if not isinstance(data, dict) or "class_name" not in data:
        raise fail(file, "is not a Keras model's JSON: expected an object with class_name "
                         "and config, as model.to_json() writes")
    return data


def _read_archive(path: Path, file: str) -> KerasSource:
    """A ``.keras`` archive: its config, its weights (if any) and its Keras version."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if ARCHIVE_CONFIG not in names:
                raise fail(file, f"is a zip archive without {ARCHIVE_CONFIG}: not a .keras "
                                 "model")
            text = archive.read(ARCHIVE_CONFIG).decode("utf-8")
            weights = archive.read(ARCHIVE_WEIGHTS) if ARCHIVE_WEIGHTS in names else None
            meta = {}
            if ARCHIVE_METADATA in names:
                meta = json.loads(archive.read(ARCHIVE_METADATA).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise fail(file, f"cannot read the .keras archive: {err}") from None
    data = _parse_json(text, f"{file}:{ARCHIVE_CONFIG}")
    version = meta.get("keras_version") if isinstance(meta, dict) else None
    return KerasSource(data, file, 3, weights, version)


def _read_h5_model(path: Path, file: str) -> KerasSource:
    """A whole model in a Keras 2 HDF5 file (``model_config`` attribute + weights)."""
    from kconf.keras_io.h5 import h5py_module

    h5py = h5py_module()
    try:
        with h5py.File(path, "r") as handle:
            config = handle.attrs.get("model_config")
            version = handle.attrs.get("keras_version")
    except OSError as err:
        raise fail(file, f"cannot read the HDF5 file: {err}") from None
    if config is None:
        raise fail(file, "is an HDF5 file without a model config: a weights file? Give the "
                         "model (JSON or .keras) and pass this file with --weights")
    if isinstance(config, bytes):
        config = config.decode("utf-8")
    if isinstance(version, bytes):
        version = version.decode("utf-8")
    data = _parse_json(config, file)
    return KerasSource(data, file, 2, path, version)
