"""Checkpoints round-trip exactly and a damaged one is refused, never half-loaded."""
from __future__ import annotations

import numpy as np
import pytest

from kconf.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint


def sample() -> Checkpoint:
    rng = np.random.default_rng(5)
    rng.random(3)
    state = rng.bit_generator.state
    rng = np.random.default_rng(6)
    return Checkpoint(
        epoch=2,
        weights={"dense/kernel": rng.random((3, 2), dtype=np.float32),
                 "dense/bias": np.zeros(2, np.float32)},
        optimizer={"iterations": 7, "m.0": rng.random((3, 2), dtype=np.float32)},
        rng_state=state,
        history={"loss": [1.0, 0.5]},
        callbacks=[{"wait": 1, "best": 0.4,
                    "best_weights": [np.ones(2, np.float32), np.zeros((1, 1))]}],
        meta={"step": 0})


def test_round_trip_is_exact(tmp_path):
    ckpt = sample()
    save_checkpoint(tmp_path / "last.npz", ckpt)
    back = load_checkpoint(tmp_path / "last.npz")
    assert back.epoch == 2 and back.history == ckpt.history and back.meta == ckpt.meta
    for key, value in ckpt.weights.items():
        assert np.array_equal(back.weights[key], value) and back.weights[key].dtype == value.dtype
    assert back.optimizer["iterations"] == 7
    assert np.array_equal(back.optimizer["m.0"], ckpt.optimizer["m.0"])
    assert back.callbacks[0]["wait"] == 1
    assert [a.shape for a in back.callbacks[0]["best_weights"]] == [(2,), (1, 1)]
    resumed = np.random.default_rng()
    resumed.bit_generator.state = back.rng_state
    original = np.random.default_rng(5)
    original.random(3)
    assert np.array_equal(resumed.random(4), original.random(4))


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "last.npz"
    save_checkpoint(path, sample())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(path)


def test_corrupted_bytes_fail_the_crc(tmp_path):
    path = tmp_path / "last.npz"
    save_checkpoint(path, sample())
    data = bytearray(path.read_bytes())
    middle = data.find(b"NUMPY") + 200  # inside the first array's payload
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(path)


def test_other_files_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "w.npz", a=np.zeros(2))
    with pytest.raises(CheckpointError, match="truncated or corrupted|not a kconf checkpoint"):
        load_checkpoint(tmp_path / "w.npz")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.npz")
