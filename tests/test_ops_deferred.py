"""Ops.defer (kconf.engine.ops): work that nothing needs until later — a convolution's kernel
gradient in backward — runs on a pool thread while the caller goes on, and is finished in the
order deferred, so the gradients are those computed at once, bit for bit.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from kconf.engine import kernels
from kconf.engine.layers import Conv2D
from kconf.engine.ops import Ops, use_ops


def test_deferred_blocks_all_run_and_finish_in_the_order_deferred():
    ops = Ops(workers=2)
    done, finished = [], []
    with ops.step():
        assert ops.deferring
        for piece in range(3):
            assert ops.defer(lambda block, piece=piece: done.append((piece, block)), range(5),
                             lambda piece=piece: finished.append(piece))
        ops.finish_deferred()
        assert sorted(done) == [(p, b) for p in range(3) for b in range(5)]
        assert finished == [0, 1, 2]
        ops.finish_deferred()  # nothing left: nothing again
    assert len(done) == 15 and finished == [0, 1, 2]


def test_defer_is_refused_outside_a_parallel_step_and_on_one_worker():
    for ops, parallel in ((Ops(workers=2), False), (Ops(workers=1), True)):
        assert not ops.defer(lambda block: None, [0], lambda: None)
        with ops.step(parallel=parallel):
            assert not ops.deferring
            assert not ops.defer(lambda block: None, [0], lambda: None)


def test_the_end_of_a_step_finishes_what_was_deferred():
    ops = Ops(workers=2)
    finished = []
    with ops.step():
        ops.defer(lambda block: None, range(4), lambda: finished.append(True))
    assert finished == [True]


def test_parallel_does_not_wait_for_a_pool_thread_busy_with_deferred_work():
    """The pool thread holds a deferred block until released; a parallel call meanwhile runs
    every block on its caller and returns; the deferred block then finishes."""
    ops = Ops(workers=2)
    started, release = threading.Event(), threading.Event()
    done = []

    def slow(block):
        started.set()
        assert release.wait(10)
        done.append(block)

    with ops.step():
        ops.defer(slow, [0], lambda: done.append("finished"))
        assert started.wait(10)  # the pool thread has taken the block
        ran = []
        ops.parallel(lambda worker, mine: ran.extend((worker, block) for block in mine),
                     list(range(6)))
        assert ran == [(0, block) for block in range(6)] and done == []
        release.set()
        ops.finish_deferred()
    assert done == [0, "finished"]


def test_an_error_in_deferred_work_is_raised_after_every_piece_stopped():
    ops = Ops(workers=2)
    finished = []

    def work(block):
        if block == 3:
            raise ValueError("block 3 failed")

    with pytest.raises(ValueError, match="block 3 failed"), ops.step():
        ops.defer(work, range(6), lambda: finished.append("first"))
        ops.defer(lambda block: None, range(6), lambda: finished.append("second"))
    assert finished == []  # no piece is finished after an error, not even a later one
    with ops.step():  # usable again
        ops.defer(lambda block: None, range(2), lambda: finished.append("again"))
    assert finished == ["again"]


@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2D(4, 3, padding="same", use_bias=False), (6, 7, 6, 3)),  # dz's matrix
    (lambda: Conv2D(3, 3, strides=2, padding="same"), (6, 7, 8, 2)),  # phases, x's matrix
    (lambda: Conv2D(5, 1, strides=2, use_bias=False), (6, 5, 5, 4)),  # 1x1 strided
    (lambda: Conv2D(4, (1, 3), padding="same", activation="relu"), (6, 2, 24, 24)),  # shifted
], ids=["transposed", "strided", "pointwise_strided", "shifted_rows"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deferred_kernel_gradients_are_those_computed_at_once(make, shape, dtype, monkeypatch):
    """Conv2D in a parallel step of 2 workers (kernel gradients deferred, finished when the
    step ends) against 1 worker (at once): the same bits; 6 blocks of one image."""
    monkeypatch.setattr(kernels.geometry, "batch_block", lambda n, bytes_per_image: 1)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    layer = make()
    layer.build((None, *shape[1:]), np.random.default_rng(0), dtype=dtype)
    deferred = []
    defer = Ops.defer
    monkeypatch.setattr(Ops, "defer", lambda self, *args: deferred.append(
        defer(self, *args)) or deferred[-1])
    results = []
    for workers in (1, 2):
        for grad in layer.grads.values():
            grad[...] = 0
        with use_ops(Ops(workers=workers)) as ops, ops.step():
            y, backward = layer.forward(x, training=True)
            dx = backward(np.random.default_rng(5).standard_normal(y.shape).astype(dtype))
        results.append([y, dx, *(grad.copy() for grad in layer.grads.values())])
    assert deferred == [True]  # on 2 workers only
    assert np.abs(results[0][2]).sum() > 0
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_deferred_work_keeps_a_bounded_number_of_bytes_alive():
    """While a pool thread holds a piece that keeps 20 MB, another that would keep 10 MB
    more is refused (the caller computes it at once); once done, it is accepted."""
    ops = Ops(workers=2)
    started, release = threading.Event(), threading.Event()

    def slow(block):
        started.set()
        assert release.wait(10)

    with ops.step():
        assert ops.can_defer(10 << 20)
        assert ops.defer(slow, [0], lambda: None, nbytes=20 << 20)
        assert started.wait(10)
        assert not ops.can_defer(10 << 20) and ops.can_defer(1 << 20)
        release.set()
        ops.finish_deferred()
        assert ops.can_defer(10 << 20)
    assert not ops.can_defer(1)  # outside a step: never
