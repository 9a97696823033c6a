"""Initializers: shapes, Keras bounds and variances, orthogonality, determinism, dict specs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kconf.engine import initializers
from kconf.engine.initializers import INITIALIZERS

TRUNC = 0.87962566103423978
KERAS_NAMES = {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
               "lecun_normal", "zeros", "ones", "random_normal", "random_uniform",
               "truncated_normal", "constant", "orthogonal", "variance_scaling"}

# name -> (scale, which n, distribution) of the variance-scaling family.
VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "avg", "uniform"),
    "glorot_normal": (1.0, "avg", "normal"),
    "he_uniform": (2.0, "in", "uniform"),
    "he_normal": (2.0, "in", "normal"),
    "lecun_uniform": (1.0, "in", "uniform"),
    "lecun_normal": (1.0, "in", "normal"),
}


def _n(shape, which):
    """fan_in, or the mean of fan_in and fan_out, computed the Keras way by hand."""
    if len(shape) == 2:
        fan_in, fan_out = shape
    else:
        rf = math.prod(shape[:-2])
        fan_in, fan_out = shape[-2] * rf, shape[-1] * rf
    return fan_in if which == "in" else (fan_in + fan_out) / 2


def test_registry_has_the_keras_names():
    assert set(INITIALIZERS) == KERAS_NAMES


@pytest.mark.parametrize("shape", [(3, 4), (3, 3, 2, 5), (4, 4)])
@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_shape_and_finiteness(name, shape):
    value = initializers.get(name)(shape, np.random.default_rng(0))
    assert value.shape == shape
    assert np.issubdtype(value.dtype, np.floating)
    assert np.all(np.isfinite(value))


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_same_seed_same_values(name):
    shape = (6, 5)
    a = initializers.get(name)(shape, np.random.default_rng(7))
    b = initializers.get(name)(shape, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    if name not in ("zeros", "ones", "constant"):
        c = initializers.get(name)(shape, np.random.default_rng(8))
        assert not np.array_equal(a, c)


def test_conv_fans():
    assert initializers._fans((3, 3, 16, 32)) == (144, 288)
    assert initializers._fans((20, 30)) == (20, 30)
    assert initializers._fans((7,)) == (7, 7)


@pytest.mark.parametrize("shape", [(40, 60), (3, 3, 8, 16)])
@pytest.mark.parametrize("name", sorted(VARIANCE_SCALING))
def test_variance_scaling_bounds(name, shape):
    scale, which, distribution = VARIANCE_SCALING[name]
    n = _n(shape, which)
    value = initializers.get(name)(shape, np.random.default_rng(1))
    if distribution == "uniform":
        bound = math.sqrt(3.0 * scale / n)
    else:
        bound = 2.0 * math.sqrt(scale / n) / TRUNC
    assert np.abs(value).max() <= bound


def test_glorot_uniform_limit_is_the_keras_formula():
    shape = (3, 3, 16, 32)
    limit = math.sqrt(6.0 / (144 + 288))
    value = initializers.get("glorot_uniform")(shape, np.random.default_rng(2))
    assert np.abs(value).max() <= limit
    assert np.abs(value).max() > 0.95 * limit  # actually fills the range


@pytest.mark.parametrize("name", sorted(VARIANCE_SCALING))
def test_variance_scaling_std(name):
    shape = (300, 500)
    scale, which, _ = VARIANCE_SCALING[name]
    expected = math.sqrt(scale / _n(shape, which))
    value = initializers.get(name)(shape, np.random.default_rng(3))
    assert abs(value.mean()) < 0.01 * expected
    assert value.std() == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("args, shape, n", [
    ({"scale": 2.0, "mode": "fan_out"}, (3, 3, 40, 60), 9 * 60),       # EfficientNet's convs
    ({"scale": 0.5, "mode": "fan_avg", "distribution": "untruncated_normal"}, (300, 500), 400),
    ({"scale": 1 / 3, "mode": "fan_out", "distribution": "uniform"}, (300, 500), 500),
    ({}, (300, 500), 300),                                     # Keras's defaults: lecun_normal
])
def test_variance_scaling_with_any_arguments(args, shape, n):
    value = initializers.get({"variance_scaling": args})(shape, np.random.default_rng(3))
    scale = args.get("scale", 1.0)
    assert value.std() == pytest.approx(math.sqrt(scale / n), rel=0.02)
    distribution = args.get("distribution", "truncated_normal")
    if distribution == "uniform":
        assert np.abs(value).max() <= math.sqrt(3 * scale / n)
    elif distribution == "truncated_normal":
        assert np.abs(value).max() <= 2 * math.sqrt(scale / n) / TRUNC
    else:  # untruncated: draws beyond 2 standard deviations are kept
        assert np.abs(value).max() > 3 * math.sqrt(scale / n)


def test_random_defaults():
    rng = np.random.default_rng(4)
    normal = initializers.get("random_normal")((300, 300), rng)
    assert normal.std() == pytest.approx(0.05, rel=0.02)
    uniform = initializers.get("random_uniform")((300, 300), rng)
    assert uniform.min() >= -0.05 and uniform.max() < 0.05
    assert uniform.std() == pytest.approx(0.1 / math.sqrt(12), rel=0.02)
    trunc = initializers.get("truncated_normal")((300, 300), rng)
    assert np.abs(trunc).max() <= 0.1
    assert trunc.std() == pytest.approx(0.05 * TRUNC, rel=0.02)


def test_dict_specs_with_arguments():
    rng = np.random.default_rng(5)
    normal = initializers.get({"random_normal": {"mean": 1.0, "stddev": 0.5}})((300, 300), rng)
    assert normal.mean() == pytest.approx(1.0, abs=0.01)
    assert normal.std() == pytest.approx(0.5, rel=0.02)
    uniform = initializers.get({"random_uniform": {"minval": 2.0, "maxval": 3.0}})((50, 50), rng)
    assert uniform.min() >= 2.0 and uniform.max() < 3.0
    trunc = initializers.get({"truncated_normal": {"mean": -1.0, "stddev": 0.1}})((100, 100), rng)
    assert np.abs(trunc + 1.0).max() <= 0.2
    const = initializers.get({"constant": {"value": 3.5}})((2, 3), rng)
    np.testing.assert_array_equal(const, np.full((2, 3), 3.5))
    ortho = initializers.get({"orthogonal": {"gain": 2.0}})((6, 4), rng)
    np.testing.assert_allclose(ortho.T @ ortho, 4.0 * np.eye(4), atol=1e-12)
    # A dict without arguments, or with None, means the defaults.
    assert initializers.get({"he_normal": {}}) is initializers.he_normal
    assert initializers.get({"zeros": None}) is initializers.zeros


def test_bad_specs():
    with pytest.raises(KeyError):
        initializers.get("glorot_uniformm")
    with pytest.raises(TypeError, match="stddev"):
        initializers.get({"random_normal": {"std": 1.0}})
    with pytest.raises(TypeError):
        initializers.get({"he_normal": {"scale": 2.0}})
    with pytest.raises(TypeError):
        initializers.get({"zeros": {}, "ones": {}})
    with pytest.raises(ValueError):
        initializers.get("orthogonal")((5,), np.random.default_rng(0))


def test_arguments_lists_keras_defaults():
    assert initializers.arguments("random_normal") == {"mean": 0.0, "stddev": 0.05}
    assert initializers.arguments("random_uniform") == {"minval": -0.05, "maxval": 0.05}
    assert initializers.arguments("orthogonal") == {"gain": 1.0}
    assert initializers.arguments("glorot_uniform") == {}


def test_zeros_ones_constant():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(initializers.get("zeros")((2, 3), rng), np.zeros((2, 3)))
    np.testing.assert_array_equal(initializers.get("ones")((4,), rng), np.ones(4))
    np.testing.assert_array_equal(initializers.get("constant")((2,), rng), np.zeros(2))


@pytest.mark.parametrize("shape", [(8, 5), (5, 8), (6, 6), (3, 3, 4, 8), (2, 2, 4, 32)])
def test_orthogonal(shape):
    value = initializers.get("orthogonal")(shape, np.random.default_rng(6))
    assert value.shape == shape
    flat = value.reshape(-1, shape[-1])
    rows, cols = flat.shape
    if rows >= cols:
        np.testing.assert_allclose(flat.T @ flat, np.eye(cols), atol=1e-12)  # Q^T Q = I
    else:
        np.testing.assert_allclose(flat @ flat.T, np.eye(rows), atol=1e-12)


def test_orthogonal_sign_correction_makes_r_diagonal_positive():
    # With Q sign-corrected by diag(R), the QR of the result has a positive diagonal.
    value = initializers.get("orthogonal")((7, 7), np.random.default_rng(9))
    draws = np.random.default_rng(9).standard_normal((7, 7))
    # value = Q·sign(diag R) is the Q of the unique QR of ``draws`` with positive diag(R).
    r = value.T @ draws
    assert np.all(np.diag(r) > 0)
    np.testing.assert_allclose(np.tril(r, -1), 0.0, atol=1e-12)
