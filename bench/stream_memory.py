"""Peak memory of training on a streamed ``.npy`` larger than a stated memory budget.

Writes ``x.npy`` (float32, ``--gib`` GiB: 4x the ``--budget-gib`` budget by default) and
``y.npy`` (int32 labels) under ``--dir``, then trains ``kconf train`` on it with
``data.train.npy.stream: true`` in a child process and reports the child's peak RSS
(``ru_maxrss``). The same training on a small file (``--small-mib``) runs first, so the table
shows that peak RSS stays where it is when the data grows 64 times.

    python bench/stream_memory.py                       # 4 GiB of data, budget 1 GiB
    python bench/stream_memory.py --gib 1 --budget-gib 0.25 --shuffle-buffer 4096
    python bench/stream_memory.py --out bench/stream_memory.md

The files are written a few MiB at a time (the writer's memory stays small too) and removed
at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 8 << 20  # bytes written per step

CONFIG = """name: stream_memory
seed: 0
model:
  sequential:
    - Dense: {{units: 64, activation: relu, input_shape: [{features}]}}
    - Dense: {{units: 10, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
data:
  train: {{npy: {{x: {x}, y: {y}, stream: true{buffer}}}}}
fit: {{epochs: {epochs}, batch_size: {batch_size}}}
"""


def write_data(folder: Path, samples: int, features: int) -> None:
    """x.npy (float32 normals) and y.npy (int32 labels from x), a chunk at a time with plain
    writes (no memory map: the writer's memory stays a chunk too)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    step = max(1, CHUNK // (4 * features))
    with open(folder / "x.npy", "wb") as fx, open(folder / "y.npy", "wb") as fy:
        for f, shape, dtype in ((fx, (samples, features), np.float32),
                                (fy, (samples, 1), np.int32)):
            np.lib.format.write_array_header_1_0(f, {"descr": np.dtype(dtype).str,
                                                     "fortran_order": False, "shape": shape})
        for start in range(0, samples, step):
            part = rng.standard_normal((min(step, samples - start), features), dtype=np.float32)
            fx.write(part.tobytes())
            fy.write(part[:, :10].argmax(axis=1).astype(np.int32).tobytes())


def train(folder: Path, features: int, args) -> dict:
    """Train on ``folder``'s files in a child process; its peak RSS and wall time."""
    buffer = f", shuffle_buffer: {args.shuffle_buffer}" if args.shuffle_buffer else ""
    config = folder / "stream_memory.yaml"
    config.write_text(CONFIG.format(features=features, x=folder / "x.npy", y=folder / "y.npy",
                                    buffer=buffer, epochs=args.epochs,
                                    batch_size=args.batch_size))
    code = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run([sys.executable, '-m', 'kconf.cli', 'train', sys.argv[1], "
        "'--quiet', '--output-dir', sys.argv[2]])\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'rc': r.returncode, 'peak_kib': peak, "
        "'seconds': time.perf_counter() - t}))\n")
    # a fresh parent per run: RUSAGE_CHILDREN then holds this training's process alone
    out = subprocess.run([sys.executable, "-c", code, str(config), str(folder / "runs")],
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"kconf train failed on {config}:\n{out.stderr}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=4.0, help="size of x.npy in GiB")
    parser.add_argument("--budget-gib", type=float, default=1.0,
                        help="the memory budget stated (the data is --gib of it)")
    parser.add_argument("--small-mib", type=float, default=64.0,
                        help="size of the small run's x.npy in MiB")
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--shuffle-buffer", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/kconf_stream_memory"))
    parser.add_argument("--keep", action="store_true", help="keep the data files")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args()

    row_bytes = 4 * args.features
    rows = []
    try:
        for label, size in (("small", args.small_mib * 2**20), ("large", args.gib * 2**30)):
            samples = int(size // row_bytes)
            folder = args.dir / label
            t = time.perf_counter()
            write_data(folder, samples, args.features)
            written = time.perf_counter() - t
            result = train(folder, args.features, args)
            rows.append({"data": label, "samples": samples,
                         "x_gib": samples * row_bytes / 2**30,
                         "peak_rss_mib": result["peak_kib"] / 1024,
                         "train_s": result["seconds"], "write_s": written})
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    budget = args.budget_gib * 1024
    buffer = f", shuffle_buffer: {args.shuffle_buffer}" if args.shuffle_buffer else ""
    lines = [
        f"Streamed .npy (stream: true{buffer}), "
        f"{args.features} float32 features, Dense 64 -> 10, batch {args.batch_size}, "
        f"{args.epochs} epoch(s); budget {args.budget_gib:g} GiB",
        "",
        "| data | samples | x.npy | peak RSS | of the budget | train (wall) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['data']} | {r['samples']:,} | {r['x_gib']:.3f} GiB | "
                     f"{r['peak_rss_mib']:.0f} MiB | {100 * r['peak_rss_mib'] / budget:.0f}% | "
                     f"{r['train_s']:.0f} s |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    large = rows[-1]
    if large["peak_rss_mib"] > budget:
        raise SystemExit(f"peak RSS {large['peak_rss_mib']:.0f} MiB is over the budget "
                         f"{budget:.0f} MiB")


if __name__ == "__main__":
    main()
