"""Ops (kconf.engine.ops): layers' blocks of work on several worker threads give what one gives.

Each layer that uses workers is compared, forward and backward, with 1 worker and with 3
(more workers than this machine may have cores, and blocks that do not divide evenly), in
float64; the optimizer's flat update bit for bit. Then the machinery: blocks handed out as
workers ask, errors from a worker, nested calls, BLAS's thread count restored after a step and
after a model's step, which ops a layer reaches.
"""
from __future__ import annotations

import contextlib
import copy
import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest

import kconf
from kconf.engine import kernels
from kconf.engine.layers import Conv2D, Dense, MaxPooling2D
from kconf.engine.ops import Ops, current_ops, use_ops
from kconf.engine.products import product_blocks
from kconf.engine.optimizers import SGD
from kconf.engine.threads import openblas


def _forward_backward(layer, x, seed=3):
    y, backward = layer.forward(x, training=True)
    for grad in layer.grads.values():
        grad[...] = 0
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    dx = backward(dy)
    return y, dx, {name: grad.copy() for name, grad in layer.grads.items()}


def _built(layer, shape, seed=0):
    layer.build((None, *shape[1:]), np.random.default_rng(seed), dtype=np.float64)
    for name in layer.weights:  # a non-zero bias
        layer.weights[name] = np.random.default_rng(seed + 1).standard_normal(
            layer.weights[name].shape)
    return layer


@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2D(4, 3, activation="relu"), (5, 7, 6, 3)),
    (lambda: Conv2D(3, (2, 3), strides=2, padding="same", activation="sigmoid"), (5, 7, 8, 2)),
    (lambda: Conv2D(4, (1, 3), padding="same", activation="relu"), (5, 2, 24, 24)),  # shifted rows
    (lambda: MaxPooling2D(2), (5, 6, 7, 3)),  # cropped: 7 columns
], ids=["conv_relu", "conv_same_strided_sigmoid", "conv_shifted", "pool"])
def test_layers_give_the_same_results_on_one_worker_and_on_three(make, shape, monkeypatch):
    monkeypatch.setattr(kernels.geometry, "batch_block", lambda n, bytes_per_image: 1)  # 5 blocks
    x = np.random.default_rng(10).standard_normal(shape)
    layer = _built(make(), shape)
    with use_ops(Ops(workers=1)):
        y1, dx1, grads1 = _forward_backward(layer, x)
    with use_ops(Ops(workers=3)) as ops:
        assert ops.workers == 3 and current_ops() is ops
        y3, dx3, grads3 = _forward_backward(layer, x)
    np.testing.assert_allclose(y3, y1, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx3, dx1, rtol=1e-13, atol=1e-13)
    for name in grads1:
        np.testing.assert_allclose(grads3[name], grads1[name], rtol=1e-13, atol=1e-13)


def test_conv_kernel_gradient_is_summed_in_block_order_whatever_the_workers(monkeypatch):
    """The blocks' shares of the kernel gradient are added in block order, so 2 and 3
    workers give the same bits (float32, where another order would round differently)."""
    monkeypatch.setattr(kernels.geometry, "batch_block", lambda n, bytes_per_image: 1)
    shape = (7, 9, 9, 4)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    layer = Conv2D(5, 3)
    layer.build((None, *shape[1:]), np.random.default_rng(0))
    results = []
    for count in (2, 3):
        with use_ops(Ops(workers=count)):
            results.append(_forward_backward(layer, x))
    np.testing.assert_array_equal(results[0][2]["kernel"], results[1][2]["kernel"])
    np.testing.assert_array_equal(results[0][2]["bias"], results[1][2]["bias"])


def test_large_optimizer_updates_on_workers_match_one_worker_bit_for_bit():
    rng = np.random.default_rng(0)
    param = rng.standard_normal(40 * 2**16 + 123).astype(np.float32)  # 41 blocks
    grads = [rng.standard_normal(param.shape).astype(np.float32) for _ in range(3)]
    results = []
    for count in (1, 3):
        p = param.copy()
        opt = SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
        with use_ops(Ops(workers=count)):
            for g in grads:
                opt.apply([p], [g])
        results.append(p)
    np.testing.assert_array_equal(results[1], results[0])
    assert not np.array_equal(results[0], param)


