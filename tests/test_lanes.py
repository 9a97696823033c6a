"""Lanes (kconf.engine.lanes): layers' blocks of work on several threads give what one gives.

Each layer that runs lanes is compared, forward and backward, with 1 lane and with 3 (more
lanes than this machine may have cores, and blocks that do not divide evenly), in float64;
the optimizer's flat update bit for bit. Then the machinery: blocks handed out as lanes
ask, errors from a lane, BLAS's thread count restored after a session and after a model's step.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import kconf
from kconf.engine import lanes
from kconf.engine.layers import Conv2D, MaxPooling2D
from kconf.engine.layers import conv2d
from kconf.engine.optimizers import SGD


@pytest.fixture
def lane_counts():
    """Yields a setter for the lane count; restores the default after the test."""
    yield lanes.set_lanes
    lanes.set_lanes(None)


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
    (lambda: Conv2D(4, 3, padding="same", activation="relu"), (5, 6, 5, 24)),  # shifted rows
    (lambda: MaxPooling2D(2), (5, 6, 7, 3)),  # cropped: 7 columns
], ids=["conv_relu", "conv_same_strided_sigmoid", "conv_shifted", "pool"])
def test_layers_give_the_same_results_on_one_lane_and_on_three(make, shape, lane_counts,
                                                              monkeypatch):
    monkeypatch.setattr(conv2d, "batch_block", lambda n, bytes_per_image: 1)  # 5 blocks
    x = np.random.default_rng(10).standard_normal(shape)
    layer = _built(make(), shape)
    lane_counts(1)
    y1, dx1, grads1 = _forward_backward(layer, x)
    lane_counts(3)
    assert lanes.lane_count() == 3
    y3, dx3, grads3 = _forward_backward(layer, x)
    np.testing.assert_allclose(y3, y1, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx3, dx1, rtol=1e-13, atol=1e-13)
    for name in grads1:
        np.testing.assert_allclose(grads3[name], grads1[name], rtol=1e-13, atol=1e-13)


def test_conv_kernel_gradient_is_summed_in_block_order_whatever_the_lanes(lane_counts,
                                                                          monkeypatch):
    """The blocks' shares of the kernel gradient are added in block order, so 2 and 3 lanes
    give the same bits (float32, where another order would round differently)."""
    monkeypatch.setattr(conv2d, "batch_block", lambda n, bytes_per_image: 1)
    shape = (7, 9, 9, 4)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    layer = Conv2D(5, 3)
    layer.build((None, *shape[1:]), np.random.default_rng(0))
    results = []
    for count in (2, 3):
        lane_counts(count)
        results.append(_forward_backward(layer, x))
    np.testing.assert_array_equal(results[0][2]["kernel"], results[1][2]["kernel"])
    np.testing.assert_array_equal(results[0][2]["bias"], results[1][2]["bias"])


def test_large_optimizer_updates_in_lanes_match_one_lane_bit_for_bit(lane_counts):
    rng = np.random.default_rng(0)
    param = rng.standard_normal(40 * 2**16 + 123).astype(np.float32)  # 41 blocks
    grads = [rng.standard_normal(param.shape).astype(np.float32) for _ in range(3)]
    results = []
    for count in (1, 3):
        lane_counts(count)
        p = param.copy()
        opt = SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
        for g in grads:
            opt.apply([p], [g])
        results.append(p)
    np.testing.assert_array_equal(results[1], results[0])
    assert not np.array_equal(results[0], param)


def test_matmul_in_a_session_cuts_rows_or_columns_and_gives_the_full_product(lane_counts):
    rng = np.random.default_rng(0)
    lane_counts(3)
    for m, k, n in [(401, 300, 70), (30, 300, 1001)]:  # cut along rows, then columns
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        with lanes.session():
            product = lanes.matmul(a, b)
        np.testing.assert_allclose(product, a @ b, rtol=1e-12, atol=1e-12)


def test_add_matmul_in_a_session_adds_the_product_block_by_block(lane_counts):
    rng = np.random.default_rng(1)
    lane_counts(3)
    a, b = rng.standard_normal((4001, 40)), rng.standard_normal((40, 64))  # 20 MFLOP
    start = rng.standard_normal((4001, 64))
    out = start.copy()
    with lanes.session():
        lanes.add_matmul(out, a, b)
    np.testing.assert_allclose(out, start + a @ b, rtol=1e-12, atol=1e-12)


def test_run_hands_every_block_to_exactly_one_lane_and_chunks_cover_the_range(lane_counts):
    lane_counts(3)
    seen = {}
    threads = {}

    def work(lane, mine):
        seen[lane] = []
        threads[lane] = threading.get_ident()
        for block in mine:
            seen[lane].append(block)
            time.sleep(0.002 if lane == 0 else 0.0005)  # lane 0 slow: the others take more

    lanes.run(work, list(range(40)))
    assert sorted(b for blocks in seen.values() for b in blocks) == list(range(40))
    assert set(seen) == {0, 1, 2} and len(seen[0]) < 40 / 3
    assert threads[0] == threading.get_ident()  # the caller is lane 0
    assert len(set(threads.values())) == 3
    assert lanes.chunks(10) == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert lanes.chunks(2) == [slice(0, 1), slice(1, 2)]
    seen.clear()
    lanes.run(work, ["only"])  # one block: on the calling thread, as a list
    assert seen == {0: ["only"]}


@pytest.mark.parametrize("failing", [0, 1])
def test_an_error_in_a_lane_stops_the_others_and_is_raised_after_they_finished(failing,
                                                                               lane_counts):
    lane_counts(2)
    done = []

    def work(lane, mine):
        for block in mine:
            if lane == failing:
                raise ValueError(f"lane {lane} failed")
            time.sleep(0.01)
            done.append(block)

    with pytest.raises(ValueError, match=f"lane {failing} failed"):
        lanes.run(work, list(range(20)))
    assert len(done) < 5  # the other lane stopped taking blocks
    finished = len(done)
    time.sleep(0.05)
    assert len(done) == finished  # and had stopped before run returned
    with pytest.raises(ValueError, match="positive"):
        lanes.set_lanes(0)


def test_sessions_and_training_steps_leave_blas_thread_count_as_it_was():
    blas = lanes._load_blas()
    if not blas:
        pytest.skip("NumPy's BLAS is not an OpenBLAS whose thread count can be set")
    set_threads, get_threads = blas
    before = get_threads()
    set_threads(2)
    try:
        with lanes.session():
            assert get_threads() == 1
            with lanes.session():  # nested: nothing more
                assert get_threads() == 1
        assert get_threads() == 2
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
        assert model._uses_lanes
        assert get_threads() == 2
    finally:
        set_threads(before)


def test_models_with_convolutions_or_pooling_use_lanes_and_others_do_not():
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
    assert conv.uses_lanes and pooled.uses_lanes and not dense.uses_lanes
