"""Memory: what a forward pass keeps alive for its backward, and what training steps allocate.

Nothing here is timed. The closure checks walk the arrays a ``backward`` closure can reach; the
training checks read NumPy's own allocations through ``tracemalloc`` (NumPy reports every array
buffer to it), which is deterministic for a given model, batch and NumPy build.
"""
from __future__ import annotations

import gc
import sys
import tracemalloc

import numpy as np
import pytest

import kconf
from kconf.engine.layers import Conv2D, Dense, Dropout, Layer, MaxPooling2D
from kconf.engine import kernels


def reachable_arrays(fn) -> list[np.ndarray]:
    """The base arrays a closure can reach through its cells, nested closures and containers.
    Layers are not entered; their weights and gradients outlive every call anyway."""
    found: dict[int, np.ndarray] = {}
    seen: set[int] = set()

    def visit(obj):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            found[id(base)] = base
        elif isinstance(obj, Layer):
            return
        elif isinstance(obj, (list, tuple, set, frozenset)):
            for item in obj:
                visit(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                visit(item)
        elif callable(obj):
            for cell in getattr(obj, "__closure__", None) or ():
                try:
                    visit(cell.cell_contents)
                except ValueError:  # an empty cell
                    pass
            for item in (getattr(obj, "__defaults__", None) or ()):
                visit(item)

    visit(fn)
    return list(found.values())


def kept_besides(backward, layer: Layer, *arrays) -> list[np.ndarray]:
    """What ``backward`` keeps other than the layer's weights and gradients and ``arrays``
    (the call's input and output, which the graph keeps anyway; a view's memory is its base
    array's, so the bases count as theirs)."""
    own = set()
    for a in (*arrays, *layer.weights.values(), *layer.grads.values()):
        own.add(id(a))
        while isinstance(a, np.ndarray) and isinstance(a.base, np.ndarray):
            a = a.base
            own.add(id(a))
    return [a for a in reachable_arrays(backward) if id(a) not in own]


@pytest.mark.parametrize("kwargs, shape", [
    ({"filters": 8, "kernel_size": 3, "activation": "relu"}, (4, 20, 20, 8)),
    ({"filters": 8, "kernel_size": 3, "padding": "same"}, (4, 20, 20, 8)),
    ({"filters": 4, "kernel_size": (3, 5), "strides": 2, "padding": "same",
      "activation": "tanh"}, (3, 17, 19, 6)),
])
def test_conv2d_keeps_no_im2col_matrix_for_backward(kwargs, shape):
    layer = Conv2D(**kwargs)
    layer.build((None, *shape[1:]), np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    y, backward = layer.forward(x, training=True)
    n, ho, wo, cout = y.shape
    kh, kw = layer.kernel_size
    im2col_bytes = n * ho * wo * kh * kw * shape[3] * 4
    kept = kept_besides(backward, layer, x)
    # At most what the activation's backward needs: its output or a mask, one per output cell.
    assert sum(a.nbytes for a in kept) <= y.nbytes, [(a.shape, a.dtype) for a in kept]
    assert y.nbytes < im2col_bytes  # so the bound above rules the im2col matrix out
    dx = backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == np.float32


def test_relu_dropout_and_pooling_keep_bool_masks_at_most():
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 3), dtype=np.float32)
    dense = Dense(6, activation="relu")
    dense.build((None, 8, 8, 3), np.random.default_rng(0))
    y, backward = dense.forward(x)
    assert kept_besides(backward, dense, x, y) == []  # relu's backward masks with y itself
    relu = kconf.engine.activations.relu  # standalone, it cannot rely on its output
    y, backward = relu(x)
    assert [(a.shape, a.dtype) for a in kept_besides(backward, dense, x, y)] == [
        (x.shape, np.dtype(bool))]

    dropout = Dropout(0.3)
    _, backward = dropout.forward(x, training=True, rng=np.random.default_rng(0))
    kept = kept_besides(backward, dropout, x)
    assert [(a.shape, a.dtype) for a in kept if a.size > 1] == [(x.shape, np.dtype(bool))]

    pool = MaxPooling2D(2)
    y, backward = pool.forward(x)
    assert [(a.shape, a.dtype) for a in kept_besides(backward, pool, x, y)] == []


