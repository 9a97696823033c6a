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

from kconf.engine.threads import product_threads
from kconf.errors import KconfError
from kconf.files import write_atomic
from kconf.train.callbacks import Callback, mode_op

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


def snapshot(model, epoch: int, history: dict, stateful=()) -> Checkpoint:
    """Everything needed to continue after ``epoch`` completed epochs."""
    optimizer = model.optimizer
    meta = {"trainable": model.trainable_names()}  # the optimizer's slots follow this order
    # BLAS's thread count, which a model without workers' products round by (resume_run)
    meta["threads"] = product_threads()
    if isinstance(optimizer.learning_rate, (int, float)):
        meta["learning_rate"] = float(optimizer.learning_rate)  # ReduceLROnPlateau changes it
    return Checkpoint(epoch=epoch, weights=dict(model.named_weights()),
                      optimizer=optimizer.get_state(),
                      rng_state=model.train_rng.bit_generator.state,
                      history={k: list(v) for k, v in history.items()},
                      callbacks=[cb.get_state() for cb in stateful], meta=meta)


def restore(model, ckpt: Checkpoint, stateful=()) -> None:
    """Put a checkpoint back into a freshly built model (and its stateful callbacks).

    Raises:
        CheckpointError: the checkpoint does not fit this model (a layer or shape differs).
    """
    named = model.named_weights()
    missing = sorted(set(named) - set(ckpt.weights))
    extra = sorted(set(ckpt.weights) - set(named))
    if missing or extra:
        raise CheckpointError(f"the checkpoint does not fit the model: missing {missing}, "
                              f"unexpected {extra}")
    trained, here = ckpt.meta.get("trainable"), model.trainable_names()
    if trained is not None and trained != here:
        raise CheckpointError(
            f"the checkpoint was trained with other layers frozen: trainable there only "
            f"{sorted(set(trained) - set(here))}, here only {sorted(set(here) - set(trained))} "
            f"(freeze the same layers, before compile, to resume it)")
    for key, array in named.items():
        if array.shape != ckpt.weights[key].shape:
            raise CheckpointError(f"the checkpoint's {key} has shape {ckpt.weights[key].shape}, "
                                  f"the model's {array.shape}")
        array[...] = ckpt.weights[key]
    model.optimizer.set_state(ckpt.optimizer)
    if "learning_rate" in ckpt.meta:
        model.optimizer.learning_rate = ckpt.meta["learning_rate"]
    model.train_rng.bit_generator.state = ckpt.rng_state
    for cb, state in zip(stateful, ckpt.callbacks):
        cb.set_state(state)


class Checkpointer(Callback):
    """Writes ``checkpoints/last.npz`` after every epoch; with a ``monitor`` also
    ``checkpoints/best.npz`` when it improves, and ``epoch-NNN.npz`` unless
    ``save_best_only`` (Keras's ModelCheckpoint, with paths kconf chooses).

    Put it after the callbacks listed in ``stateful`` so their state includes the epoch."""

    def __init__(self, run_dir: Path, stateful=(), monitor: str | None = None,
                 mode: str = "auto", save_best_only: bool = True, history: dict | None = None,
                 best: float | None = None):
        super().__init__()
        self.folder = Path(run_dir) / "checkpoints"
        self.stateful = list(stateful)
        self.monitor = monitor
        self.mode = mode_op(monitor, mode) if monitor else None
        self.save_best_only = save_best_only
        self.history = dict(history or {})
        self.best = best
        #: The streamed data's files and fingerprints (``kconf.data.stream``), saved with
        #: every checkpoint so that a resume refuses files that changed.
        self.streams: dict = {}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.folder.mkdir(exist_ok=True)
        ckpt = snapshot(self.model, epoch + 1, self.history, self.stateful)
        if self.streams:  # the next epoch reads its streams from their start, in the order
            # the saved random stream draws; the files must be the ones read so far
            ckpt.meta["stream"] = {"position": 0, "files": self.streams}
        if self.monitor is not None:
            current = logs.get(self.monitor)
            if current is not None and (self.best is None or (
                    current > self.best if self.mode == "max" else current < self.best)):
                self.best = float(current)
                ckpt.meta["best"] = self.best
                save_checkpoint(self.folder / "best.npz", ckpt)
            ckpt.meta["best"] = self.best
            if not self.save_best_only:
                save_checkpoint(self.folder / f"epoch-{epoch + 1:03d}.npz", ckpt)
        save_checkpoint(self.folder / "last.npz", ckpt)

