"""CPU time of a config's training step, whole and per layer: where a step's time goes.

Trains ``--steps`` batches (after 5 unmeasured ones) of a config's training data through
``kconf.train.loop.train_step`` and prints, per step: the wall time, the process's CPU time
(every thread), the calling thread's CPU time, and of that the part spent outside
``Ops.parallel`` (the serial part, which no second core shortens); then each layer's forward
and backward and the optimizer's update, as the calling thread's CPU time outside
``Ops.parallel`` and in all (``--threads 1``: the whole CPU cost of each). CPU times are
less sensitive to other processes than wall times; to compare two trees, run this in each
by turns (``PYTHONPATH=...``) under the same load.

    python bench/step_profile.py configs/transformer_text.yaml --samples 1024 --threads 1
    python bench/step_profile.py configs/transformer_text.yaml --samples 1024 --threads 2
"""
from __future__ import annotations

import argparse
import collections
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--samples", type=int, default=None, help="random training samples")
    parser.add_argument("--steps", type=int, default=40, help="measured steps")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default: the config's)")
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads and workers")
    parser.add_argument("--top", type=int, default=20, help="layers listed")
    args = parser.parse_args()

    from kconf.bench import limit_threads
    limit_threads(args.threads)  # before NumPy loads
    from kconf.api import build_model
    from kconf.config import load_config
    from kconf.data.sources import load_splits
    from kconf.engine.backend import retain_freed_memory
    from kconf.engine.ops import Ops
    from kconf.train.loop import train_step

    overrides = {} if args.samples is None else {"data.train.random.samples": args.samples}
    if args.batch is not None:
        overrides["fit.batch_size"] = args.batch
    cfg = load_config(args.config, overrides=overrides)
    retain_freed_memory()  # as kconf train and kconf bench do
    model = build_model(cfg)
    train = load_splits(cfg)["train"]
    xs, ys = list(train.x), train.y if isinstance(train.y, list) else [train.y]
    batch, n = cfg.fit.batch_size, len(xs[0])

    in_parallel = [0.0]  # the calling thread's CPU time inside Ops.parallel
    parallel = Ops.parallel

    def timed_parallel(self, work, blocks):
        start = time.thread_time()
        try:
            parallel(self, work, blocks)
        finally:
            in_parallel[0] += time.thread_time() - start

    serial, total = collections.Counter(), collections.Counter()

    def timed(name, fn):
        def call(*a, **k):
            start, inside = time.thread_time(), in_parallel[0]
            result = fn(*a, **k)
            spent = time.thread_time() - start
            total[name] += spent
            serial[name] += spent - (in_parallel[0] - inside)
            return result
        return call

    for layer in model.layers:
        def forward(*a, _forward=layer.forward, _name=layer.name, **k):
            y, backward = timed(f"{_name} forward", _forward)(*a, **k)
            return y, timed(f"{_name} backward", backward)
        layer.forward = forward
    model.optimizer.apply = timed("optimizer", model.optimizer.apply)
    Ops.parallel = timed_parallel

    def steps(count: int) -> None:
        for i in range(count):
            start = (i * batch) % max(n - batch + 1, 1)
            rows = slice(start, start + batch)
            train_step(model, [x[rows] for x in xs], [y[rows] for y in ys])

    steps(5)
    for counter in (serial, total):
        counter.clear()
    in_parallel[0] = 0.0
    wall, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
    steps(args.steps)
    per = 1e3 / args.steps
    wall, cpu = (time.perf_counter() - wall) * per, (time.process_time() - cpu) * per
    own = (time.thread_time() - own) * per
    print(f"per step: wall {wall:.1f} ms, CPU {cpu:.1f} ms, calling thread {own:.1f} ms "
          f"(outside Ops.parallel {own - in_parallel[0] * per:.1f} ms)")
    if args.top <= 0:
        return
    print(f"{'':28s} {'serial':>8s} {'all':>8s}   (calling thread's CPU ms per step)")
    for name, spent in total.most_common(args.top):
        print(f"{name:28s} {serial[name] * per:8.2f} {spent * per:8.2f}")


if __name__ == "__main__":
    main()
