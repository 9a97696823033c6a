"""Shared pieces of the reference benchmarks of issue 13's two workloads (data, FLOP counts,
reporting), with the conventions of ``shared/reference/common.py``: the same command line
(``WORKLOAD --epochs --n --batch --threads --seed --tag``), one JSON line on stdout with
``epoch_seconds`` and ``median_steady_epoch_s`` (first epoch excluded).

Only numpy + stdlib here, so torch_ref.py and keras_ref.py train on byte-identical data
(generated with numpy, fixed seed, float32 images, int32 token ids).
"""
import argparse
import json
import os
import resource
import statistics
import time

import numpy as np

WORKLOADS = ("resnet_small", "transformer_classifier")

#: Measurement-size defaults:     N     batch epochs
DEFAULTS = {"resnet_small": (512, 32, 4),
            "transformer_classifier": (2048, 32, 4)}

#: The transformer: the Keras example "Text classification with Transformer".
VOCAB, MAXLEN, EMBED, HEADS, FF = 20000, 200, 32, 2, 32


def parse_args(framework):
    """The command line shared by the reference scripts."""
    p = argparse.ArgumentParser(description=f"{framework} reference benchmark")
    p.add_argument("workload", choices=WORKLOADS)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--n", type=int, default=None, help="samples per epoch")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="", help="free text copied into the JSON")
    return p


def resolve_sizes(args):
    """(samples, batch, epochs): the workload's defaults, overridden by the arguments."""
    n, batch, epochs = DEFAULTS[args.workload]
    return (args.n if args.n is not None else n, args.batch or batch, args.epochs or epochs)


def make_data(workload, n, seed=0):
    """Return (inputs: list[np.ndarray], targets: list[np.ndarray]); targets are integer
    class labels of shape (N,) (sparse categorical crossentropy)."""
    rng = np.random.default_rng(seed)
    if workload == "resnet_small":
        x = rng.random((n, 32, 32, 3), dtype=np.float32)
        return [x], [rng.integers(0, 10, n).astype(np.int64)]
    if workload == "transformer_classifier":
        tokens = rng.integers(0, VOCAB, (n, MAXLEN)).astype(np.int32)
        positions = np.ascontiguousarray(
            np.broadcast_to(np.arange(MAXLEN, dtype=np.int32), (n, MAXLEN)))
        return [tokens, positions], [rng.integers(0, 2, n).astype(np.int64)]
    raise ValueError(workload)


# ---------------------------------------------------------------- FLOPs
# forward FLOPs = 2 * multiply-adds of the matrix products (convolutions, Dense, attention's
# projections and its two batched products); training = 3 * forward, as shared/reference.

def forward_macs_per_sample(workload):
    """Multiply-adds of one sample's forward pass."""
    if workload == "resnet_small":
        macs = 32 * 32 * 3 * 16 * 9  # stem
        side, cin = 32, 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            side //= stride
            macs += side * side * cout * 9 * cin       # conv1 (strided)
            macs += side * side * cout * 9 * cout      # conv2
            if stride != 1:
                macs += side * side * cout * cin       # 1x1 shortcut
            cin = cout
        return macs + 64 * 10
    if workload == "transformer_classifier":
        inner = HEADS * EMBED  # key_dim = EMBED per head, as the Keras example
        macs = 3 * MAXLEN * EMBED * inner               # query, key, value projections
        macs += 2 * HEADS * MAXLEN * MAXLEN * EMBED     # scores and weighted values
        macs += MAXLEN * inner * EMBED                  # output projection
        macs += 2 * MAXLEN * EMBED * FF                 # feed-forward
        return macs + EMBED * 20 + 20 * 2
    raise ValueError(workload)


def train_flops_per_epoch(workload, n):
    """Training FLOPs of one epoch (3 x forward)."""
    return 3 * 2 * forward_macs_per_sample(workload) * n


# ---------------------------------------------------------------- report

def peak_rss_mb():
    """Peak resident memory of this process in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def emit(record):
    """Complete a run's record (median of the steady epochs, FLOPs) and print it as JSON."""
    eps = record["epoch_seconds"]
    steady = eps[1:] if len(eps) > 1 else eps
    record["median_steady_epoch_s"] = statistics.median(steady)
    flops = train_flops_per_epoch(record["workload"], record["samples"])
    record["train_flops_per_epoch"] = flops
    record["achieved_gflops"] = flops / record["median_steady_epoch_s"] / 1e9
    record["peak_rss_mb"] = round(peak_rss_mb(), 1)
    record["pid"] = os.getpid()
    record["unix_time"] = time.time()
    print(json.dumps(record), flush=True)
