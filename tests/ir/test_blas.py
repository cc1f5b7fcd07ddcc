"""BLAS thread control and the shared matrix products."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw.ir.primitives as primitives
from edgefw.errors import ConfigError
from edgefw.ir.primitives import blas
from edgefw.ir.primitives.elementwise import clamp, relu


def test_thread_count_round_trips_and_rejects_nonsense():
    before = primitives.get_num_threads()
    try:
        primitives.set_num_threads(1)
        assert primitives.get_num_threads() == 1
        info = blas.blas_info()
        assert info["threads"] == 1
        if info["library"] is not None:  # numpy's OpenBLAS was found: it obeys
            assert blas._openblas().get_threads() == 1
    finally:
        primitives.set_num_threads(before)
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="set_num_threads"):
            primitives.set_num_threads(bad)


@pytest.mark.parametrize("shape", [(3, 4, 5), (64, 96, 80), (300, 300, 300), (2, 7, 40, 9),
                                   (16, 17, 50000), (50000, 17, 16)])  # skinny: in pieces
def test_matmul_matches_numpy_in_every_size_regime(shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape[:-1]).astype(np.float32)
    b = rng.standard_normal((shape[-2], shape[-1]) if len(shape) == 3
                            else (shape[0], shape[2], shape[3])).astype(np.float32)
    before = primitives.get_num_threads()
    try:
        for threads in (1, 2):
            primitives.set_num_threads(threads)
            np.testing.assert_allclose(blas.matmul(a, b), a @ b, rtol=1e-5, atol=1e-4)
            out = np.empty(np.broadcast_shapes(a.shape[:-1] + (1,), b.shape[:-2] + (1, 1))[:-1]
                           + (b.shape[-1],), np.float32)
            assert blas.matmul(a, b, out=out) is out
    finally:
        primitives.set_num_threads(before)


@pytest.mark.parametrize("rows, cols, depth", [(6, 26, 25088), (16, 151, 3200), (2, 3, 100)])
def test_matmul_nt_in_chunks_and_whole(rows, cols, depth):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, rows, depth))
    b = rng.standard_normal((1, cols, depth))
    np.testing.assert_allclose(blas.matmul_nt(a, b), a @ b.transpose(0, 2, 1), rtol=1e-10)


def test_clamp_and_relu_match_maximum_and_minimum():
    x = np.array([-3.0, -0.0, 0.5, 7.0, np.nan, np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(relu(x), np.maximum(x, 0))
    np.testing.assert_array_equal(clamp(x, 0, 6), np.minimum(np.maximum(x, 0), 6))
    np.testing.assert_array_equal(clamp(x, None, 1), np.minimum(x, 1))
    assert relu(x).dtype == clamp(x, -1, 1).dtype == np.float32
    y = x.copy()
    assert clamp(y, 0, 6, out=y) is y


@pytest.mark.parametrize("a_shape, b_shape", [((8, 2000), (2000, 1200)),  # split by columns
                                              ((6, 50, 300), (300, 200))])  # stacked rows
def test_big_products_split_between_threads_match_numpy(a_shape, b_shape):
    rng = np.random.default_rng(2)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    assert a.size * b.shape[-1] >= blas.PARALLEL_MIN_MACS
    before = primitives.get_num_threads()
    try:
        primitives.set_num_threads(2)
        np.testing.assert_allclose(blas.matmul(a, b), a @ b, rtol=1e-4, atol=1e-3)
    finally:
        primitives.set_num_threads(before)


def test_run_split_runs_every_task_and_reraises_the_first_error():
    from edgefw.ir.primitives.parallel import run_split

    seen = []
    run_split([lambda i=i: seen.append(i) for i in range(7)], workers=3)
    assert sorted(seen) == list(range(7))

    def fail():
        raise ValueError("task failed")

    with pytest.raises(ValueError, match="task failed"):
        run_split([lambda: None, fail, lambda: None], workers=2)
    run_split([lambda: seen.append("after")], workers=2)  # the pool still works
    assert seen[-1] == "after"
