"""Keras weight files (HDF5, through h5py): read by layer into kconf's ``layer/weight`` names,
and written in Keras 3's layout.

Keras 3 (``model.weights.h5``, ``*.weights.h5``) keeps each layer's variables in a group of
its model's ``layers`` group, keyed by class (``layers/dense_1/vars/0``), and writes the
layer's name on the ``vars`` group; a recurrent layer's variables sit in ``cell/vars``,
TimeDistributed's layer in ``layer/``, Bidirectional's in ``forward_layer/`` and
``backward_layer/``, a nested model's layers in its own ``layers/``.
Keras 2 (``save_weights('w.h5')``, and the weights of a whole-model ``.h5``) keeps one group
per layer name with a ``weight_names`` attribute. Either way weights are found by layer
name, never by position alone, and every missing layer or misshapen array is reported with
the layer's name.
"""
from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from kconf.engine.layers.attention import MultiHeadAttention
from kconf.engine.layers.bidirectional import Bidirectional
from kconf.engine.layers.recurrent import Recurrent
from kconf.engine.layers.time_distributed import TimeDistributed
from kconf.errors import ConfigError, Problem, SourcePos
from kconf.graph.model_layer import ModelLayer
from kconf.keras_io.archive import ARCHIVE_WEIGHTS

#: What to install when h5py is missing.
INSTALL_HINT = "pip install 'kconf[keras]' (or: pip install h5py)"

#: (model name or None for the main model, kconf layer name) -> the layer's Keras name.
KerasNames = Mapping[tuple[Any, str], str]


def h5py_module():
    """The h5py module, or a clear error saying how to install it.

    Raises:
        ConfigError: h5py is not installed.
    """
    try:
        import h5py
    except ImportError:
        raise ConfigError([Problem(f"Keras weight files (HDF5) need h5py: {INSTALL_HINT}")]) \
            from None
    return h5py


# --- reading ---------------------------------------------------------------------------------


