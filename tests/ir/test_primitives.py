"""Convolution and pooling primitives against naive loops, adjoints, finite differences and
onnxruntime.

Run as a script (``python tests/ir/test_primitives.py``) to print a timing of the LeNet and
depthwise shapes; that part is not a test.
"""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest

from edgefw.errors import DTypeError, ShapeError
from edgefw.ir import primitives
from edgefw.ir.primitives import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    conv_output_hw,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_onnx_indices,
    same_pads,
)
from edgefw.ir.primitives import conv as conv_module
from edgefw.ir.primitives import pool as pool_module
from tests.helpers import naive_conv


# --------------------------------------------------------------------------- references
def window_positions(out_index, stride, pad_begin, kernel, dilation):
    """Input coordinates (possibly outside the input) of one window along one axis."""
    return [out_index * stride - pad_begin + k * dilation for k in range(kernel)]


def naive_pool(x, kind, kernel_hw, strides, pads, dilations=(1, 1), ceil_mode=False,
               count_include_pad=False):
    n, c, h, w = x.shape
    ho, wo = conv_output_hw((h, w), kernel_hw, strides, pads, dilations, ceil_mode)
    y = np.zeros((n, c, ho, wo), x.dtype)
    for p, q in itertools.product(range(ho), range(wo)):
        rows = window_positions(p, strides[0], pads[0], kernel_hw[0], dilations[0])
        cols = window_positions(q, strides[1], pads[1], kernel_hw[1], dilations[1])
        inside = [(r, s) for r in rows for s in cols if 0 <= r < h and 0 <= s < w]
        values = np.stack([x[:, :, r, s] for r, s in inside], axis=-1)
        if kind == "max":
            y[:, :, p, q] = values.max(axis=-1)
        else:
            if count_include_pad:  # positions inside the padded input, not the ceil overhang
                rows_in = [r for r in rows if -pads[0] <= r < h + pads[2]]
                cols_in = [s for s in cols if -pads[1] <= s < w + pads[3]]
                count = len(rows_in) * len(cols_in)
            else:
                count = len(inside)
            y[:, :, p, q] = values.sum(axis=-1) / count
    return y


def naive_adaptive_avg(x, out_hw):
    n, c, h, w = x.shape
    y = np.zeros((n, c, *out_hw))
    for p, q in itertools.product(range(out_hw[0]), range(out_hw[1])):
        r0, r1 = (p * h) // out_hw[0], -(-((p + 1) * h) // out_hw[0])
        c0, c1 = (q * w) // out_hw[1], -(-((q + 1) * w) // out_hw[1])
        y[:, :, p, q] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def assert_adjoint(forward, backward, x_shape, y_shape, rng, rtol=1e-10):
    """<forward(x), dy> == <x, backward(dy)> for a linear map (float64)."""
    x = rng.standard_normal(x_shape)
    dy = rng.standard_normal(y_shape)
    lhs = float(np.sum(forward(x) * dy))
    rhs = float(np.sum(x * backward(dy)))
    assert lhs == pytest.approx(rhs, rel=rtol, abs=1e-10)


def finite_difference(f, x, eps=1e-6):
    """Central differences of the scalar f at every element of x (float64)."""
    grad = np.zeros_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = f(x)
        flat[i] = orig - eps
        minus = f(x)
        flat[i] = orig
        out[i] = (plus - minus) / (2 * eps)
    return grad


