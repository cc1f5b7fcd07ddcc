"""Softmax and LogSoftmax along one axis (opset >= 13: the axis alone, not a 2-D view)."""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.unary_kernel import unary_kernel
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Softmax", since=13)
def softmax(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    short_rows = _short_row_softmax(ctx, axis)
    if short_rows is not None:
        return short_rows

    # ufunc reductions, not np.max/np.sum: their Python wrappers cost ~2 us a call.
    def softmax_(x, out):
        peak = np.maximum.reduce(x, axis=axis, keepdims=True)
        y = np.subtract(x, peak, out=out)
        np.exp(y, out=y)
        total = np.add.reduce(y, axis=axis, keepdims=True)
        return np.divide(y, total, out=y)

    return unary_kernel(ctx, softmax_)


# Softmax rows of at most this many values take the short-row path.
SHORT_ROW_MAX_WIDTH = 256
# A row whose sum of exp(x - global max) is below this lost precision to the global shift
# (its own max is > ~69 below the global one): that input is recomputed row by row.
_SHIFT_UNDERFLOW = 1e-30


def _short_row_softmax(ctx: KernelContext, axis: int) -> Kernel | None:
    """Softmax over a short last axis of a float32/64 input (attention scores).

    numpy reduces many short rows slowly (~4 us for 64 rows of 16 at batch 1), so the
    shift is the global max (softmax is unchanged by any per-row constant, and
    exp(x - global max) cannot overflow) and the row sums are one GEMM with a ones vector.
    A row far below the global max would underflow; it is detected and the input is then
    recomputed with per-row maxima.
    """
    shape = ctx.static_input_shape(0)
    dtype = ctx.output_dtype()
    if shape is None or not shape or dtype not in (np.float32, np.float64):
        return None
    if axis not in (-1, len(shape) - 1) or not 1 <= shape[-1] <= SHORT_ROW_MAX_WIDTH:
        return None
    ones = np.ones((shape[-1], 1), dtype)
    tiny = dtype.type(_SHIFT_UNDERFLOW)
    out = ctx.output_buffer()

    def softmax_short_rows(x):
        peak = np.maximum.reduce(x, axis=None)
        y = np.subtract(x, peak, out=out)
        np.exp(y, out=y)
        total = np.matmul(y, ones)
        if not np.isfinite(peak) or np.minimum.reduce(total, axis=None) < tiny:
            return _softmax_rows(x, y)
        return np.divide(y, total, out=y)

    return softmax_short_rows


def _softmax_rows(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    peak = np.maximum.reduce(x, axis=-1, keepdims=True)
    y = np.subtract(x, peak, out=out)
    np.exp(y, out=y)
    return np.divide(y, np.add.reduce(y, axis=-1, keepdims=True), out=y)


@cpu_kernel("LogSoftmax", since=13)
def log_softmax(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))

    def log_softmax_(x, out):
        peak = np.maximum.reduce(x, axis=axis, keepdims=True)
        y = np.subtract(x, peak, out=out)
        log_total = np.log(np.add.reduce(np.exp(y), axis=axis, keepdims=True))
        return np.subtract(y, log_total, out=y)

    return unary_kernel(ctx, log_softmax_)