def read_keras_weights(model, source: str | os.PathLike | bytes,
                       keras_names: KerasNames | None = None,
                       file: str | None = None) -> dict[str, np.ndarray]:
    """Every weight of a kconf model from a Keras weight file, by layer.

    Args:
        model: a built ``kconf.model.Model`` (its weights give names and shapes).
        source: a ``.weights.h5`` file, a ``.keras`` archive, a Keras 2 ``.h5`` (weights or
            whole model), or the bytes of a ``model.weights.h5``.
        keras_names: Keras's names of layers kconf renamed (see ``Converted``).
        file: the name messages use (default: the path).

    Returns:
        ``{"dense/kernel": array, ...}``, as kconf's ``weights.npz`` stores them.

    Raises:
        ConfigError: an unreadable file, or every layer whose weights are missing or do not
            fit (naming the layer, the array and both shapes).
    """
    h5py = h5py_module()
    name = file or (str(source) if not isinstance(source, bytes) else "model.weights.h5")
    handle = _open(source, name)
    try:
        with h5py.File(handle, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            reader = _Reader(name, keras_names or {})
            if "layer_names" in root.attrs:
                reader.legacy(root, model.graph.layers)
            else:
                reader.container(root, model.graph.layers, None, "", "")
    except OSError as err:
        raise ConfigError([Problem(f"cannot read the weights (HDF5): {err}", (),
                                   SourcePos(name))], name) from None
    if reader.problems:
        raise ConfigError(reader.problems, name)
    return reader.out


def _open(source: str | os.PathLike | bytes, name: str) -> Any:
    """Something h5py can open: a path, or the bytes of an archive's weights."""
    if isinstance(source, bytes):
        return io.BytesIO(source)
    path = Path(source)
    if not path.is_file():
        raise ConfigError([Problem("weights file not found", (), SourcePos(name))], name)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if ARCHIVE_WEIGHTS not in archive.namelist():
                raise ConfigError([Problem(f"the archive has no {ARCHIVE_WEIGHTS}", (),
                                           SourcePos(name))], name)
            return io.BytesIO(archive.read(ARCHIVE_WEIGHTS))
    return str(path)


def _text(value: Any) -> str:
    """An HDF5 attribute as text (h5py may give bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _has_arrays(group) -> bool:
    """Whether an HDF5 group holds any dataset below it."""
    found = []
    group.visititems(lambda _, obj: found.append(1) if hasattr(obj, "shape") else None)
    return bool(found)


def _kind(layer) -> str:
    """What messages call a layer's type: its class; Sequential or Functional for a model."""
    return layer.kind if isinstance(layer, ModelLayer) else type(layer).__name__


class _Reader:
    """Walks a kconf model and a Keras weight file side by side."""

    def __init__(self, file: str, keras_names: KerasNames):
        self.file = file
        self.keras_names = keras_names
        self.problems: list[Problem] = []
        self.out: dict[str, np.ndarray] = {}

    def problem(self, message: str) -> None:
        """Record one mismatch."""
        self.problems.append(Problem(message, (), SourcePos(self.file)))

    def keras_name(self, layer, scope: str | None) -> str:
        """The name Keras gave a layer (kconf renamed a few; models share one scope)."""
        key = (None, layer.name) if isinstance(layer, ModelLayer) else (scope, layer.name)
        return self.keras_names.get(key, layer.name)

    # --- Keras 3 --------------------------------------------------------------------------
    def container(self, group, layers: Iterable, scope: str | None, prefix: str,
                  where: str) -> None:
        """The layers of one model, found in its ``layers`` group by their names."""
        children = group.get("layers")
        by_name = {}
        for key, child in (children.items() if children is not None else ()):
            tag = child.get("vars")
            by_name[_text(tag.attrs.get("name", key)) if tag is not None else key] = (key, child)
        matched = set()
        for layer in layers:
            if not layer.weights:
                continue
            name = self.keras_name(layer, scope)
            if name not in by_name:
                found = sorted(n for n, (_, g) in by_name.items() if _has_arrays(g))
                self.problem(f"layer {layer.name!r} ({_kind(layer)}): the weights file has no "
                             f"weights for a layer named {name!r} in {where or 'the model'} "
                             f"(it has: {', '.join(found) or 'none'})")
                continue
            key, child = by_name[name]
            matched.add(name)
            self.layer(child, layer, scope, f"{prefix}{layer.name}/", f"{where}layers/{key}/")
        extra = sorted(n for n, (_, g) in by_name.items() if n not in matched and _has_arrays(g))
        if extra:
            self.problem(f"the weights file has weights for layers the model does not have: "
                         f"{', '.join(extra)} (in {where or 'the model'})")

    def layer(self, group, layer, scope: str | None, prefix: str, where: str) -> None:
        """One layer's weights: a nested model's, a wrapper's layer's, or its own."""
        if isinstance(layer, ModelLayer):
            self.container(group, layer.graph.layers, layer.name, prefix, where)
        elif isinstance(layer, Bidirectional):  # forward_layer/, backward_layer/
            for side, sub in (("forward_layer", layer.forward_layer),
                              ("backward_layer", layer.backward_layer)):
                inner = group.get(side)
                if inner is None:
                    self.problem(f"layer {layer.name!r} (Bidirectional): the weights file has "
                                 f"no '{side}' group ({where})")
                else:
                    self.arrays(inner, sub, f"{prefix}{sub.name}/", f"{where}{side}/")
        elif isinstance(layer, TimeDistributed):
            inner = group.get("layer")
            if inner is None:
                self.problem(f"layer {layer.name!r} (TimeDistributed): the weights file has no "
                             f"'layer' group for the layer it wraps ({where})")
            elif isinstance(layer.layer, ModelLayer):
                self.container(inner, layer.layer.graph.layers, layer.layer.name, prefix,
                               f"{where}layer/")
            else:
                self.arrays(inner, layer, prefix, f"{where}layer/")
        else:
            self.arrays(group, layer, prefix, where)

    def arrays(self, group, layer, prefix: str, where: str) -> None:
        """The ``vars`` of a layer (a recurrent layer's are its cell's), in Keras's order."""
        inner = layer.layer if isinstance(layer, TimeDistributed) else layer
        if isinstance(inner, MultiHeadAttention):  # its sublayers' groups, in weight order
            values = []
            for key, _, weights in inner.keras_weight_groups:
                tag = group.get(f"{key}/vars") if weights else None
                values += [] if tag is None else [tag[k] for k in sorted(tag, key=_index)]
            self.match(layer, values, prefix, f"{where}(query|key|value|output)_dense/vars")
            return
        path = "cell/vars" if isinstance(inner, Recurrent) else "vars"
        tag = group.get(path)
        values = [] if tag is None else [tag[k] for k in sorted(tag, key=_index)]
        self.match(layer, values, prefix, f"{where}{path}")

    def match(self, layer, values: list, prefix: str, where: str) -> None:
        """Pair a layer's weights with the file's arrays, checking count and shapes."""
        expected = list(layer.weights.items())
        kind = _kind(layer)
        if len(values) != len(expected):
            self.problem(f"layer {layer.name!r} ({kind}): the weights file has {len(values)} "
                         f"array(s) for it ({where}) but the model needs {len(expected)} "
                         f"({', '.join(k for k, _ in expected)})")
            return
        for (key, current), value in zip(expected, values):
            if tuple(value.shape) != tuple(current.shape):
                self.problem(f"layer {layer.name!r} ({kind}): weight {key!r} has shape "
                             f"{tuple(current.shape)} in the model but {tuple(value.shape)} in "
                             f"the weights file ({where})")
                continue
            self.out[f"{prefix}{key}"] = np.asarray(value, dtype=current.dtype)

    # --- Keras 2 --------------------------------------------------------------------------
    def legacy(self, root, layers: Iterable) -> None:
        """Keras 2's layout: a group per layer name, its arrays listed in ``weight_names``."""
        for layer in layers:
            if not layer.weights:
                continue
            name = self.keras_name(layer, None)
            if name not in root:
                self.problem(f"layer {layer.name!r} ({_kind(layer)}): the weights file has no "
                             f"weights for a layer named {name!r}")
                continue
            group = root[name]
            names = [_text(n) for n in group.attrs.get("weight_names", [])]
            self.match(layer, [group[n] for n in names], f"{layer.name}/", f"{name}/")


def _index(key: str) -> int:
    """The position of a ``vars`` dataset (``"0"``, ``"1"``...)."""
    return int(key) if key.isdigit() else -1


# --- writing ---------------------------------------------------------------------------------


@dataclass
class Group:
    """One group of a Keras 3 weights file: its path, the ``name`` of its ``vars`` and the
    arrays stored there (``vars/0``, ``vars/1`` ...)."""

    path: str
    name: str | None
    arrays: list[np.ndarray] = field(default_factory=list)


def write_weights(groups: Iterable[Group]) -> bytes:
    """A ``.weights.h5`` file holding ``groups``, as bytes.

    Raises:
        ConfigError: h5py is not installed.
    """
    h5py = h5py_module()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for group in groups:
            tag = f.require_group(f"{group.path}/vars" if group.path else "vars")
            if group.name is not None:
                tag.attrs["name"] = group.name
            for i, array in enumerate(group.arrays):
                tag.create_dataset(str(i), data=np.asarray(array))
    return buffer.getvalue()