# (C_in, C_out, group): plain, grouped, depthwise, depthwise with multiplier 2, single channel
CONV_GROUPS = [(3, 4, 1), (4, 6, 2), (4, 4, 4), (3, 6, 3), (1, 3, 1)]
CONV_GEOMETRY = [
    # kernel, strides, pads (top, left, bottom, right), dilations
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((3, 3), (2, 2), (0, 1, 2, 1), (1, 1)),
    ((2, 3), (1, 2), (2, 0, 1, 1), (2, 1)),
    ((3, 3), (2, 1), (2, 2, 2, 2), (2, 2)),
    ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),
    ((1, 1), (1, 1), (1, 0, 0, 1), (1, 1)),
    ((5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
    ((4, 2), (3, 1), (0, 0, 0, 0), (1, 3)),
]


def conv_case_id(val):
    return "x".join(map(str, val)) if isinstance(val, tuple) else None


# --------------------------------------------------------------------------- conv
@pytest.mark.parametrize("channels", CONV_GROUPS, ids=conv_case_id)
@pytest.mark.parametrize("geometry", CONV_GEOMETRY, ids=lambda g: "k{}s{}p{}d{}".format(*[
    "".join(map(str, t)) for t in g]))
def test_conv2d_matches_naive_loops_and_adjoint(channels, geometry):
    c_in, c_out, group = channels
    kernel, strides, pads, dilations = geometry
    rng = np.random.default_rng(hash((channels, geometry)) % 2**32)
    x = rng.standard_normal((2, c_in, 7, 6))
    w = rng.standard_normal((c_out, c_in // group, *kernel))
    b = rng.standard_normal(c_out)
    args = dict(strides=strides, pads=pads, dilations=dilations, group=group)

    y = conv2d(x, w, b, **args)
    np.testing.assert_allclose(y, naive_conv(x, w, b, strides, pads, dilations, group),
                               rtol=1e-12, atol=1e-12)

    y_shape = y.shape
    assert_adjoint(lambda v: conv2d(v, w, **args),
                   lambda dy: conv2d_backward(dy, x, w, **args, need_dw=False)[0],
                   x.shape, y_shape, rng)
    assert_adjoint(lambda v: conv2d(x, v, **args),
                   lambda dy: conv2d_backward(dy, x, w, **args, need_dx=False)[1],
                   w.shape, y_shape, rng)


@pytest.mark.parametrize("channels", [(2, 4, 1), (2, 4, 2), (3, 6, 3)], ids=conv_case_id)
def test_conv2d_backward_matches_finite_differences(channels):
    c_in, c_out, group = channels
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, c_in, 5, 6))
    w = rng.standard_normal((c_out, c_in // group, 3, 2))
    args = dict(strides=(2, 1), pads=(1, 0, 2, 1), dilations=(1, 2), group=group)
    weights = rng.standard_normal(conv2d(x, w, **args).shape)

    def loss(xv, wv):
        return float(np.sum(conv2d(xv, wv, **args) * weights))

    dx, dw = conv2d_backward(weights, x, w, **args)
    np.testing.assert_allclose(dx, finite_difference(lambda v: loss(v, w), x.copy()),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, finite_difference(lambda v: loss(x, v), w.copy()),
                               rtol=1e-6, atol=1e-8)
    none_dx, only_dw = conv2d_backward(weights, x, w, **args, need_dx=False)
    assert none_dx is None and np.array_equal(only_dw, dw)


def test_conv2d_on_batches_large_enough_for_chunked_weight_gradient():
    """LeNet's first conv at batch 16: the weight gradient sums K-chunks (matmul_nt)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 1, 28, 28))
    w = rng.standard_normal((6, 1, 5, 5))
    dy = rng.standard_normal((16, 6, 28, 28))
    _, dw = conv2d_backward(dy, x, w, pads=(2, 2, 2, 2), need_dx=False)
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    expected = np.zeros_like(w)
    for i, j in itertools.product(range(5), range(5)):
        expected[:, 0, i, j] = np.einsum("nopq,npq->o", dy, xp[:, 0, i:i + 28, j:j + 28])
    np.testing.assert_allclose(dw, expected, rtol=1e-10, atol=1e-10)


def test_conv2d_keeps_float32_and_matches_float64():
    rng = np.random.default_rng(0)
    # im2col + GEMM, depthwise, 1x1 matmul
    for c_in, c_out, group, kernel, pads in [(6, 16, 1, 3, (0,) * 4), (8, 8, 8, 3, (1,) * 4),
                                             (8, 16, 1, 1, (0,) * 4)]:
        x = rng.standard_normal((4, c_in, 9, 9)).astype(np.float32)
        w = rng.standard_normal((c_out, c_in // group, kernel, kernel)).astype(np.float32)
        b = rng.standard_normal(c_out).astype(np.float32)
        y = conv2d(x, w, b, pads=pads, group=group)
        assert y.dtype == np.float32
        ref = conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                     pads=pads, group=group)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
        dx, dw = conv2d_backward(np.ones_like(y), x, w, pads=pads, group=group)
        assert dx.dtype == np.float32 and dw.dtype == np.float32
        assert dx.shape == x.shape and dw.shape == w.shape


def test_conv2d_results_do_not_alias_scratch_memory():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    first = conv2d(x, w, pads=(1, 1, 1, 1))
    kept = first.copy()
    dx, dw = conv2d_backward(first, x, w, pads=(1, 1, 1, 1))
    dx_kept, dw_kept = dx.copy(), dw.copy()
    conv2d(x * 2, w, pads=(1, 1, 1, 1))
    conv2d_backward(first * 3, x * 2, w, pads=(1, 1, 1, 1))
    assert np.array_equal(first, kept)
    assert np.array_equal(dx, dx_kept) and np.array_equal(dw, dw_kept)


def test_conv_output_hw_and_ceil_mode_rule():
    assert conv_output_hw((28, 28), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1)) == (28, 28)
    assert conv_output_hw((14, 14), (5, 5), (1, 1), (0, 0, 0, 0), (1, 1)) == (10, 10)
    assert conv_output_hw((7, 7), (3, 3), (2, 2), (0, 0, 0, 0), (2, 2)) == (2, 2)
    assert conv_output_hw((5, 6), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), ceil_mode=True) == (3, 3)
    # 4 rows + 1 bottom pad, k=2 s=2: a third window would start in the bottom padding.
    assert conv_output_hw((4, 4), (2, 2), (2, 2), (0, 0, 1, 1), (1, 1), ceil_mode=True) == (2, 2)
    assert conv_output_hw((4, 4), (2, 2), (2, 2), (1, 1, 1, 1), (1, 1), ceil_mode=True) == (3, 3)


@pytest.mark.parametrize("upper", [True, False])
def test_same_pads(upper):
    assert same_pads((28, 28), (5, 5), (1, 1), (1, 1), upper) == (2, 2, 2, 2)
    big, small = (1, 0) if not upper else (0, 1)
    assert same_pads((28, 27), (3, 3), (2, 2), (1, 1), upper) == (big, 1, small, 1)
    # width: ceil(7/3) = 3 outputs need (3-1)*3 + 2 = 8 columns, one more than the input
    assert same_pads((7, 7), (3, 2), (1, 3), (2, 1), upper) == (2, big, 2, small)
    for size, kernel, stride, dilation in itertools.product([5, 8], [1, 2, 3], [1, 2], [1, 2]):
        pads = same_pads((size, size), (kernel, kernel), (stride, stride), (dilation, dilation))
        out = conv_output_hw((size, size), (kernel, kernel), (stride, stride), pads,
                             (dilation, dilation))
        assert out == (-(-size // stride),) * 2


# --------------------------------------------------------------------------- pooling
POOL_CASES = [
    # kernel, strides, pads, ceil_mode
    ((2, 2), (2, 2), (0, 0, 0, 0), False),
    ((2, 2), (2, 2), (0, 0, 0, 0), True),
    ((3, 3), (2, 2), (1, 1, 1, 1), False),
    ((3, 3), (2, 2), (1, 0, 0, 1), True),
    ((3, 2), (1, 2), (2, 1, 1, 0), True),
    ((2, 3), (3, 2), (0, 0, 1, 2), False),
    ((3, 3), (1, 1), (1, 1, 1, 1), False),
    ((2, 2), (3, 3), (0, 0, 1, 1), True),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("size", [(7, 7), (8, 6)], ids=str)
def test_max_pool2d_matches_naive_and_finite_differences(case, size):
    kernel, strides, pads, ceil_mode = case
    rng = np.random.default_rng(11)
    x = rng.permutation(2 * 3 * size[0] * size[1]).reshape(2, 3, *size) / 7.0  # no ties
    args = dict(kernel_hw=kernel, strides=strides, pads=pads, ceil_mode=ceil_mode)
    y, taps = max_pool2d(x, **args, return_indices=True)
    np.testing.assert_array_equal(y, naive_pool(x, "max", kernel, strides, pads,
                                                ceil_mode=ceil_mode))
    np.testing.assert_array_equal(max_pool2d(x, **args), y)

    weights = rng.standard_normal(y.shape)
    dx = max_pool2d_backward(weights, taps, x.shape, **args)
    numeric = finite_difference(lambda v: float(np.sum(max_pool2d(v, **args) * weights)),
                                x.copy(), eps=1e-3)
    np.testing.assert_allclose(dx, numeric, rtol=1e-8, atol=1e-8)


def test_max_pool2d_dilation_and_integer_input():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 9, 8))
    args = dict(kernel_hw=(3, 2), strides=(2, 1), pads=(2, 1, 1, 1), dilations=(2, 3))
    y, taps = max_pool2d(x, **args, return_indices=True)
    np.testing.assert_array_equal(
        y, naive_pool(x, "max", (3, 2), (2, 1), (2, 1, 1, 1), dilations=(2, 3)))
    dx = max_pool2d_backward(np.ones_like(y), taps, x.shape, **args)
    assert dx.sum() == y.size and set(np.unique(x[dx > 0])) <= set(np.unique(y))

    ints = rng.integers(-128, 127, (1, 2, 5, 5), dtype=np.int8)
    y8 = max_pool2d(ints, (3, 3), (2, 2), pads=(1, 1, 1, 1))
    assert y8.dtype == np.int8  # padding is int8's minimum, never a spurious 0
    np.testing.assert_array_equal(y8, naive_pool(ints, "max", (3, 3), (2, 2), (1, 1, 1, 1)))


def test_max_pool2d_propagates_nan():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    for args in [((2, 2), (2, 2)), ((3, 3), (1, 1))]:
        y = max_pool2d(x, *args)
        assert np.isnan(y[0, 0, 0, 0])
        y_idx, _ = max_pool2d(x, *args, return_indices=True)
        np.testing.assert_array_equal(y_idx, y)


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool2d_matches_naive_and_adjoint(case, count_include_pad):
    kernel, strides, pads, ceil_mode = case
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 8))
    args = dict(kernel_hw=kernel, strides=strides, pads=pads, ceil_mode=ceil_mode,
                count_include_pad=count_include_pad)
    y = avg_pool2d(x, **args)
    np.testing.assert_allclose(y, naive_pool(x, "avg", kernel, strides, pads, ceil_mode=ceil_mode,
                                             count_include_pad=count_include_pad), rtol=1e-12)
    assert_adjoint(lambda v: avg_pool2d(v, **args),
                   lambda dy: avg_pool2d_backward(dy, x.shape, **args), x.shape, y.shape, rng)


def test_global_and_adaptive_avg_pool():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 7, 5))
    y = global_avg_pool2d(x)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3)).reshape(2, 3, 1, 1), rtol=1e-12)
    assert_adjoint(global_avg_pool2d, lambda dy: global_avg_pool2d_backward(dy, x.shape),
                   x.shape, y.shape, rng)
    for out_hw in [(1, 1), (3, 2), (7, 5), (4, 4), (2, 9)]:
        np.testing.assert_allclose(adaptive_avg_pool2d(x, out_hw), naive_adaptive_avg(x, out_hw),
                                   rtol=1e-12, atol=1e-14)
        assert_adjoint(lambda v, o=out_hw: adaptive_avg_pool2d(v, o),
                       lambda dy: adaptive_avg_pool2d_backward(dy, x.shape),
                       x.shape, (2, 3, *out_hw), rng)


def test_pooling_keeps_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    for args in [((2, 2), (2, 2)), ((3, 3), (2, 2), (1, 1, 1, 1))]:
        y, taps = max_pool2d(x, *args, return_indices=True)
        assert y.dtype == np.float32
        assert max_pool2d_backward(np.ones_like(y), taps, x.shape, *args).dtype == np.float32
        y = avg_pool2d(x, *args)
        assert y.dtype == np.float32
        assert avg_pool2d_backward(np.ones_like(y), x.shape, *args).dtype == np.float32
    assert global_avg_pool2d(x).dtype == np.float32
    assert adaptive_avg_pool2d(x, (3, 3)).dtype == np.float32
    dy = np.ones((2, 3, 3, 3), np.float32)
    assert adaptive_avg_pool2d_backward(dy, x.shape).dtype == np.float32


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: conv2d(np.ones((1, 3, 5)), np.ones((2, 3, 3, 3))), "4-D NCHW"),
        (lambda: conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3))), "4-D OIHW"),
        (lambda: conv2d(np.ones((1, 4, 5, 5)), np.ones((2, 3, 3, 3))), "C_in=4"),
        (lambda: conv2d(np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3)), group=2), "multiple"),
        (lambda: conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), strides=(0, 1)), "strides"),
        (lambda: conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), dilations=(1, -1)),
         "dilations"),
        (lambda: conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), pads=(1, 1)), "pads"),
        (lambda: conv2d(np.ones((1, 3, 2, 5)), np.ones((2, 3, 3, 3))), "does not fit"),
        (lambda: conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), dilations=(3, 1)),
         "does not fit"),
        (lambda: conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), b=np.ones(3)), "bias"),
        (lambda: conv2d_backward(np.ones((1, 2, 3, 4)), np.ones((1, 3, 5, 5)),
                                 np.ones((2, 3, 3, 3))), "dy has shape"),
        (lambda: max_pool2d(np.ones((1, 1, 2, 2)), (3, 3), (1, 1)), "does not fit"),
        (lambda: max_pool2d(np.ones((1, 1, 4, 4)), (2, 2), (1, 1), pads=(2, 0, 0, 0)), "pads"),
        (lambda: avg_pool2d(np.ones((4, 4)), (2, 2), (1, 1)), "4-D NCHW"),
        (lambda: max_pool2d_backward(np.ones((1, 1, 3, 3)), np.zeros((1, 1, 2, 2), np.uint8),
                                     (1, 1, 4, 4), (2, 2), (2, 2)), "dy has shape"),
        (lambda: adaptive_avg_pool2d(np.ones((1, 1, 4, 4)), (0, 2)), "output_hw"),
    ],
)
def test_bad_arguments_raise_shape_error_naming_the_op(call, message):
    with pytest.raises(ShapeError, match=message) as info:
        call()
    assert str(info.value).split(":")[0] in {
        "conv2d", "conv2d_backward", "max_pool2d", "avg_pool2d", "max_pool2d_backward",
        "adaptive_avg_pool2d",
    }


def test_absurd_pads_raise_instead_of_allocating():
    with pytest.raises(ShapeError, match="GiB"):
        conv2d(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32),
               pads=(10**6,) * 4)


def test_empty_batch():
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    assert conv2d(x, w, pads=(1, 1, 1, 1)).shape == (0, 4, 8, 8)
    assert conv2d(x, w[:, :, :1, :1]).shape == (0, 4, 8, 8)
    dx, dw = conv2d_backward(np.zeros((0, 4, 6, 6), np.float32), x, w)
    assert dx.shape == x.shape and dw.shape == w.shape and not dw.any()
    y, taps = max_pool2d(x, (3, 3), (2, 2), pads=(1, 1, 1, 1), return_indices=True)
    assert y.shape == taps.shape == (0, 3, 4, 4)
    assert max_pool2d_backward(y, taps, x.shape, (3, 3), (2, 2), (1, 1, 1, 1)).shape == x.shape
    assert avg_pool2d(x, (3, 3), (2, 2), (1, 1, 1, 1)).shape == (0, 3, 4, 4)


def test_bad_dtypes_raise_dtype_error():
    with pytest.raises(DTypeError, match="conv2d"):
        conv2d(np.ones((1, 1, 3, 3), np.int32), np.ones((1, 1, 1, 1)))
    with pytest.raises(DTypeError, match="avg_pool2d"):
        avg_pool2d(np.ones((1, 1, 3, 3), np.int8), (2, 2), (1, 1))
    with pytest.raises(DTypeError, match="max_pool2d"):
        max_pool2d(np.ones((1, 1, 3, 3), bool), (2, 2), (1, 1))


def test_primitives_import_only_numpy_and_errors():
    """The runtime uses these on devices without the trainer: no autograd, nn or onnx."""
    import ast
    import sys
    from pathlib import Path

    allowed = {"numpy", "edgefw.errors", "edgefw.ir.primitives", "__future__"}
    for module in (primitives, conv_module, pool_module):
        tree = ast.parse(Path(module.__file__).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or any(
                    name == a or name.startswith(a + ".") for a in allowed
                ), f"{module.__name__} imports {name}"


def test_docstring_examples():
    for module in (primitives, conv_module, pool_module):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


# --------------------------------------------------------------------------- onnxruntime
def run_onnx_node(op_type, inputs, n_outputs=1, **attributes):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    names = [f"in{i}" for i in range(len(inputs))]
    outs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, names, outs, **attributes)
    out_types = [TensorProto.FLOAT, TensorProto.INT64][:n_outputs]
    graph = helper.make_graph(
        [node], "primitive",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
         for n, a in zip(names, inputs, strict=True)],
        [helper.make_tensor_value_info(n, t, None) for n, t in zip(outs, out_types, strict=True)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, dict(zip(names, inputs)))


@pytest.mark.parametrize(
    "c_in, c_out, group, kernel, strides, pads, dilations",
    [
        (3, 8, 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
        (4, 6, 2, (3, 2), (2, 1), (0, 1, 2, 0), (2, 1)),
        (8, 8, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
        (4, 8, 4, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2)),
        (8, 16, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
        (1, 6, 1, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
    ],
)
def test_conv2d_matches_onnxruntime(c_in, c_out, group, kernel, strides, pads, dilations):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, c_in, 11, 10)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in // group, *kernel)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    (expected,) = run_onnx_node("Conv", [x, w, b], group=group, kernel_shape=list(kernel),
                                strides=list(strides), pads=list(pads),
                                dilations=list(dilations))
    y = conv2d(x, w, b, strides=strides, pads=pads, dilations=dilations, group=group)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_same_pads_matches_onnxruntime_auto_pad(auto_pad):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 2, 9, 8)).astype(np.float32)
    w = rng.standard_normal((3, 2, 4, 3)).astype(np.float32)
    (expected,) = run_onnx_node("Conv", [x, w], auto_pad=auto_pad, strides=[2, 2])
    pads = same_pads((9, 8), (4, 3), (2, 2), (1, 1), upper=auto_pad == "SAME_UPPER")
    np.testing.assert_allclose(conv2d(x, w, strides=(2, 2), pads=pads), expected,
                               rtol=1e-4, atol=1e-4)


ORT_POOL_CASES = [
    # kernel, strides, pads, dilations, ceil_mode
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0),
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    ((3, 2), (2, 1), (1, 0, 0, 1), (1, 1), 1),
    ((3, 3), (2, 2), (1, 1, 1, 1), (2, 2), 0),
    ((2, 3), (3, 2), (1, 1, 0, 0), (1, 1), 0),
    ((2, 2), (3, 3), (0, 0, 1, 1), (1, 1), 1),  # a 4th window would start in the padding
]


@pytest.mark.parametrize("case", ORT_POOL_CASES, ids=str)
def test_max_pool2d_and_indices_match_onnxruntime(case):
    kernel, strides, pads, dilations, ceil_mode = case
    x = np.random.default_rng(10).permutation(2 * 3 * 9 * 11).reshape(2, 3, 9, 11)
    x = x.astype(np.float32)
    expected, expected_indices = run_onnx_node(
        "MaxPool", [x], n_outputs=2, kernel_shape=list(kernel), strides=list(strides),
        pads=list(pads), dilations=list(dilations), ceil_mode=ceil_mode)
    args = dict(kernel_hw=kernel, strides=strides, pads=pads, dilations=dilations,
                ceil_mode=bool(ceil_mode))
    y, taps = max_pool2d(x, **args, return_indices=True)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(max_pool2d_onnx_indices(taps, x.shape, **args),
                                  expected_indices)


@pytest.mark.parametrize("case", [c for c in ORT_POOL_CASES if c[3] == (1, 1)], ids=str)
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_avg_pool2d_matches_onnxruntime(case, count_include_pad):
    kernel, strides, pads, _, ceil_mode = case
    x = np.random.default_rng(12).standard_normal((2, 3, 9, 11)).astype(np.float32)
    (expected,) = run_onnx_node(
        "AveragePool", [x], kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
        ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    y = avg_pool2d(x, kernel, strides, pads, ceil_mode=bool(ceil_mode),
                   count_include_pad=bool(count_include_pad))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_global_avg_pool2d_matches_onnxruntime():
    x = np.random.default_rng(13).standard_normal((2, 5, 7, 6)).astype(np.float32)
    (expected,) = run_onnx_node("GlobalAveragePool", [x])
    np.testing.assert_allclose(global_avg_pool2d(x), expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- timing (not a test)
def best_ms(call, *args, repeat: int = 50, **kwargs) -> float:
    """Best-of-5 mean time of ``call(*args, **kwargs)`` in milliseconds."""
    import timeit

    call(*args, **kwargs)
    runs = timeit.repeat(lambda: call(*args, **kwargs), number=repeat, repeat=5)
    return min(runs) / repeat * 1e3


def print_timings() -> None:
    rng = np.random.default_rng(0)
    cases = [
        ("LeNet conv1 32x1x28x28 * 6x1x5x5 p2", (32, 1, 28, 28), (6, 1, 5, 5),
         dict(pads=(2, 2, 2, 2)), False),
        ("LeNet conv2 32x6x14x14 * 16x6x5x5", (32, 6, 14, 14), (16, 6, 5, 5), {}, True),
        ("depthwise 3x3 32x32x14x14 p1", (32, 32, 14, 14), (32, 1, 3, 3),
         dict(pads=(1, 1, 1, 1), group=32), True),
    ]
    for name, x_shape, w_shape, args, need_dx in cases:
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        b = rng.standard_normal(w_shape[0]).astype(np.float32)
        dy = np.ones_like(conv2d(x, w, b, **args))
        forward = best_ms(conv2d, x, w, b, **args)
        backward = best_ms(conv2d_backward, dy, x, w, **args, need_dx=need_dx)
        print(f"{name:38s} forward {forward:6.3f} ms   backward (need_dx={need_dx}) "
              f"{backward:6.3f} ms")
    x = rng.standard_normal((32, 6, 28, 28)).astype(np.float32)
    y, taps = max_pool2d(x, (2, 2), (2, 2), return_indices=True)
    forward = best_ms(max_pool2d, x, (2, 2), (2, 2), return_indices=True)
    backward = best_ms(max_pool2d_backward, y, taps, x.shape, (2, 2), (2, 2))
    print(f"{'max pool 2x2/2 32x6x28x28':38s} forward {forward:6.3f} ms   backward "
          f"{backward:6.3f} ms")


if __name__ == "__main__":
    print_timings()
