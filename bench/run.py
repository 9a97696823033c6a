#!/usr/bin/env python
"""Run the benchmark workloads (the Keras docs' five, and issue 13's resnet_small and
transformer_classifier) through ``kconf bench`` and, when a Python with the
reference frameworks is given, through the reference scripts too: same machine, same
session, same sizes and thread count, interleaved (kconf, torch, keras-torch, keras-jax,
kconf, ...). Writes ``results.md`` (medians and ratios) and ``results.jsonl`` (every run).

    python bench/run.py                                     # kconf only
    python bench/run.py --ref-python /tmp/ref/bin/python --rounds 3
    python bench/run.py --workloads vgg,mlp_softmax --scale 0.1 --rounds 1

Every run is a fresh process (as a user would start it), so imports, first-epoch costs and
memory do not leak from one run into the next. Only the standard library is used here.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Workload:
    """One row of the issue's table: the config and the timed size."""

    name: str
    config: str  # relative to the repository root
    samples: int
    batch_size: int
    epochs: int  # the reference scripts' defaults: >= 4, so the median has >= 3 steady epochs
    # where its reference scripts live: None for --ref-dir (the shared five), else a folder
    # relative to the repository root
    ref_dir: str | None = None


WORKLOADS = (
    Workload("mlp_softmax", "configs/mlp_softmax.yaml", 60_000, 128, 5),
    Workload("mlp_binary", "configs/mlp_binary.yaml", 60_000, 128, 5),
    Workload("vgg", "configs/vgg.yaml", 320, 32, 4),
    Workload("multi_io", "configs/twitter_multi_io.yaml", 1_024, 32, 5),
    Workload("shared_lstm", "configs/shared_lstm.yaml", 256, 32, 5),
    # issue 13's two, with their references in this repository (bench/reference/)
    Workload("resnet_small", "configs/resnet_small.yaml", 512, 32, 4, "bench/reference"),
    Workload("transformer_classifier", "configs/transformer_text.yaml", 1_024, 32, 4,
             "bench/reference"),
)

# runner -> (script in the reference folder, extra environment)
REFERENCES = {
    "torch": ("torch_ref.py", {}),
    "keras-torch": ("keras_ref.py", {"KERAS_BACKEND": "torch"}),
    "keras-jax": ("keras_ref.py", {"KERAS_BACKEND": "jax"}),
}


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        description="Benchmark kconf on the workloads, side by side with the reference "
                    "implementations (PyTorch eager, Keras 3 on torch and on JAX).")
    p.add_argument("--workloads", default=",".join(w.name for w in WORKLOADS),
                   help="comma-separated subset of: %(default)s")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds per workload (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per run (default: per workload, 4 or 5)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every workload's sample count (quick runs: 0.1)")
    p.add_argument("--threads", type=int, default=_available_cpus(),
                   help="BLAS/intra-op threads for every runner (default: all %(default)s CPUs)")
    p.add_argument("--ref-python", default=None,
                   help="a Python where torch, keras and jax import (e.g. /tmp/ref/bin/python); "
                        "without it only kconf runs")
    p.add_argument("--ref-dir", type=Path, default=REPO.parent / "shared" / "reference",
                   help="folder of torch_ref.py and keras_ref.py of the first five workloads; "
                        "resnet_small and transformer_classifier use bench/reference/ "
                        "(default: %(default)s)")
    p.add_argument("--frameworks", default=",".join(REFERENCES),
                   help="comma-separated reference runners (default: %(default)s)")
    p.add_argument("--python", default=sys.executable,
                   help="the Python that runs kconf (default: this one)")
    p.add_argument("--peak-size", type=int, default=2048,
                   help="matrix size of kconf bench's NumPy matmul peak (0: skip)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    p.add_argument("--out-dir", type=Path, default=REPO / "bench",
                   help="where results.md and results.jsonl go (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the commands instead of running them")
    args = p.parse_args(argv)
    known = {w.name for w in WORKLOADS}
    args.workloads = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in args.workloads if w not in known]
    if unknown:
        p.error(f"unknown workloads {unknown}; choose from {sorted(known)}")
    args.frameworks = [f for f in args.frameworks.split(",") if f]
    bad = [f for f in args.frameworks if f not in REFERENCES]
    if bad:
        p.error(f"unknown frameworks {bad}; choose from {list(REFERENCES)}")
    if args.rounds < 1 or args.threads < 1 or args.scale <= 0:
        p.error("--rounds and --threads must be >= 1 and --scale > 0")
    return args


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Job:
    """One process to run: which runner on which workload, and how."""

    runner: str
    workload: Workload
    command: list[str]
    env: dict


