"""The convolution plan's layouts and shortcuts against naive loops: batch-minor inputs and
outputs, full-width vs exact columns, chunking, kept columns, the row-folded input gradient,
and the runtime kernel's prebuilt plan."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from edgefw.errors import ShapeError
from edgefw.ir.primitives import (
    blas,
    conv,
    conv_gradients,
    conv_plan,
    elementwise,
    parallel,
    pool_tiles,
    windows,
)
from edgefw.ir.primitives.conv import (
    ConvPlan,
    conv2d,
    conv2d_backward,
    conv2d_with_columns,
    conv_geometry,
)
from edgefw.ir.primitives.windows import batch_minor, from_batch_minor, release_scratch
from tests.helpers import naive_conv


def stored_batch_minor(x: np.ndarray) -> np.ndarray:
    """The same values as ``x``, stored (C, H, W, N) like conv2d's results."""
    return from_batch_minor(np.ascontiguousarray(batch_minor(x)))


CASES = [
    # (C_in, C_out, group), kernel, strides, pads, dilations
    ((3, 4, 1), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((1, 6, 1), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
    ((4, 6, 2), (3, 2), (1, 1), (2, 0, 1, 1), (2, 1)),
    ((4, 4, 4), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((3, 6, 3), (3, 3), (1, 1), (0, 1, 2, 1), (1, 2)),
    ((4, 8, 1), (1, 1), (2, 1), (0, 0, 0, 0), (1, 1)),
    ((2, 4, 1), (2, 3), (3, 2), (1, 0, 0, 2), (1, 1)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("batch", [1, 3, 9])  # full-width columns at batch 1, exact beyond
@pytest.mark.parametrize("minor_input", [False, True])
def test_forward_and_gradients_in_every_layout(case, batch, minor_input):
    (c_in, c_out, group), kernel, strides, pads, dilations = case
    rng = np.random.default_rng(hash((case, batch)) % 2**32)
    x = rng.standard_normal((batch, c_in, 7, 6))
    w = rng.standard_normal((c_out, c_in // group, *kernel))
    b = rng.standard_normal(c_out)
    args = dict(strides=strides, pads=pads, dilations=dilations, group=group)
    xin = stored_batch_minor(x) if minor_input else x

    y = conv2d(xin, w, b, **args)
    np.testing.assert_allclose(y, naive_conv(x, w, b, strides, pads, dilations, group),
                               rtol=1e-12, atol=1e-12)
    assert batch_minor(y).flags.c_contiguous  # handed on batch-minor

    dy = rng.standard_normal(y.shape)
    dy_in = stored_batch_minor(dy) if minor_input else dy
    dx, dw, db = conv2d_backward(dy_in, xin, w, **args, need_db=True)
    # Adjoint identities: <conv(x), dy> = <x, dx> = <w, dw>; db sums dy.
    without_bias = float(np.sum(conv2d(x, w, **args) * dy))
    assert float(np.sum(x * dx)) == pytest.approx(without_bias, rel=1e-10)
    assert float(np.sum(w * dw)) == pytest.approx(without_bias, rel=1e-10)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-12)

    y_kept, columns = conv2d_with_columns(xin, w, b, **args)
    np.testing.assert_array_equal(y_kept, y)
    _, dw_kept = conv2d_backward(dy_in, xin, w, **args, need_dx=False, columns=columns)
    np.testing.assert_allclose(dw_kept, dw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("budget_columns", [40, 200])  # part of one row / several rows
def test_chunked_forward_and_backward_match_unchunked(monkeypatch, budget_columns):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3, 12, 11)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((5, 4, 12, 11)).astype(np.float32)
    args = dict(pads=(1, 1, 1, 1))
    release_scratch()
    y_whole = conv2d(x, w, **args)
    dx_whole, dw_whole = conv2d_backward(dy, x, w, **args)
    # Tiny budgets: several chunks, each GEMM in pieces, one output row per backward chunk.
    monkeypatch.setattr(conv_plan, "CHUNK_BYTES", 0)
    monkeypatch.setattr(conv_plan, "MIN_CHUNK_COLUMNS", budget_columns)
    monkeypatch.setattr(conv_plan, "SMALL_GEMM_MACS", 4 * 28 * 16)
    monkeypatch.setattr(conv_plan, "MIN_GEMM_PIECE", 8)
    monkeypatch.setattr(conv_gradients, "BACKWARD_COLUMN_BYTES", 64)
    release_scratch()
    plan = conv.conv_plan("conv2d", x, w, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    assert len(plan._chunks) > 1 and any(len(c.pieces) > 1 for c in plan._chunks)
    assert len(conv_gradients._backward_chunks(plan)) == 12
    np.testing.assert_allclose(conv2d(x, w, **args), y_whole, rtol=1e-5, atol=1e-5)
    dx, dw = conv2d_backward(dy, x, w, **args)
    np.testing.assert_allclose(dx, dx_whole, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, dw_whole, rtol=1e-4, atol=1e-4)
    y_kept, columns = conv2d_with_columns(x, w, **args)
    np.testing.assert_allclose(y_kept, y_whole, rtol=1e-5, atol=1e-5)
    _, dw_kept = conv2d_backward(dy, x, w, **args, need_dx=False, columns=columns)
    np.testing.assert_allclose(dw_kept, dw_whole, rtol=1e-4, atol=1e-4)
    release_scratch()


def test_results_are_fresh_arrays_and_dtypes_kept():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    first = conv2d(x, w)
    kept = first.copy()
    second = conv2d(x * 2, w)
    assert first.dtype == second.dtype == np.float32
    np.testing.assert_array_equal(first, kept)  # not overwritten through a shared buffer
    dx, dw = conv2d_backward(first, x, w)
    assert dx.dtype == dw.dtype == np.float32


def test_columns_from_another_input_are_refused():
    x = np.ones((16, 1, 9, 9))
    w = np.ones((2, 1, 3, 3))
    _, columns = conv2d_with_columns(x, w)
    with pytest.raises(ShapeError, match="columns"):
        conv2d_backward(np.ones((16, 2, 7, 7)), x, w, columns=columns[:, :, :-1])


def test_plan_writes_batch_one_results_into_a_given_buffer():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    plan = ConvPlan(conv_geometry("t", x.shape, x.dtype, w.shape, (1, 1), (1, 1, 1, 1), (1, 1),
                                  1), x.dtype)
    assert plan.full_width
    out = np.empty((1, 4, 8, 8), np.float32)
    y = plan.forward(x, plan.prepare_weights(w, b), out)
    assert np.shares_memory(y, out)
    np.testing.assert_allclose(out, naive_conv(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1),
                               rtol=1e-5, atol=1e-5)


def test_doctests_of_the_new_modules():
    for module in (windows, conv_plan, conv_gradients, blas, pool_tiles, elementwise, parallel):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


@pytest.mark.parametrize("batch, pads, group", [(1, (1, 1, 1, 1), 1), (6, (1, 1, 1, 1), 1),
                                                (1, (0, 0, 0, 0), 3), (2, (0, 0, 0, 0), 1),
                                                (64, (1, 1, 1, 1), 3)])  # direct depthwise
@pytest.mark.parametrize("clamp", [None, (0.0, None), (0.0, 0.5)])
@pytest.mark.parametrize("chunked", [False, True])
def test_bound_forward_matches_conv2d_and_clamps(monkeypatch, batch, pads, group, clamp,
                                                 chunked):
    if chunked:  # several chunks: the clamp is applied chunk by chunk
        monkeypatch.setattr(conv_plan, "CHUNK_BYTES", 0)
        monkeypatch.setattr(conv_plan, "MIN_CHUNK_COLUMNS", 40)
        monkeypatch.setattr(conv_plan, "DIRECT_DEPTHWISE_BAND", 64)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((batch, 3, 9, 8)).astype(np.float32)
    kernel = (1, 1) if pads == (0, 0, 0, 0) and group == 1 else (3, 3)
    out_channels = 3 if batch == 64 else 6
    w = rng.standard_normal((out_channels, 3 // group, *kernel)).astype(np.float32)
    b = rng.standard_normal(out_channels).astype(np.float32)
    plan = ConvPlan(conv_geometry("t", x.shape, x.dtype, w.shape, (1, 1), pads, (1, 1), group),
                    x.dtype)
    g = plan.geometry
    assert plan.direct_depthwise == (batch == 64)
    out = from_batch_minor(np.empty((out_channels, *g.out_hw, batch), np.float32))
    run = plan.bind(plan.prepare_weights(w, b), out, clamp)
    expected = conv2d(x, w, b, pads=pads, group=group)
    if clamp is not None:
        expected = np.clip(expected, clamp[0], np.inf if clamp[1] is None else clamp[1])
    for _ in range(2):  # buffers reused across calls
        y = run(x)
        assert np.shares_memory(y, out)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strides, pads, dilations", [((1, 1), (1, 1, 1, 1), (1, 1)),
                                                      ((2, 2), (1, 0, 1, 2), (1, 1)),
                                                      ((1, 1), (2, 2, 2, 2), (2, 2))])
def test_direct_depthwise_on_long_rows_matches_naive(strides, pads, dilations):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((64, 4, 9, 18))
    w = rng.standard_normal((4, 1, 3, 3))
    b = rng.standard_normal(4)
    args = dict(strides=strides, pads=pads, dilations=dilations, group=4)
    plan = conv.conv_plan("conv2d", x, w, strides, pads, dilations, 4)
    assert plan.direct_depthwise  # out_w * N >= DIRECT_DEPTHWISE_MIN_RUN
    y = conv2d(stored_batch_minor(x), w, b, **args)
    np.testing.assert_allclose(y, naive_conv(x, w, b, strides, pads, dilations, 4),
                               rtol=1e-10, atol=1e-10)
    y_train, columns = conv2d_with_columns(x, w, b, **args)  # training: no columns kept
    np.testing.assert_array_equal(y_train, y)
    dy = rng.standard_normal(y.shape)
    _, dw = conv2d_backward(dy, x, w, **args, columns=columns)
    assert float(np.sum(w * dw)) == pytest.approx(float(np.sum(conv2d(x, w, **args) * dy)))