def test_matmul_in_a_step_cuts_rows_or_columns_and_gives_the_full_product():
    rng = np.random.default_rng(0)
    ops = Ops(workers=3)
    for m, k, n in [(801, 300, 70), (30, 300, 2001)]:  # cut along rows, then columns
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        cut = []
        with ops.step():
            parallel = ops.parallel
            ops.parallel = lambda work, blocks: (cut.append(blocks), parallel(work, blocks))
            product = ops.matmul(a, b)
            del ops.parallel
        np.testing.assert_allclose(product, a @ b, rtol=1e-12, atol=1e-12)
        assert cut == [product_blocks(max(m, n), 2 * m * k * n)]
    with ops.step(parallel=False):  # a step of a model without parallel layers: plain @
        assert ops.workers == 3 and ops._step_workers == 0
        np.testing.assert_allclose(ops.matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)


def test_product_blocks_depend_on_the_size_only_a_power_of_two_of_them():
    assert len(product_blocks(6400, 6400 * 32 * 32 * 2)) == 2  # 13 MFLOP: two workers' shares
    assert len(product_blocks(6400, 6400 * 32 * 192 * 2)) == 2  # 79 MFLOP
    assert len(product_blocks(6400, 6400 * 128 * 128 * 2)) == 4  # 210 MFLOP
    assert len(product_blocks(6400, 6400 * 256 * 128 * 2)) == 8  # 419 MFLOP
    assert len(product_blocks(10**6, 10**12)) == 16  # at most 16
    assert len(product_blocks(256, 2 * 32 * 30976 * 256)) == 2  # 128 columns or more each
    assert len(product_blocks(1, 10**9)) == 1  # no empty block
    blocks = product_blocks(1001, 10**8)
    assert blocks[0].start == 0 and blocks[-1].stop == 1001
    assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))
    assert {s.stop - s.start for s in blocks} <= {1001 // len(blocks), 1001 // len(blocks) + 1}


@pytest.mark.parametrize("shape", [(6400, 32, 64), (6400, 256, 128), (40, 6000, 48)],
                         ids=["rows", "eight_blocks", "columns"])
def test_products_in_a_step_have_the_same_bits_on_any_number_of_workers(shape):
    """float32, where BLAS rounds a row by where its block begins: ``--threads 1`` and
    ``--threads N`` must compute the same numbers, so the blocks are the shapes' alone."""
    m, k, n = shape
    rng = np.random.default_rng(4)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    dz = rng.standard_normal((m, n)).astype(np.float32)
    start = rng.standard_normal((k, n)).astype(np.float32)
    results = []
    blas = openblas()
    for count in (1, 2, 3):
        ops = Ops(workers=count)
        with (blas.single_threaded() if blas else contextlib.nullcontext()), ops.step():
            out = start.copy()
            ops.add_matmul(out, a.T, dz)  # a kernel gradient: (k, m) @ (m, n)
            results.append((ops.matmul(a, b), out))
    for product, added in results[1:]:
        np.testing.assert_array_equal(product, results[0][0])
        np.testing.assert_array_equal(added, results[0][1])


def test_add_matmul_in_a_step_adds_the_product_block_by_block():
    rng = np.random.default_rng(1)
    ops = Ops(workers=3)
    a, b = rng.standard_normal((4001, 40)), rng.standard_normal((40, 64))  # 20 MFLOP
    start = rng.standard_normal((4001, 64))
    out = start.copy()
    with ops.step():
        ops.add_matmul(out, a, b)
    np.testing.assert_allclose(out, start + a @ b, rtol=1e-12, atol=1e-12)
    out = start.copy()
    ops.add_matmul(out, a, b)  # outside a step: one product
    np.testing.assert_allclose(out, start + a @ b, rtol=1e-12, atol=1e-12)


def test_zero_clears_large_arrays_a_part_per_worker_and_small_or_strided_ones_at_once():
    ops = Ops(workers=3)
    large = np.ones(3 * 2**20 + 5, np.float32)
    ops.zero(large)
    assert not large.any()
    matrix = np.ones((2**11, 2**10))
    ops.zero(matrix[:, ::2])  # not contiguous: a fill of the view
    assert not matrix[:, ::2].any() and matrix[:, 1::2].all()


def test_parallel_hands_every_block_to_exactly_one_worker_and_chunks_cover_the_range():
    ops = Ops(workers=3)
    seen = {}
    threads = {}

    def work(worker, mine):
        seen[worker] = []
        threads[worker] = threading.get_ident()
        for block in mine:
            seen[worker].append(block)
            time.sleep(0.002 if worker == 0 else 0.0005)  # worker 0 slow: the others take more

    ops.parallel(work, list(range(40)))
    assert sorted(b for blocks in seen.values() for b in blocks) == list(range(40))
    assert set(seen) == {0, 1, 2} and len(seen[0]) < 40 / 3
    assert threads[0] == threading.get_ident()  # the caller is worker 0
    assert len(set(threads.values())) == 3
    assert ops.chunks(10) == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert ops.chunks(2) == [slice(0, 1), slice(1, 2)]
    seen.clear()
    ops.parallel(work, ["only"])  # one block: on the calling thread, as a list
    assert seen == {0: ["only"]}


def test_parallel_inside_parallel_runs_on_the_worker_that_asked_and_sees_the_same_ops():
    """A nested call must not wait for pool threads that are busy with the outer call (with
    every pool thread waiting so, nothing would run): it runs on its caller's thread, as
    that worker (whose per-worker scratch no other thread uses meanwhile)."""
    ops = Ops(workers=2)
    inner = []
    # both workers in before either takes a block: on a loaded machine the pool thread may
    # start only after the caller took every block (and is then not started at all)
    both_started = threading.Barrier(2, timeout=60)

    def outer(worker, mine):
        both_started.wait()
        for block in mine:
            assert current_ops() is ops  # pool threads run in a copy of the caller's context
            caller = threading.get_ident()

            def work(inner_worker, parts, block=block, worker=worker):
                assert threading.get_ident() == caller and inner_worker == worker
                inner.extend((block, part) for part in parts)
                workers.add(worker)

            ops.parallel(work, ops.chunks(4))
            time.sleep(0.001)

    workers = set()
    with use_ops(ops):
        ops.parallel(outer, list(range(6)))
    assert sorted(inner) == [(b, p) for b in range(6) for p in ops.chunks(4)]
    assert workers == {0, 1}


@pytest.mark.parametrize("failing", [0, 1])
def test_an_error_in_a_worker_stops_the_others_and_is_raised_after_they_finished(failing):
    ops = Ops(workers=2)
    done = []

    def work(worker, mine):
        for block in mine:
            if worker == failing:
                raise ValueError(f"worker {worker} failed")
            time.sleep(0.01)
            done.append(block)

    with pytest.raises(ValueError, match=f"worker {failing} failed"):
        ops.parallel(work, list(range(20)))
    assert len(done) < 5  # the other worker stopped taking blocks
    finished = len(done)
    time.sleep(0.05)
    assert len(done) == finished  # and had stopped before parallel returned
    ops.parallel(lambda worker, mine: done.extend(mine), [100, 101])  # usable again
    assert done[-2:] in ([100, 101], [101, 100])
    with pytest.raises(ValueError, match="positive"):
        Ops(workers=0)


def _parallel_sum(ops) -> int:
    """The sum of 0..99 by ``ops``'s workers, each block taking a while, so that every pool
    thread takes some."""
    total = []

    def work(worker, mine):
        for block in mine:
            time.sleep(0.001)
            total.append(block)

    ops.parallel(work, list(range(100)))
    return sum(total)


def test_a_copy_or_pickle_keeps_the_settings_and_makes_its_own_pool():
    ops = Ops(workers=3)
    assert _parallel_sum(ops) == 4950
    for other in (pickle.loads(pickle.dumps(ops)), copy.deepcopy(ops)):
        assert other.workers == 3 and other._pool is None
        assert _parallel_sum(other) == 4950 and other._pool is not ops._pool


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_makes_its_own_pool():
    """The child of a fork has none of its parent's pool threads: with the parent's pool, its
    first parallel call would wait forever."""
    ops = Ops(workers=3)
    assert _parallel_sum(ops) == 4950  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, never return into pytest
        code = 3
        try:
            signal.alarm(30)  # a hung pool ends the child (and fails the test)
            code = 0 if _parallel_sum(ops) == 4950 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_steps_and_training_steps_leave_blas_thread_count_as_it_was(numpy_openblas):
    blas = numpy_openblas
    before = blas.get()
    blas.set(2)
    try:
        ops = Ops()
        assert ops.workers == 2  # one per BLAS thread
        with ops.step():
            assert blas.get() == 1 and ops.workers == 2
            with ops.step():  # nested: nothing more
                assert blas.get() == 1
            assert ops._step_workers == 2
        assert blas.get() == 2 and ops._step_workers == 0
        with ops.step(parallel=False):
            assert blas.get() == 2
        model = kconf.build_model({
            "name": "convnet", "seed": 0,
            "model": {"sequential": [
                {"Conv2D": {"filters": 2, "kernel_size": 3, "input_shape": [6, 6, 1]}},
                {"MaxPooling2D": {"pool_size": 2}}, {"Flatten": {}}, {"Dense": {"units": 2}}]},
            "compile": {"optimizer": "sgd", "loss": "mse"},
            "data": {"train": {"random": {"samples": 4, "x": [6, 6, 1], "y": [2]}}},
        })
        x = np.ones((4, 6, 6, 1), np.float32)
        model.train_on_batch(x, np.ones((4, 2), np.float32))
        model.predict(x)
        assert model._uses_workers
        assert blas.get() == 2
    finally:
        blas.set(before)


class _Recording(Ops):
    """An Ops that counts the products layers ask of it."""

    def __init__(self):
        super().__init__(workers=1)
        self.products = 0

    def matmul(self, a, b):
        self.products += 1
        return super().matmul(a, b)

    def add_matmul(self, out, a, b):
        self.products += 1
        super().add_matmul(out, a, b)


def test_a_model_steps_with_its_own_ops_and_a_layer_alone_uses_the_current_one():
    default = current_ops()
    assert current_ops() is default  # made once per context
    model = kconf.build_model({
        "name": "mlp", "seed": 0,
        "model": {"sequential": [{"Dense": {"units": 2, "input_shape": [3]}}]},
        "compile": {"optimizer": "sgd", "loss": "mse"},
        "data": {"train": {"random": {"samples": 4, "x": [3], "y": [2]}}},
    })
    assert model.ops is default  # the current ops when the model was made
    model.ops = mine = _Recording()
    model.train_on_batch(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32))
    assert mine.products == 2  # forward's x @ kernel, backward's kernel gradient
    model.predict(np.ones((2, 3), np.float32))
    assert mine.products == 3
    assert current_ops() is default  # the steps are over

    alone = Dense(2)
    alone.build((None, 3), np.random.default_rng(0))
    with use_ops(_Recording()) as other:
        alone.forward(np.ones((2, 3), np.float32))
    assert other.products == 1 and mine.products == 3
    assert current_ops() is default

    seen = []  # another thread has a default of its own
    thread = threading.Thread(target=lambda: seen.append(current_ops()))
    thread.start()
    thread.join()
    assert isinstance(seen[0], Ops) and seen[0] is not default


def test_models_with_convolutions_or_pooling_use_workers_and_others_do_not():
    def model(layers, shape):
        return kconf.build_model({
            "name": "m", "seed": 0, "model": {"sequential": layers},
            "compile": {"optimizer": "sgd", "loss": "mse"},
            "data": {"train": {"random": {"samples": 2, "x": shape, "y": [2]}}}})

    conv = model([{"Conv2D": {"filters": 2, "kernel_size": 3, "input_shape": [5, 5, 1]}},
                  {"Flatten": {}}, {"Dense": {"units": 2}}], [5, 5, 1])
    pooled = model([{"TimeDistributed": {"layer": {"MaxPooling2D": {"pool_size": 2}},
                                         "input_shape": [3, 4, 4, 1]}},
                    {"Flatten": {}}, {"Dense": {"units": 2}}], [3, 4, 4, 1])
    dense = model([{"Dense": {"units": 2, "input_shape": [3]}}], [3])
    assert conv.uses_workers and pooled.uses_workers and not dense.uses_workers
