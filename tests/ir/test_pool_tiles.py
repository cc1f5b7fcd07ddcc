"""Tiled pooling (kernel == stride) in both memory orders, with ties, against naive loops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgefw.ir.primitives import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from edgefw.ir.primitives.windows import batch_minor, from_batch_minor


def naive_first_max(x, kh, kw):
    """Max of each tile and the row-major index of its first maximum."""
    n, c, h, w = x.shape
    ho, wo = h // kh, w // kw
    y = np.zeros((n, c, ho, wo))
    taps = np.zeros((n, c, ho, wo), int)
    for a, b, p, q in itertools.product(range(n), range(c), range(ho), range(wo)):
        window = x[a, b, p * kh:(p + 1) * kh, q * kw:(q + 1) * kw].ravel()
        y[a, b, p, q] = window.max()
        taps[a, b, p, q] = int(np.argmax(window))  # argmax returns the first maximum
    return y, taps


def stored(x, minor):
    return from_batch_minor(np.ascontiguousarray(batch_minor(x))) if minor else x


@pytest.mark.parametrize("kernel", [(2, 2), (3, 2), (2, 3), (3, 3), (1, 2), (2, 1)], ids=str)
@pytest.mark.parametrize("minor", [False, True], ids=["nchw", "batch_minor"])
def test_max_pool_tiles_pick_the_first_maximum_in_both_layouts(kernel, minor):
    kh, kw = kernel
    rng = np.random.default_rng(kh * 10 + kw)
    x = stored(rng.integers(0, 3, (3, 2, 7, 8)).astype(np.float64), minor)  # many ties
    y, taps = max_pool2d(x, kernel, kernel, return_indices=True)
    expected_y, expected_taps = naive_first_max(np.asarray(x), kh, kw)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(taps, expected_taps)
    np.testing.assert_array_equal(max_pool2d(x, kernel, kernel), expected_y)
    assert batch_minor(y).flags.c_contiguous == minor  # the layout is handed on

    dy = rng.standard_normal(y.shape)
    dx = max_pool2d_backward(dy, taps, x.shape, kernel, kernel)
    expected_dx = np.zeros(x.shape)
    for a, b, p, q in itertools.product(*map(range, y.shape)):
        i, j = divmod(expected_taps[a, b, p, q], kw)
        expected_dx[a, b, p * kh + i, q * kw + j] += dy[a, b, p, q]
    np.testing.assert_array_equal(dx, expected_dx)
    assert batch_minor(dx).flags.c_contiguous == minor


@pytest.mark.parametrize("minor", [False, True], ids=["nchw", "batch_minor"])
def test_avg_pool_tiles_in_both_layouts(minor):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 7, 9))
    xin = stored(x, minor)
    y = avg_pool2d(xin, (2, 3), (2, 3))
    expected = x[:, :, :6, :9].reshape(3, 2, 3, 2, 3, 3).mean(axis=(3, 5))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    dy = stored(rng.standard_normal(y.shape), minor)
    dx = avg_pool2d_backward(dy, x.shape, (2, 3), (2, 3))
    assert float(np.sum(dx * x)) == pytest.approx(float(np.sum(np.asarray(dy) * y)), rel=1e-12)
    assert not dx[:, :, 6:].any()  # the row no window covers gets no gradient


def test_nan_propagates_through_tiles():
    x = np.zeros((2, 1, 4, 4), np.float32)
    x[1, 0, 2, 3] = np.nan
    y, _ = max_pool2d(stored(x, True), (2, 2), (2, 2), return_indices=True)
    assert np.isnan(y[1, 0, 1, 1]) and not np.isnan(np.delete(y.ravel(), 7)).any()


@pytest.mark.parametrize("kernel", [(2, 2), (3, 2)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_bound_tile_max_fills_the_output_in_the_input_order(kernel, dtype):
    from edgefw.ir.primitives.pool import pool_shape
    from edgefw.ir.primitives.pool_tiles import bind_tile_max

    rng = np.random.default_rng(6)
    x = rng.integers(-100, 100, (3, 4, 7, 8)).astype(dtype)
    s = pool_shape("t", x.shape, kernel, kernel, (0, 0, 0, 0), (1, 1), False)
    out = np.empty((3, 4, *s.out_hw), dtype)
    run = bind_tile_max(s, np.dtype(dtype), out)
    expected, _ = naive_first_max(x.astype(np.float64), *kernel)
    for minor in (False, True, False):  # the same kernel sees both orders
        y = run(stored(x, minor))
        assert np.shares_memory(y, out) and y.dtype == dtype
        assert batch_minor(y).flags.c_contiguous == minor
        np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(bind_tile_max(s, np.dtype(dtype))(x), expected)
