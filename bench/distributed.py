"""Data-parallel training on this machine: one process with T threads against T ranks of one
thread each (``mpiexec -n T``), and one process with one thread (the work of one core),
epoch time and the communication share of a step.

    python bench/distributed.py                       # vgg and mlp_softmax, 3 rounds
    python bench/distributed.py --configs configs/vgg.yaml --rounds 5 --out bench/distributed.md

Each measurement is its own process (``--worker``), the two layouts interleaved round by
round (the machine is noisy). A worker trains the config through ``Model.fit`` (the same loop
``kconf train`` runs; on ranks with ``kconf.distributed.DataParallel`` attached) and reports
per epoch its seconds, and on ranks the seconds rank 0 spent in the gradients' ``Allreduce``
(its wait for the slower rank included). After training, rank 0 also times ``--allreduces``
bare ``Allreduce`` calls of a buffer the gradients' size, each after a barrier: the cost of
the communication alone. The table gives the median of the steady epochs (after the first)
pooled over the rounds, the speed-up of the ranks, and the share of a step spent summing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {"configs/vgg.yaml": 128, "configs/mlp_softmax.yaml": 20000}


def worker(args) -> None:
    """One measurement (in this process, or as one rank of mpiexec's)."""
    from kconf.distributed import launched_ranks
    from kconf.engine.threads import limit_threads

    size = launched_ranks()[0]
    limit_threads(args.threads)
    import numpy as np

    from kconf.api import build_model
    from kconf.data.sources import load_splits
    from kconf.train.callbacks import Callback
    from kconf.train.resolve import resolve_config

    overrides = [f"fit.epochs={args.epochs}", "fit.validation_split=0"]
    if args.samples:
        overrides.append(f"data.train.random.samples={args.samples}")
    cfg, _ = resolve_config(Path(args.config), overrides)
    model = build_model(cfg)
    train = load_splits(cfg)["train"]
    summed = [0.0]
    collective = None
    if size > 1:
        from kconf.distributed.run import Ranks
        from kconf.distributed.data_parallel import DataParallel

        collective = Ranks().collective
        DataParallel(collective, seed=cfg.seed or 0).attach(model)
        allreduce = collective.allreduce

        def timed(buf, what="the gradients' sum"):
            start = time.perf_counter()
            allreduce(buf, what)
            if what == "the gradients' sum":
                summed[0] += time.perf_counter() - start
            return buf

        collective.allreduce = timed

    class Clock(Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.sums = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.start, summed[0] = time.perf_counter(), 0.0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(time.perf_counter() - self.start)
            self.sums.append(summed[0])

    clock = Clock()
    model.fit(train.x, train.y, batch_size=cfg.fit.batch_size, epochs=args.epochs,
              callbacks=[clock])
    result = {"config": args.config, "ranks": size, "threads": args.threads,
              "epoch_seconds": clock.epochs, "allreduce_seconds": clock.sums,
              "steps": -(-len(train.x[0]) // cfg.fit.batch_size),
              "gradient_mb": sum(g.nbytes for g in model._dense_grads) / 2**20}
    if collective is not None:
        buf = np.zeros(sum(g.size for g in model._dense_grads), dtype=np.float32)
        times = []
        for _ in range(args.allreduces):
            collective.comm.Barrier()
            start = time.perf_counter()
            collective.comm.Allreduce(collective.mpi.IN_PLACE, buf)
            times.append(time.perf_counter() - start)
        result["bare_allreduce_seconds"] = statistics.median(times)
        if collective.rank != 0:
            return
    print("RESULT " + json.dumps(result), flush=True)


def measure(config: str, samples: int | None, ranks: int, threads: int, epochs: int,
            allreduces: int) -> dict:
    """One worker process (``ranks`` > 1: under mpiexec); its result."""
    from kconf.distributed.launch import find_mpiexec

    cmd = [sys.executable, __file__, "--worker", "--config", config, "--threads",
           str(threads), "--epochs", str(epochs), "--allreduces", str(allreduces)]
    if samples:
        cmd += ["--samples", str(samples)]
    if ranks > 1:
        cmd = [find_mpiexec(), "-n", str(ranks), *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-1500:]}")
    return json.loads(lines[-1][len("RESULT "):])


def table(results: list[dict], cores: int) -> str:
    """The markdown table of the pooled results."""
    rows = ["| config | layout | steps/epoch | gradient MB | epoch s (median, min-max) | "
            "speed-up over 1 thread | Allreduce s/step (in training) | share of a step | bare Allreduce "
            "ms |", "|---|---|---|---|---|---|---|---|---|"]
    for config in dict.fromkeys(r["config"] for r in results):
        base = None
        for ranks, threads in ((1, 1), (1, cores), (cores, 1)):
            runs = [r for r in results if r["config"] == config and r["ranks"] == ranks
                    and r["threads"] == threads]
            steady = [s for r in runs for s in r["epoch_seconds"][1:]]
            median = statistics.median(steady)
            base = base or median
            steps = runs[0]["steps"]
            if ranks > 1:
                sums = [s for r in runs for s in r["allreduce_seconds"][1:]]
                per_step = statistics.median(sums) / steps
                share = f"{100 * per_step / (median / steps):.1f} %"
                bare = f"{1000 * statistics.median(r['bare_allreduce_seconds'] for r in runs):.3f}"
                comm = f"{per_step:.4f}"
            else:
                comm = share = bare = "-"
            layout = (f"1 process × {threads} thread{'s' if threads > 1 else ''}" if ranks == 1
                      else f"{ranks} ranks × 1 thread")
            rows.append(f"| {Path(config).stem} | {layout} | {steps} | "
                        f"{runs[0]['gradient_mb']:.3g} | {median:.3f} ({min(steady):.3f}-"
                        f"{max(steady):.3f}) | {base / median:.2f}× | {comm} | {share} | "
                        f"{bare} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--configs", nargs="*", default=list(DEFAULTS))
    parser.add_argument("--samples", type=int, help="training samples (random data)")
    parser.add_argument("--threads", type=int, default=2, help="cores compared: 1 process "
                        "× THREADS threads against THREADS ranks × 1 thread")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first "
                        "is left out)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--allreduces", type=int, default=20)
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    results = []
    for round_ in range(args.rounds):
        for config in args.configs:
            samples = args.samples or DEFAULTS.get(config)
            for ranks, threads in ((1, 1), (1, args.threads), (args.threads, 1)):
                result = measure(config, samples, ranks, threads, args.epochs, args.allreduces)
                results.append(result)
                print(f"round {round_ + 1}: {Path(config).stem} {ranks}×{threads}: "
                      f"{[round(s, 3) for s in result['epoch_seconds']]}", flush=True)
    text = table(results, args.threads)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
