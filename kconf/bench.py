"""Benchmarking: train a config at a chosen size and measure time, memory and FLOP rate.

    from kconf.bench import bench
    result = bench("configs/vgg.yaml", epochs=3, samples=320)
    result["median_epoch_seconds"], result["gflops_per_second"]

What is measured, and how:

* ``epoch_seconds``: wall time of each epoch of ``Model.fit`` (training steps only: no
  validation, no test evaluation, silent), timed by a callback; ``median_epoch_seconds`` is
  the median over the epochs after the first ``warmup`` ones (all of them if none remain).
* ``flops_per_epoch``: training FLOPs = 3 × forward FLOPs per sample × samples, with the
  per-layer counts of ``Layer.flops`` (2 per multiply-add of the matrix products, elementwise
  work not counted) summed over the graph's nodes, so a shared layer counts once per call.
* ``peak_rss_mb``: the process's peak resident memory up to the end of training (model,
  data and training; ``resource.getrusage``); ``epoch_rss_mb`` the resident memory at the
  end of each epoch (Linux), to see growth across epochs.
* ``numpy_matmul_peak_gflops``: the best of a few float32 ``n × n`` matrix products with
  NumPy itself: the ceiling the engine's products run against on this machine.

NumPy (and what imports it) is imported inside the functions, not at module level, so that
``limit_threads`` (kconf.engine.threads) can run before NumPy and its BLAS load: BLAS reads
its thread count then.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

from kconf.engine.threads import available_cpus, blas_threads, limit_threads  # no NumPy
from kconf.errors import ConfigError, Problem
from kconf.train.callbacks import Callback  # plain Python: no NumPy

def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def current_rss_mb() -> float | None:
    """The process's resident set size now, in MiB (None where /proc is not available)."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """NumPy's float32 matrix-product rate on this machine: the best of ``repeats`` timed
    ``(n, n) @ (n, n)`` products (2·n³ FLOPs each) after one untimed warm-up.

    Args:
        n: the matrices' size; 2048 takes about 0.1 s per product at 130 GFLOP/s.
        repeats: timed products; the fastest counts.

    Returns:
        GFLOP/s of the fastest product.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def machine_info() -> dict:
    """What the numbers were measured on: CPUs, Python, NumPy and its BLAS."""
    import numpy as np

    blas = None
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = " ".join(str(deps[k]) for k in ("name", "version") if deps.get(k))
    except Exception:  # show_config's layout is not a stable API; the name is a nicety
        blas = None
    return {
        "cpu_count": os.cpu_count(),
        "available_cpus": available_cpus(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        # set where a machine forces OpenBLAS's kernels (this project's: Haswell's AVX2 ones
        # on a CPU that has AVX-512)
        "blas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }


def _cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def bench(config_path: str | Path, epochs: int = 3, samples: int | None = None,
          warmup: int = 1, threads: int | None = None, batch_size: int | None = None,
          peak_size: int = 2048) -> dict:
    """Train a config on its data at a chosen size and measure it.

    Only the training epochs are timed: validation and test data are not used.

    Args:
        config_path: the YAML config.
        epochs: epochs to train (overrides ``fit.epochs``).
        samples: training samples (overrides ``data.train.random.samples``); the training
            data must then be ``random``. None keeps the config's.
        warmup: leading epochs left out of the median (the first one pays for first-touch
            allocations and caches).
        threads: BLAS threads; takes effect only if NumPy is not imported yet (see
            ``limit_threads``; the result's ``threads_limited`` says whether it did).
        batch_size: overrides ``fit.batch_size``; None keeps the config's.
        peak_size: size of the matrices of the NumPy peak measurement; 0 skips it.

    Returns:
        A JSON-serialisable dict: ``config``, ``name``, ``epochs``, ``warmup``, ``samples``,
        ``batch_size``, ``steps_per_epoch``, ``epoch_seconds`` (one per epoch),
        ``steady_epochs``, ``median_epoch_seconds``, ``samples_per_second``, ``peak_rss_mb``,
        ``epoch_rss_mb``, ``forward_flops_per_sample``, ``flops_per_epoch``,
        ``gflops_per_second`` (None when the FLOP count is 0), ``threads``, ``workers`` (the
        threads a step of this model runs its blocks of work on: kconf.engine.ops),
        ``threads_limited``, ``numpy_matmul_peak_gflops`` (None when skipped),
        ``fraction_of_peak``, ``final_loss``, ``setup_seconds``, ``machine`` (see
        ``machine_info``), ``kconf_version`` and ``unix_time``.

    Raises:
        ConfigError: anything wrong in the config or its data, or ``samples`` given for
            training data that is not ``random``.
        TrainingError: training stopped (e.g. the loss became NaN).
        ValueError: ``epochs`` < 1, ``warmup`` < 0, ``samples`` < 1 or ``threads`` < 1.
    """
    if epochs < 1 or warmup < 0 or (samples is not None and samples < 1):
        raise ValueError(f"need epochs >= 1, warmup >= 0 and samples >= 1; got epochs={epochs}, "
                         f"warmup={warmup}, samples={samples}")
    threads_limited = limit_threads(threads)
    start = time.perf_counter()

    from kconf.api import build_model
    from kconf.config import load_config
    from kconf.data.sources import check_shapes, load_splits
    from kconf.engine.backend import retain_freed_memory
    from kconf.graph.ir import graph_flops
    from kconf.version import __version__

    overrides: dict = {"fit.epochs": epochs}
    if batch_size is not None:
        overrides["fit.batch_size"] = batch_size
    if samples is not None:
        _require_random_train_data(load_config(config_path))
        overrides["data.train.random.samples"] = samples
    cfg = load_config(config_path, overrides=overrides)
    retain_freed_memory()  # as kconf train does (see there)
    model = build_model(cfg)
    splits = load_splits(cfg)
    check_shapes(splits, model.graph, cfg)
    train = splits["train"]
    n = _n_samples(train.x)
    setup_seconds = time.perf_counter() - start

    timer = EpochTimer()
    history = model.fit(train.x, train.y, batch_size=cfg.fit.batch_size, epochs=epochs,
                        shuffle=cfg.fit.shuffle, verbose=0, callbacks=[timer])
    rss_peak = peak_rss_mb()  # before the matmul measurement adds its own arrays

    steady = timer.seconds[warmup:] or timer.seconds
    median = statistics.median(steady)
    forward = graph_flops(model.graph)
    flops_per_epoch = 3 * forward * n
    gflops = flops_per_epoch / median / 1e9 if flops_per_epoch and median > 0 else None
    peak = matmul_peak_gflops(peak_size) if peak_size else None
    losses = history.history.get("loss") or [None]
    return {
        "config": str(config_path),
        "name": cfg.name,
        "epochs": epochs,
        "warmup": warmup,
        "samples": n,
        "batch_size": cfg.fit.batch_size,
        "steps_per_epoch": -(-n // cfg.fit.batch_size),
        "epoch_seconds": timer.seconds,
        "steady_epochs": len(steady),
        "median_epoch_seconds": median,
        "samples_per_second": n / median if median > 0 else None,
        "peak_rss_mb": round(rss_peak, 1),
        "epoch_rss_mb": timer.rss_mb,
        "forward_flops_per_sample": forward,
        "flops_per_epoch": flops_per_epoch,
        "gflops_per_second": gflops,
        "threads": threads if threads is not None else blas_threads(),
        "threads_limited": threads_limited,
        "workers": model.ops.workers if model.uses_workers else 1,
        "numpy_matmul_peak_gflops": peak,
        "fraction_of_peak": gflops / peak if gflops and peak else None,
        "final_loss": losses[-1],
        "setup_seconds": setup_seconds,
        "machine": machine_info(),
        "kconf_version": __version__,
        "unix_time": time.time(),
    }


class EpochTimer(Callback):
    """A fit callback recording each epoch's wall time and resident memory at its end."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self.rss_mb: list[float | None] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        rss = current_rss_mb()
        self.rss_mb.append(None if rss is None else round(rss, 1))


def _require_random_train_data(cfg) -> None:
    """Raise a located ConfigError unless the training split is ``random`` data."""
    spec = cfg.data.train
    if spec is None or spec.kind != "random":
        path = ("data", "train") if spec is None else ("data", "train", spec.kind)
        kind = "no training data" if spec is None else f"{spec.kind!r} data"
        raise ConfigError([Problem(
            f"bench --samples resizes 'random' training data, but this config has {kind}; "
            f"leave --samples out to train on the data as configured",
            path, cfg.source.locate(path))], cfg.source.file)


def _n_samples(x) -> int:
    """Samples in a split's x: one array, or a list / dict of arrays (one per input)."""
    if isinstance(x, dict):
        x = next(iter(x.values()))
    elif isinstance(x, (list, tuple)):
        x = x[0]
    return len(x)


def results_table(result: dict):
    """A rich table of a ``bench`` result, for the terminal.

    Args:
        result: what ``bench`` returned.

    Returns:
        A ``rich.table.Table`` with one row per measurement.
    """
    from rich import box
    from rich.table import Table

    def num(value, fmt: str, unit: str = "") -> str:
        return "-" if value is None else f"{value:{fmt}}{unit}"

    machine = result["machine"]
    steady = f"median of {result['steady_epochs']} after {result['warmup']} warm-up"
    rows = [
        ("samples × epochs", f"{result['samples']:,} × {result['epochs']} "
                             f"(batch {result['batch_size']}, "
                             f"{result['steps_per_epoch']} steps/epoch)"),
        ("epoch seconds", ", ".join(f"{s:.3f}" for s in result["epoch_seconds"])),
        ("seconds / epoch", f"{result['median_epoch_seconds']:.3f} ({steady})"),
        ("samples / s", num(result["samples_per_second"], ",.0f")),
        ("FLOPs / epoch", f"{result['flops_per_epoch'] / 1e9:,.2f} G "
                          f"(3 × {result['forward_flops_per_sample']:,} forward per sample)"),
        ("GFLOP/s", num(result["gflops_per_second"], ".1f")),
        ("NumPy float32 matmul peak", num(result["numpy_matmul_peak_gflops"], ".1f", " GFLOP/s")),
        ("fraction of peak", num(result["fraction_of_peak"], ".1%")),
        ("peak RSS", f"{result['peak_rss_mb']:,.1f} MB"),
        ("RSS at epoch ends", ", ".join(num(r, ",.0f") for r in result["epoch_rss_mb"]) + " MB"),
        ("threads", f"{result['threads']}" + ("" if result["threads_limited"]
                                               else " (not applied: NumPy already loaded)")),
        ("workers", f"{result['workers']}"),
        ("machine", f"{machine['cpu_model'] or '?'}, {machine['available_cpus']} CPUs, "
                    f"NumPy {machine['numpy']}, BLAS {machine['blas'] or '?'}"),
    ]
    table = Table(title=f"kconf bench {result['config']} ({result['name']})", box=box.SIMPLE,
                  title_justify="left", show_header=False)
    table.add_column("measure")
    table.add_column("value")
    for row in rows:
        table.add_row(*row)
    return table


def to_json(result: dict) -> str:
    """One line of JSON for a ``bench`` result."""
    return json.dumps(result)
