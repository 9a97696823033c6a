#!/usr/bin/env python
"""ResNet50 inference, kconf against PyTorch eager: batch 8, 224x224x3, same thread count,
interleaved rounds in one session (issue 13: kconf within 1.5x of PyTorch eager).

kconf runs Keras's own ResNet50: ``keras.applications.ResNet50(weights=None)`` saved as a
``.keras`` file by ``bench/reference/resnet50_keras.py`` (in the reference Python) and
imported with ``kconf import-keras``; PyTorch runs the same architecture written by hand in
``bench/reference/torch_resnet50.py`` (torchvision-free). Both in inference mode, random
weights, float32.

    python bench/resnet50_inference.py --ref-python /tmp/ref/bin/python --rounds 3
    python bench/resnet50_inference.py --ref-python /tmp/ref/bin/python --work-dir /tmp/r50

Every timing is its own process. The ``.keras`` file and the imported config and weights
(about 200 MB) go to ``--work-dir`` and are made once. Prints a Markdown table (median
seconds per batch of each runner pooled over the rounds, min-max, and kconf / torch) and
writes it with every run's JSON line to ``--out`` (a .md and a .jsonl beside it).
Only the standard library is used here, except in the ``--kconf-run`` child (kconf).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "bench" / "reference"


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description="ResNet50 inference: kconf against PyTorch eager")
    p.add_argument("--ref-python", help="a Python with torch and keras (e.g. /tmp/ref/bin/python)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: 3)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=10, help="timed calls per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first, per run")
    p.add_argument("--threads", type=int, default=_available_cpus())
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/kconf-resnet50"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "resnet50_inference.md")
    p.add_argument("--python", default=sys.executable, help="the Python that runs kconf")
    p.add_argument("--kconf-run", nargs=2, metavar=("CONFIG", "WEIGHTS"),
                   help=argparse.SUPPRESS)  # the child process that times kconf
    return p.parse_args(argv)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def kconf_run(args) -> None:
    """The child: time ``model.predict`` of the imported ResNet50 on one batch; one JSON line."""
    from kconf.engine.threads import limit_threads

    limit_threads(args.threads)  # before NumPy loads
    import numpy as np

    from kconf.engine.backend import retain_freed_memory
    from kconf.train.trained import load_trained

    retain_freed_memory()  # as kconf's commands do
    config, weights = args.kconf_run
    model = load_trained(config, weights).model
    x = np.random.default_rng(0).random((args.batch, 224, 224, 3), dtype=np.float32)
    seconds = []
    for i in range(args.warmup + args.repeats):
        start = time.perf_counter()
        y = model.predict(x, batch_size=args.batch)
        if i >= args.warmup:
            seconds.append(time.perf_counter() - start)
    assert y.shape == (args.batch, 1000) and np.isfinite(y).all()
    print(json.dumps({"runner": "kconf", "batch": args.batch, "threads": args.threads,
                      "workers": model.ops.workers, "params": model.count_params(),
                      "seconds": [round(s, 5) for s in seconds],
                      "median_s": statistics.median(seconds)}), flush=True)


def prepare(args) -> tuple[Path, Path]:
    """The imported config and weights, made once in ``--work-dir``."""
    args.work_dir.mkdir(parents=True, exist_ok=True)
    archive = args.work_dir / "resnet50.keras"
    config, weights = args.work_dir / "resnet50.yaml", args.work_dir / "resnet50.weights.npz"
    if not archive.is_file():
        subprocess.run([args.ref_python, str(REFERENCE / "resnet50_keras.py"), str(archive)],
                       check=True, env={**os.environ, "KERAS_BACKEND": "jax"})
    if not (config.is_file() and weights.is_file()):
        subprocess.run([args.python, "-m", "kconf.cli", "import-keras", str(archive),
                        "-o", str(config)], check=True, cwd=REPO)
    return config, weights


def run(command: list[str], runner: str, round_no: int) -> dict:
    """One timing process; its JSON line, or the error."""
    record = {"runner": runner, "round": round_no, "command": shlex.join(command),
              "result": None, "error": None}
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        record["error"] = f"exit status {proc.returncode}: " + " | ".join(
            (proc.stderr or proc.stdout).strip().splitlines()[-3:])
    else:
        record["result"] = json.loads(lines[-1])
    return record


def table(records: list[dict], args) -> str:
    """The Markdown table: per runner the median (min-max) of every timed call."""
    pooled = {r: [s for rec in records if rec["runner"] == r and rec["result"]
                  for s in rec["result"]["seconds"]] for r in ("kconf", "torch")}
    cells = {r: (f"{statistics.median(s):.3f} ({min(s):.3f}–{max(s):.3f})" if s else "failed")
             for r, s in pooled.items()}
    ratio = (f"{statistics.median(pooled['kconf']) / statistics.median(pooled['torch']):.2f}"
             if pooled["kconf"] and pooled["torch"] else "-")
    lines = [f"ResNet50 inference, batch {args.batch}, 224×224×3, {args.threads} threads, "
             f"{args.rounds} interleaved rounds × {args.repeats} calls "
             f"({time.strftime('%Y-%m-%d %H:%M %Z')})", "",
             "| model | kconf s/batch | torch s/batch | kconf / torch |", "|---|---|---|---|",
             f"| ResNet50 (Keras's, imported) | {cells['kconf']} | {cells['torch']} | {ratio} |"]
    lines += [f"- {r['runner']} (round {r['round']}): {r['error']}" for r in records
              if r["error"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Prepare the model, run the interleaved rounds, print and write the table."""
    args = parse_args(argv)
    if args.kconf_run:
        kconf_run(args)
        return 0
    if not args.ref_python:
        print("error: --ref-python is needed (it makes the Keras model and runs PyTorch)",
              file=sys.stderr)
        return 2
    config, weights = prepare(args)
    common = ["--batch", str(args.batch), "--repeats", str(args.repeats), "--warmup",
              str(args.warmup), "--threads", str(args.threads)]
    records = []
    for round_no in range(1, args.rounds + 1):
        for runner, command in (
                ("kconf", [args.python, str(Path(__file__).resolve()), "--kconf-run",
                           str(config), str(weights), *common]),
                ("torch", [args.ref_python, str(REFERENCE / "torch_resnet50.py"), *common])):
            record = run(command, runner, round_no)
            records.append(record)
            if record["result"]:
                print(f"[round {round_no}] {runner}: {record['result']['median_s']:.3f} s/batch",
                      flush=True)
            else:
                print(f"[round {round_no}] {runner}: {record['error']}", flush=True)
    text = table(records, args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return 1 if any(r["error"] for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
