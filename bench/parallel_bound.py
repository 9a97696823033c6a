#!/usr/bin/env python
"""How fast a training step could be with perfect parallelism: resnet_small, kconf and PyTorch
eager, on the machine's two cores.

Each framework's step of 32 images is timed these ways, interleaved, every run a fresh process:

- ``1 thread``: batch 32 on one thread (each framework's speed per core);
- ``2 threads``: batch 32 on two threads (what ``bench/run.py`` measures);
- ``bound``: two processes at once, each training batch 16 on one thread. Together they
  train 32 images in the time of one of their steps, with no communication between them, no
  shared interpreter and no thread hand-offs: no scheme that splits a batch over the two
  cores can do better (the batch statistics of BatchNormalization would even have to be
  exchanged on top);
- ``thread split`` (kconf only): one process, two threads, each training its own copy of the
  model on batch 16 on one BLAS thread, nothing exchanged: the same split inside one Python
  process, where the threads share the interpreter's lock and wake each other slowly.

    python bench/parallel_bound.py --ref-python /tmp/ref/bin/python --rounds 3

Prints a Markdown table of the medians (milliseconds per 32 images; min–max in brackets).
kconf runs through ``kconf bench``, PyTorch through ``bench/reference/torch_ref.py``, and the
thread split through this script's own ``--thread-split`` (the only part that imports kconf).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES, EPOCHS = 512, 4


def command(framework: str, batch: int, threads: int, ref_python: str,
            split: bool = False) -> list[str]:
    """The command line of one run (prints one JSON object last)."""
    if split:
        return [sys.executable, __file__, "--thread-split"]
    if framework == "kconf":
        return [sys.executable, "-m", "kconf.cli", "bench", "configs/resnet_small.yaml",
                "--samples", str(SAMPLES), "--epochs", str(EPOCHS), "--batch-size", str(batch),
                "--peak-size", "0", "--threads", str(threads), "--json"]
    return [ref_python, "bench/reference/torch_ref.py", "resnet_small", "--n", str(SAMPLES),
            "--epochs", str(EPOCHS), "--batch", str(batch), "--threads", str(threads)]


def step_ms(output: str) -> float:
    """Milliseconds per step: the median steady epoch over its steps."""
    record = json.loads(output.strip().splitlines()[-1])
    median = record.get("median_epoch_seconds", record.get("median_steady_epoch_s"))
    return median / record["steps_per_epoch"] * 1e3


def run_together(commands: list[list[str]]) -> list[float]:
    """Start every command at once; each one's milliseconds per step."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = [subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in commands]
    results = []
    for proc, c in zip(procs, commands):
        out, err = proc.communicate()
        if proc.returncode:
            sys.exit(f"{' '.join(c)} failed ({proc.returncode}):\n{err[-2000:]}")
        results.append(step_ms(out))
    return results


def thread_split() -> None:
    """The ``thread split`` run: prints one JSON object like ``kconf bench --json``'s, an
    epoch being 16 turns of both threads' steps (512 images)."""
    sys.path.insert(0, str(REPO))
    from kconf.bench import limit_threads
    limit_threads(1)  # before NumPy loads
    import threading
    import time

    from kconf.api import build_model
    from kconf.config import load_config
    from kconf.data.sources import load_splits
    from kconf.engine.backend import retain_freed_memory
    from kconf.engine.ops import Ops, use_ops
    from kconf.train.loop import train_step

    cfg = load_config(REPO / "configs/resnet_small.yaml",
                      overrides={"data.train.random.samples": SAMPLES, "fit.batch_size": 16})
    retain_freed_memory()
    train = load_splits(cfg)["train"]
    x = train.x[0] if isinstance(train.x, list) else train.x
    y = train.y[0] if isinstance(train.y, list) else train.y
    models = []
    for _ in range(2):
        with use_ops(Ops(workers=1)):
            models.append(build_model(cfg))
    turns = SAMPLES // 32

    losses = [0.0, 0.0]  # each model's loss on its last batch

    def steps(part: int) -> None:
        for turn in range(turns):
            rows = slice(turn * 32 + part * 16, turn * 32 + part * 16 + 16)
            logs, _ = train_step(models[part], [x[rows]], [y[rows]])
            total, count = logs["loss"]
            losses[part] = total / count

    epochs = []
    for _ in range(EPOCHS):
        threads = [threading.Thread(target=steps, args=(part,)) for part in (0, 1)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        epochs.append(time.perf_counter() - start)
    print(json.dumps({"epoch_seconds": epochs, "steps_per_epoch": turns, "losses": losses,
                      "median_epoch_seconds": statistics.median(epochs[1:])}))


#: way -> (batch, threads, processes, split in threads)
WAYS = {"1 thread": (32, 1, 1, False), "2 threads": (32, 2, 1, False),
        "bound": (16, 1, 2, False), "thread split": (16, 1, 1, True)}
FRAMEWORKS = ("kconf", "torch")


def measure(rounds: int, ref_python: str, run=run_together) -> dict[tuple[str, str], list]:
    """(framework, way) -> milliseconds per 32 images of each round, interleaved."""
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(rounds):
        for way, (batch, threads, processes, split) in WAYS.items():
            for framework in FRAMEWORKS:
                if split and framework != "kconf":
                    continue
                c = command(framework, batch, threads, ref_python, split)
                ms = max(run([c] * processes))
                # two processes of 16 images train 32 in one step's time: the slower one's
                times.setdefault((framework, way), []).append(ms)
                print(f"round {round_ + 1}: {framework} {way}: {ms:.1f} ms", file=sys.stderr)
    return times


def table(times: dict[tuple[str, str], list]) -> str:
    """The Markdown table of ``measure``'s times, and kconf's bound against PyTorch's two
    threads."""
    def cell(values: list[float] | None) -> str:
        if values is None:
            return "–"
        return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"

    median = {key: statistics.median(values) for key, values in times.items()}
    lines = ["| ms per 32 images | " + " | ".join(WAYS) + " |", "|---|" + "---|" * len(WAYS)]
    for framework in FRAMEWORKS:
        lines.append(f"| {framework} | "
                     + " | ".join(cell(times.get((framework, w))) for w in WAYS) + " |")
    lines.append("| kconf / torch | " + " | ".join(
        f"{median['kconf', w] / median['torch', w]:.2f}" if ("torch", w) in median else "–"
        for w in WAYS) + " |")
    bound = median["kconf", "bound"] / median["torch", "2 threads"]
    return "\n".join(lines) + f"\n\nkconf's bound against PyTorch's two threads: {bound:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref-python", help="a Python with torch installed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--thread-split", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.thread_split:
        return thread_split()
    if not args.ref_python:
        parser.error("--ref-python is required")
    print(table(measure(args.rounds, args.ref_python)))


if __name__ == "__main__":
    main()