def plan(args, workload: Workload) -> list[Job]:
    """The jobs of one round of one workload: kconf first, then each reference."""
    samples = max(workload.batch_size, round(workload.samples * args.scale))
    epochs = args.epochs or workload.epochs
    jobs = [Job("kconf", workload, [
        args.python, "-m", "kconf.cli", "bench", workload.config, "--json",
        "--epochs", str(epochs), "--samples", str(samples),
        "--batch-size", str(workload.batch_size), "--warmup", "1",
        "--threads", str(args.threads), "--peak-size", str(args.peak_size)], {})]
    if args.ref_python:
        for runner in args.frameworks:
            script, env = REFERENCES[runner]
            ref_dir = REPO / workload.ref_dir if workload.ref_dir else args.ref_dir
            jobs.append(Job(runner, workload, [
                args.ref_python, str(ref_dir / script), workload.name,
                "--epochs", str(epochs), "--n", str(samples),
                "--batch", str(workload.batch_size), "--threads", str(args.threads)], env))
    return jobs


def run_job(job: Job, args, round_no: int) -> dict:
    """Run one job; its record for results.jsonl (the runner's JSON, or the error)."""
    record = {"workload": job.workload.name, "runner": job.runner, "round": round_no,
              "command": shlex.join(job.command), "result": None, "error": None,
              "load_before": _load_average()}
    env = {**os.environ, **job.env, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    try:
        proc = subprocess.run(job.command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        record["error"] = f"timed out after {args.timeout:.0f} s"
        return record
    except OSError as exc:
        record["error"] = f"could not start: {exc}"
        return record
    record["wall_seconds"] = round(time.perf_counter() - start, 3)
    result = _last_json_line(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        record["error"] = f"exit status {proc.returncode}: " + " | ".join(tail)
    else:
        record["result"] = result
    return record


def _load_average() -> float | None:
    """The 1-minute load average (other processes competing for the cores), where known."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _last_json_line(text: str) -> dict | None:
    """The last line of ``text`` that is a JSON object (the runners print one)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def steady_seconds(record: dict) -> list[float]:
    """A run's epoch times after its warm-up (kconf's ``warmup``; the references' first)."""
    result = record["result"]
    epochs = result["epoch_seconds"]
    skip = result.get("warmup", 1) if record["runner"] == "kconf" else 1
    return epochs[skip:] or epochs


@dataclass
class Cell:
    """The pooled steady epochs of one runner on one workload, over every round."""

    seconds: list[float]
    errors: list[str]

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    def text(self) -> str:
        if not self.seconds:
            return "failed" if self.errors else "-"
        return f"{self.median:.3g} ({min(self.seconds):.3g}–{max(self.seconds):.3g})"


def summarize(records: list[dict], workload: str, runners: list[str]) -> dict[str, Cell]:
    """Per runner, the steady epoch times of every successful run of ``workload``."""
    cells = {r: Cell([], []) for r in runners}
    for rec in records:
        if rec["workload"] != workload or rec["runner"] not in cells:
            continue
        cell = cells[rec["runner"]]
        if rec["result"] is None:
            cell.errors.append(rec["error"] or "?")
        else:
            cell.seconds += steady_seconds(rec)
    return cells


def markdown(records: list[dict], workloads: list[Workload], runners: list[str],
             skipped: dict[str, str], header: str) -> str:
    """The results table: medians (min–max) per runner, the ratio to the fastest reference,
    kconf's GFLOP/s and NumPy's float32 matmul peak."""
    refs = [r for r in runners if r != "kconf"]
    cols = ["workload", "size", "kconf s/epoch", *(f"{r} s/epoch" for r in refs)]
    if refs:
        cols.append("kconf / fastest ref")
    cols += ["kconf GFLOP/s", "NumPy peak GFLOP/s", "kconf peak RSS MB"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for w in workloads:
        if w.name in skipped:
            lines.append(f"| {w.name} | skipped: {skipped[w.name]} |" + " |" * (len(cols) - 2))
            continue
        cells = summarize(records, w.name, runners)
        kconf_runs = [r["result"] for r in records
                      if r["workload"] == w.name and r["runner"] == "kconf" and r["result"]]
        size = (f"{kconf_runs[0]['samples']:,} × {kconf_runs[0]['epochs']} ep, "
                f"batch {kconf_runs[0]['batch_size']}") if kconf_runs else "-"
        row = [w.name, size, cells["kconf"].text(), *(cells[r].text() for r in refs)]
        kconf_median = cells["kconf"].median
        if refs:
            ref_medians = [cells[r].median for r in refs if cells[r].median is not None]
            row.append(f"{kconf_median / min(ref_medians):.2f}"
                       if kconf_median and ref_medians else "-")
        flops = kconf_runs[0]["flops_per_epoch"] if kconf_runs else 0
        row.append(f"{flops / kconf_median / 1e9:.1f}" if flops and kconf_median else "-")
        peaks = [r["numpy_matmul_peak_gflops"] for r in kconf_runs
                 if r.get("numpy_matmul_peak_gflops")]
        row.append(f"{statistics.median(peaks):.0f}" if peaks else "-")
        rss = [r["peak_rss_mb"] for r in kconf_runs]
        row.append(f"{max(rss):,.0f}" if rss else "-")
        lines.append("| " + " | ".join(row) + " |")
    failures = [r for r in records if r["error"]]
    if failures:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {r['workload']} / {r['runner']} (round {r['round']}): {r['error']}"
                  for r in failures]
    return "\n".join(lines) + "\n"


def header_text(args, records: list[dict]) -> str:
    """Date, machine, versions and the command line, above the table."""
    machine = next((r["result"]["machine"] for r in records
                    if r["runner"] == "kconf" and r["result"]), None) or {}
    versions = sorted({f"{r['runner']} {r['result'].get('version')}" for r in records
                       if r["runner"] != "kconf" and r["result"]})
    lines = [
        "# kconf benchmark results",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {machine.get('cpu_model') or platform.processor() or '?'}, "
        f"{machine.get('available_cpus', _available_cpus())} CPUs, {platform.platform()}",
        f"- kconf: Python {machine.get('python', platform.python_version())}, "
        f"NumPy {machine.get('numpy', '?')}, BLAS {machine.get('blas') or '?'}"
        + (f" (OPENBLAS_CORETYPE={machine['blas_coretype']})"
           if machine.get("blas_coretype") else ""),
        f"- references: {', '.join(versions) if versions else 'not run'}",
        f"- threads: {args.threads} for every runner (Keras-on-JAX uses XLA's own thread pool)",
        f"- rounds: {args.rounds}, interleaved per workload "
        f"(kconf, {', '.join(args.frameworks) if args.ref_python else 'no references'})",
        f"- command: `python bench/run.py {shlex.join(sys.argv[1:])}`",
        f"- 1-minute load average before the runs: {_load_range(records)} "
        f"(a load above the thread count means other processes competed for the cores)",
        "",
        "Seconds per epoch: median of the steady epochs (first epoch of every run excluded) "
        "pooled over the rounds, (min–max) in brackets. GFLOP/s counts training as 3 × forward "
        "FLOPs (2 per multiply-add of the matrix products), as the reference scripts do.",
    ]
    return "\n".join(lines)


def _load_range(records: list[dict]) -> str:
    loads = [r["load_before"] for r in records if r.get("load_before") is not None]
    return f"{min(loads):.2f}–{max(loads):.2f}" if loads else "unknown"


def main(argv=None) -> int:
    """Run the benchmark; returns the exit status (1 if any run failed)."""
    args = parse_args(argv)
    workloads = [w for w in WORKLOADS if w.name in args.workloads]
    runners = ["kconf", *(args.frameworks if args.ref_python else [])]
    skipped = {w.name: f"{w.config} does not exist yet" for w in workloads
               if not (REPO / w.config).is_file()}
    for name, why in skipped.items():
        print(f"note: skipping {name}: {why}", flush=True)
    if args.ref_python and not args.ref_dir.is_dir() and any(
            w.ref_dir is None for w in workloads):
        print(f"error: no reference folder {args.ref_dir} (use --ref-dir)", file=sys.stderr)
        return 2

    records: list[dict] = []
    for w in workloads:
        if w.name in skipped:
            continue
        for round_no in range(1, args.rounds + 1):
            for job in plan(args, w):
                if args.dry_run:
                    extra = " ".join(f"{k}={v}" for k, v in job.env.items())
                    print(f"{extra + ' ' if extra else ''}{shlex.join(job.command)}")
                    continue
                rec = run_job(job, args, round_no)
                records.append(rec)
                if rec["result"] is not None:
                    steady = steady_seconds(rec)
                    print(f"[{w.name} round {round_no}/{args.rounds}] {job.runner}: "
                          f"{statistics.median(steady):.3f} s/epoch", flush=True)
                else:
                    print(f"[{w.name} round {round_no}/{args.rounds}] {job.runner}: "
                          f"FAILED {rec['error']}", flush=True)
    if args.dry_run:
        return 0

    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / "results.jsonl", "w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    table = markdown(records, workloads, runners, skipped, header_text(args, records))
    (args.out_dir / "results.md").write_text(table)
    print()
    print(table)
    print(f"wrote {args.out_dir / 'results.md'} and {args.out_dir / 'results.jsonl'}")
    return 1 if any(r["error"] for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