def small_convnet():
    """Four 5x5 'same' convolutions on 16x16x8 images: each im2col matrix is 25x its output."""
    conv = {"filters": 8, "kernel_size": 5, "padding": "same", "activation": "relu"}
    return kconf.build_model({
        "name": "convnet", "seed": 0,
        "model": {"sequential": [
            {"Conv2D": dict(conv, input_shape=[16, 16, 8])},
            {"Conv2D": conv}, {"Conv2D": conv}, {"Conv2D": conv},
            {"MaxPooling2D": {"pool_size": 2}},
            {"Dropout": {"rate": 0.25}},
            {"Flatten": {}},
            {"Dense": {"units": 3, "activation": "softmax"}},
        ]},
        "compile": {"optimizer": {"SGD": {"lr": 0.01, "momentum": 0.9}},
                    "loss": "categorical_crossentropy"},
        "data": {"train": {"random": {"samples": 8, "x": [16, 16, 8], "classes": 3,
                                      "one_hot": True}}},
    })


@pytest.mark.parametrize("workers", [1, 2])
def test_training_steps_hold_one_im2col_matrix_at_a_time_and_do_not_grow(workers):
    """On one worker, one im2col matrix at a time; on two, the kernel gradients deferred to
    the pool thread keep theirs until used (Ops.defer), at most ``DEFER_BYTES`` of them, and
    each worker has its own scratch matrix."""
    from kconf.engine.ops import DEFER_BYTES, Ops, use_ops

    with use_ops(Ops(workers=workers)):
        model = small_convnet()
    rng = np.random.default_rng(0)
    n = 8
    x = rng.standard_normal((n, 16, 16, 8), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    im2col_bytes = n * 16 * 16 * 5 * 5 * 8 * 4  # one layer's: 1.6 MB
    assert kernels.BLOCK_BYTES >= im2col_bytes  # one block per layer: the largest scratch
    for _ in range(2):  # optimizer slots and first-use allocations
        model.train_on_batch(x, y)
    gc.collect()
    tracemalloc.start()
    try:
        model.train_on_batch(x, y)
        gc.collect()
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(5):
            model.train_on_batch(x, y)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - baseline < 64 * 1024, "memory grows from step to step"
    # Kept from forward to backward, the four layers' im2col matrices would take 4 x 1.6 MB;
    # one at a time, the peak is one of them plus the step's activations and gradients (each
    # activation is 65 KB: all of them together stay well under another 1.6 MB).
    if workers == 1:
        assert peak - baseline < 2 * im2col_bytes, (peak - baseline)
    else:  # two scratch matrices, and the three layers with an input gradient defer
        # theirs (4.9 MB < DEFER_BYTES), whatever the pool thread's pace
        assert peak - baseline < 4 * im2col_bytes + min(3 * im2col_bytes, DEFER_BYTES), (
            peak - baseline)


_PAGE_FAULTS = """
import resource, sys
import numpy as np
from kconf.engine.backend import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
a = np.ones(16 << 20, np.float32)  # 64 MB, written
del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):  # what a training step does with its large temporaries
    a = np.ones(16 << 20, np.float32)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_retained_memory_serves_the_next_large_arrays_without_page_faults():
    import subprocess  # a process of its own: the setting is process-wide

    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _PAGE_FAULTS, mode], check=True,
                             capture_output=True, text=True).stdout
        return int(out)

    # by default every 64 MB array comes fresh from the kernel: at least one fault per 2 MB
    # huge page (thousands with 4 KB pages); retained, the freed block is reused
    assert faults("default") >= 5 * 32
    assert faults("retain") < 50
