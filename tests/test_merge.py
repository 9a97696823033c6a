"""Merge layers: values against plain NumPy references written here, and shape rules.

The checks every layer goes through (shapes, float64 gradients of every input, float32, no
weights, no per-call state, round trips) are the standard layer test,
``tests/test_layer_standard.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.layer_cases import CASES
from tests.layer_test import inputs
from kconf.engine.layers import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)
from kconf.errors import ShapeError

MERGE_LAYERS = {Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot}


def test_merge_layers_take_any_number_of_inputs():
    assert all(cls.n_inputs is None for cls in MERGE_LAYERS)


def test_backward_closures_are_independent():
    layer = Multiply()
    (case,) = [c for c in CASES["Multiply"] if c.id == "multiply"]
    a, b = inputs(case, seed=1), inputs(case, seed=2)
    ya, back_a = layer.forward(a)
    yb, back_b = layer.forward(b)
    dy = np.ones_like(ya)
    db = back_b(dy)  # the later call first
    da = back_a(dy)
    np.testing.assert_allclose(da[0], a[1])
    np.testing.assert_allclose(db[0], b[1])


# --- values against NumPy references ------------------------------------------------------------

def test_elementwise_values():
    rng = np.random.default_rng(3)
    x, y, z = (rng.standard_normal((4, 3, 2)) for _ in range(3))
    np.testing.assert_allclose(Add().forward([x, y, z])[0], x + y + z)
    np.testing.assert_allclose(Subtract().forward([x, y])[0], x - y)
    np.testing.assert_allclose(Multiply().forward([x, y, z])[0], x * y * z)
    np.testing.assert_allclose(Average().forward([x, y, z])[0], (x + y + z) / 3)
    np.testing.assert_allclose(Maximum().forward([x, y, z])[0], np.max([x, y, z], axis=0))
    np.testing.assert_allclose(Minimum().forward([x, y, z])[0], np.min([x, y, z], axis=0))


def test_elementwise_gradients_values():
    rng = np.random.default_rng(4)
    x, y, z = (rng.standard_normal((3, 5)) for _ in range(3))
    dy = rng.standard_normal((3, 5))
    np.testing.assert_allclose(Subtract().forward([x, y])[1](dy)[1], -dy)
    np.testing.assert_allclose(Average().forward([x, y, z])[1](dy)[2], dy / 3)
    dx, dyy, dz = Multiply().forward([x, y, z])[1](dy)
    np.testing.assert_allclose(dyy, dy * x * z)
    winner = np.argmax([x, y, z], axis=0)
    dxs = Maximum().forward([x, y, z])[1](dy)
    for i in range(3):
        np.testing.assert_allclose(dxs[i], np.where(winner == i, dy, 0.0))


def test_multiply_gradient_with_zeros():
    x = np.array([[0.0, 2.0, 0.0]])
    y = np.array([[3.0, 0.0, 0.0]])
    dx, dy = Multiply().forward([x, y])[1](np.ones((1, 3)))
    np.testing.assert_array_equal(dx, y)
    np.testing.assert_array_equal(dy, x)


@pytest.mark.parametrize("cls", [Maximum, Minimum])
def test_extremum_ties_go_to_the_first_input(cls):
    a = np.array([[1.0, 2.0, 5.0, 0.0]])
    b = np.array([[1.0, 3.0, 5.0, 0.0]])
    c = np.array([[1.0, 2.0, 5.0, 0.0]])
    if cls is Minimum:
        a, b, c = -a, -b, -c
    y, backward = cls().forward([a, b, c])
    dxs = backward(np.array([[10.0, 20.0, 30.0, 40.0]]))
    np.testing.assert_array_equal(dxs[0], [[10.0, 0.0, 30.0, 40.0]])  # ties: first input
    np.testing.assert_array_equal(dxs[1], [[0.0, 20.0, 0.0, 0.0]])  # strict winner
    np.testing.assert_array_equal(dxs[2], [[0.0, 0.0, 0.0, 0.0]])
    # a tie between the second and third input only: the second gets it
    y, backward = cls().forward([a - 100 if cls is Maximum else a + 100, c, c])
    dxs = backward(np.ones((1, 4)))
    np.testing.assert_array_equal(dxs[1], np.ones((1, 4)))
    assert not dxs[0].any() and not dxs[2].any()


def test_concatenate_values_and_split_gradient():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 4, 3))
    y, backward = Concatenate(axis=1).forward([a, b])
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=1))
    da, db = backward(y)
    np.testing.assert_array_equal(da, a)
    np.testing.assert_array_equal(db, b)


def _dot_reference(x, y, a1, a2):
    """Per-sample np.tensordot, one sample at a time; (N,) becomes (N, 1)."""
    out = np.stack([np.tensordot(x[i], y[i], axes=(a1 - 1, a2 - 1)) for i in range(len(x))])
    return out.reshape(len(x), 1) if out.ndim == 1 else out


@pytest.mark.parametrize("axes, s1, s2, a1, a2", [
    (1, (3, 4), (3, 4), 1, 1),
    (-1, (3, 4), (3, 4), 1, 1),
    ((2, 1), (2, 3, 4), (2, 4, 5), 2, 1),
    (2, (2, 3, 4), (2, 5, 4), 2, 2),
    (-1, (2, 3, 4), (2, 5, 4), 2, 2),
    ((1, 2), (2, 5, 2), (2, 3, 5), 1, 2),
    ((1, 1), (2, 5, 2), (2, 5, 3), 1, 1),
    ((-1, -1), (2, 4), (2, 3, 4), 1, 2),
])
def test_dot_matches_per_sample_tensordot(axes, s1, s2, a1, a2):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal(s1), rng.standard_normal(s2)
    out, _ = Dot(axes=axes).forward([x, y])
    np.testing.assert_allclose(out, _dot_reference(x, y, a1, a2), rtol=1e-12, atol=1e-12)


def test_dot_keras_docs_example():
    x = np.arange(10.0).reshape(1, 5, 2)
    y = np.arange(10.0, 20.0).reshape(1, 2, 5)
    out, _ = Dot(axes=(1, 2)).forward([x, y])
    np.testing.assert_array_equal(out, [[[260, 360], [320, 445]]])
    assert Dot(axes=(1, 2)).compute_output_shape([(None, 5, 2), (None, 2, 5)]) == (None, 2, 2)


def test_dot_normalize_is_cosine_proximity():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    out, _ = Dot(axes=1, normalize=True).forward([x, y])
    cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    np.testing.assert_allclose(out[:, 0], cos, rtol=1e-12)
    # rank 3, along axis 2: cosine of every pair of rows
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    out, _ = Dot(axes=2, normalize=True).forward([x, y])
    xn = x / np.linalg.norm(x, axis=2, keepdims=True)
    yn = y / np.linalg.norm(y, axis=2, keepdims=True)
    np.testing.assert_allclose(out, np.einsum("nik,njk->nij", xn, yn), rtol=1e-12)


def test_dot_normalize_zero_vector_gives_zero_not_nan():
    x = np.zeros((1, 3))
    y = np.ones((1, 3))
    out, backward = Dot(axes=1, normalize=True).forward([x, y])
    assert out[0, 0] == 0.0
    dx, dy = backward(np.ones((1, 1)))
    assert np.isfinite(dx).all() and np.isfinite(dy).all()


# --- shapes and errors ------------------------------------------------------------------------

@pytest.mark.parametrize("layer, shapes, expected", [
    (Concatenate(), [(None, 32), (None, 16)], (None, 48)),
    (Concatenate(), [(None, 5, 2), (None, 5, 3), (None, 5, 1)], (None, 5, 6)),
    (Concatenate(axis=1), [(None, 5, 2), (None, 3, 2)], (None, 8, 2)),
    (Concatenate(axis=1), [(None, None, 2), (None, 3, 2)], (None, None, 2)),
    (Concatenate(), [(None, None, 2), (None, 4, 3)], (None, 4, 5)),
    (Add(), [(None, 32), (None, 32)], (None, 32)),
    (Add(), [(None, None, 3), (None, 7, 3)], (None, 7, 3)),
    (Subtract(), [(None, 4, 4), (None, 4, 4)], (None, 4, 4)),
    (Multiply(), [(None, 3), (None, 3), (None, 3)], (None, 3)),
    (Average(), [(8, 3), (None, 3)], (8, 3)),
    (Maximum(), [(None, 2), (None, 2)], (None, 2)),
    (Minimum(), [(None, 2), (None, 2)], (None, 2)),
    (Dot(axes=1), [(None, 32), (None, 32)], (None, 1)),
    (Dot(axes=-1), [(None, 32), (None, None)], (None, 1)),
    (Dot(axes=(2, 1)), [(None, 3, 4), (None, 4, 5)], (None, 3, 5)),
    (Dot(axes=2), [(None, 3, 4), (None, 5, 4)], (None, 3, 5)),
    (Dot(axes=(1, 2)), [(None, 4), (None, 3, 4)], (None, 3)),
    (Dot(axes=1), [(None, 4, 2, 3), (None, 4, 5)], (None, 2, 3, 5)),
])
def test_compute_output_shape(layer, shapes, expected):
    assert layer.compute_output_shape(shapes) == expected


@pytest.mark.parametrize("cls", sorted(MERGE_LAYERS - {Dot}, key=lambda c: c.__name__))
def test_needs_at_least_two_inputs(cls):
    with pytest.raises(ShapeError) as info:
        cls().compute_output_shape([(None, 32)])
    name = cls.__name__
    expected = (f"{name} needs exactly 2 inputs, got 1" if cls is Subtract
                else f"{name} needs at least 2 inputs, got 1")
    assert str(info.value) == expected


def test_exactly_two_inputs():
    for layer in (Subtract(), Dot(axes=1)):
        for n in (1, 3):
            with pytest.raises(ShapeError, match=f"needs exactly 2 inputs, got {n}"):
                layer.compute_output_shape([(None, 4)] * n)


def test_concatenate_message():
    with pytest.raises(ShapeError) as info:
        Concatenate().compute_output_shape([(None, 32)])
    assert str(info.value) == "Concatenate needs at least 2 inputs, got 1"
    with pytest.raises(ShapeError) as info:
        Concatenate().compute_output_shape([(None, 32), (None, 5, 2)])
    assert str(info.value) == ("Concatenate: shapes (None, 32) and (None, 5, 2) cannot be "
                               "concatenated on axis -1")


NO_BROADCAST = " (nor broadcast: sizes must be equal or 1)"


@pytest.mark.parametrize("layer, shapes, message", [
    (Add(), [(None, 32), (None, 16)], "Add: input shapes (None, 32) and (None, 16) do not match" + NO_BROADCAST),
    (Subtract(), [(None, 3, 2), (None, 3)],
     "Subtract: input shapes (None, 3, 2) and (None, 3) do not match" + NO_BROADCAST),
    (Multiply(), [(None, 4), (None, 4), (None, 5)],
     "Multiply: input shapes (None, 4) and (None, 5) do not match" + NO_BROADCAST),
    (Average(), [(None, 4), (None, 5)],
     "Average: input shapes (None, 4) and (None, 5) do not match" + NO_BROADCAST),
    (Maximum(), [(None, 4), (None, 5)],
     "Maximum: input shapes (None, 4) and (None, 5) do not match" + NO_BROADCAST),
    (Minimum(), [(None, 4), (None, 5)],
     "Minimum: input shapes (None, 4) and (None, 5) do not match" + NO_BROADCAST),
    (Concatenate(axis=1), [(None, 5, 2), (None, 5, 3)],
     "Concatenate: shapes (None, 5, 2) and (None, 5, 3) cannot be concatenated on axis 1"),
])
def test_shape_mismatch_messages(layer, shapes, message):
    with pytest.raises(ShapeError) as info:
        layer.compute_output_shape(shapes)
    assert str(info.value) == message


@pytest.mark.parametrize("layer, shapes, fragment", [
    (Concatenate(axis=0), [(None, 3), (None, 3)], "batch axis"),
    (Concatenate(axis=3), [(None, 3), (None, 3)], "out of range"),
    (Dot(axes=1), [(None, 3), (None, 4)], "axis 1 of \\(None, 3\\) has size 3 but axis 1 of "
                                          "\\(None, 4\\) has size 4"),
    (Dot(axes=0), [(None, 3), (None, 3)], "batch axis"),
    (Dot(axes=2), [(None, 3), (None, 3)], "do not fit"),
    (Dot(axes=1), [(None,), (None, 3)], "rank 2 or more"),
    (Dot(axes=1), [(4, 3), (5, 3)], "batch sizes"),
])
def test_other_shape_errors(layer, shapes, fragment):
    with pytest.raises(ShapeError, match=fragment):
        layer.compute_output_shape(shapes)


def test_dot_rejects_bad_axes_argument():
    with pytest.raises(ValueError, match="pair"):
        Dot(axes=(1, 2, 3))
