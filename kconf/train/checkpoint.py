"""Checkpoints: everything a run needs to continue bit-exactly, in one atomically written file.

A checkpoint holds the weights (by layer and name), the optimizer's slots and step count, the
training random stream's state, the epoch it completed, the history so far and the state of
the callbacks that keep some (EarlyStopping's best value, ReduceLROnPlateau's wait ...). It is
an ``.npz`` (a zip with CRC checks): a truncated or corrupted file fails to open or to verify
and is reported, never half-loaded.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kconf.errors import KconfError
from kconf.train.runs import write_atomic

FORMAT = "kconf-checkpoint-1"


class CheckpointError(KconfError):
    """A checkpoint that cannot be read (missing, truncated, corrupted, or not kconf's)."""


@dataclass
class Checkpoint:
    """What a checkpoint holds (``epoch`` counts completed epochs, from 1)."""

    epoch: int
    weights: dict[str, np.ndarray]
    optimizer: dict
    rng_state: dict
    history: dict[str, list]
    callbacks: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def _split_arrays(state: dict, prefix: str, arrays: dict) -> dict:
    """JSON-able part of ``state``; its arrays go to ``arrays`` under ``prefix``."""
    plain = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            arrays[f"{prefix}{key}"] = value
            plain[key] = {"__array__": f"{prefix}{key}"}
        elif isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
            names = []
            for i, v in enumerate(value):
                arrays[f"{prefix}{key}/{i}"] = v
                names.append(f"{prefix}{key}/{i}")
            plain[key] = {"__arrays__": names}
        else:
            plain[key] = value
    return plain


def _join_arrays(plain: dict, arrays) -> dict:
    out = {}
    for key, value in plain.items():
        if isinstance(value, dict) and "__array__" in value:
            out[key] = arrays[value["__array__"]]
        elif isinstance(value, dict) and "__arrays__" in value:
            out[key] = [arrays[n] for n in value["__arrays__"]]
        else:
            out[key] = value
    return out


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically (a reader sees the old file or the new one)."""
    arrays: dict[str, np.ndarray] = {f"weights/{k}": v for k, v in ckpt.weights.items()}
    header = {
        "format": FORMAT,
        "epoch": ckpt.epoch,
        "optimizer": _split_arrays(ckpt.optimizer, "optimizer/", arrays),
        "rng_state": ckpt.rng_state,
        "history": ckpt.history,
        "callbacks": [_split_arrays(s, f"callbacks/{i}/", arrays)
                      for i, s in enumerate(ckpt.callbacks)],
        "meta": ckpt.meta,
    }
    arrays["header"] = np.array(json.dumps(header))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(Path(path), buf.getvalue())


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify a checkpoint.

    Raises:
        CheckpointError: missing, truncated, corrupted (CRC), or not a kconf checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}  # reads every member: CRCs are checked
        header = json.loads(str(arrays.pop("header")))
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError) as exc:
        raise CheckpointError(f"{path}: the checkpoint is truncated or corrupted and was not "
                              f"loaded ({type(exc).__name__}: {exc})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a kconf checkpoint (format {header.get('format')!r})")
    weights = {k[len("weights/"):]: v for k, v in arrays.items() if k.startswith("weights/")}
    return Checkpoint(
        epoch=header["epoch"], weights=weights,
        optimizer=_join_arrays(header["optimizer"], arrays),
        rng_state=header["rng_state"], history=header["history"],
        callbacks=[_join_arrays(s, arrays) for s in header["callbacks"]],
        meta=header.get("meta", {}))
