"""BatchNormalization (inference form) and LayerNormalization.

With constant statistics BatchNormalization is folded at build time into one per-channel
multiply-add: y = x * a + b with a = scale / sqrt(var + eps), b = bias - mean * a.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir.passes.mark_sequential_sums_pass import SEQUENTIAL_SUMS
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def _per_channel(v: np.ndarray, rank: int) -> np.ndarray:
    """[C] -> [C, 1, ..., 1] so it broadcasts over N, C, spatial."""
    return v.reshape((-1,) + (1,) * (rank - 2))


def _fold(scale, bias, mean, var, eps, dtype) -> tuple[np.ndarray, np.ndarray]:
    a = (scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps))
    b = bias.astype(np.float64) - mean.astype(np.float64) * a
    return a.astype(dtype), b.astype(dtype)


@cpu_kernel("BatchNormalization", since=15)
def batch_normalization(ctx: KernelContext) -> Kernel:
    eps = float(ctx.attr("epsilon"))
    dtype = ctx.output_dtype()
    params = [ctx.const(i) for i in range(1, 5)]
    rank = None if ctx.input_shape(0) is None else len(ctx.input_shape(0))
    if all(p is not None for p in params) and rank is not None:
        a, b = (_per_channel(v, rank) for v in _fold(*params, eps, dtype))
        if ctx.reuse_input(0):
            def batch_norm_in_place(x, *_params):
                np.multiply(x, a, out=x)
                return np.add(x, b, out=x)

            return batch_norm_in_place
        out = ctx.output_buffer()

        def batch_norm_folded(x, *_params):
            y = np.multiply(x, a, out=out)
            return np.add(y, b, out=y)

        return batch_norm_folded

    def batch_norm(x, scale, bias, mean, var):
        a, b = _fold(scale, bias, mean, var, eps, dtype)
        return x * _per_channel(a, x.ndim) + _per_channel(b, x.ndim)

    return batch_norm


def _running_total(rows: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """The sums of ``rows`` along the last axis, added left to right (``(..., 1)``)."""
    np.add.accumulate(rows, axis=-1, out=scratch)
    return scratch[..., -1:].copy()


# Rows of at most this many values are centered by one GEMM with I - 1/n (see below).
CENTERING_GEMM_MAX_WIDTH = 256
CENTERING_GEMM_MAX_SIZE = 1 << 14


@cpu_kernel("LayerNormalization", since=17)
def layer_normalization(ctx: KernelContext) -> Kernel:
    """LayerNorm; in a quantized graph (``node.meta["sequential_sums"]``) in the exact order
    of the TFLite exporter's decomposition (MEAN, SUB, MUL, MEAN, ADD eps, RSQRT, MUL, MUL
    scale, ADD bias) with MEAN's sum taken left to right and divided by the count, as
    TFLite's kernels do: the QDQ graph then quantizes the same float32 values in this
    runtime and in LiteRT running its export (a LayerNorm result a hair from a rounding
    boundary would otherwise flip an int8 step and carry on). Float graphs take the fast
    paths (pairwise sums, more accurate too)."""
    axis = int(ctx.attr("axis"))
    eps = float(ctx.attr("epsilon"))
    n_outputs = len(ctx.node.outputs)
    dtype = ctx.output_dtype()
    sequential = bool(ctx.node.meta.get(SEQUENTIAL_SUMS))
    if not sequential:
        small = _small_row_layer_norm(ctx, axis, eps, n_outputs, dtype)
        if small is not None:
            return small
    moments = _sequential_moments if sequential else _pairwise_moments

    def layer_norm(x, scale, bias=None):
        a = axis + x.ndim if axis < 0 else axis
        # stash_type=1: statistics in float32 even for float16 inputs.
        xf = x.astype(np.float32) if x.dtype == np.float16 else x
        kind = xf.dtype.type
        mean, centered, var = moments(xf, a)
        np.add(var, kind(eps), out=var)
        inv_std = np.sqrt(var, out=var)
        np.reciprocal(inv_std, out=inv_std)
        y = np.multiply(centered, inv_std, out=centered)
        np.multiply(y, scale, out=y, casting="same_kind")
        if bias is not None:
            np.add(y, bias, out=y, casting="same_kind")
        y = y.astype(dtype, copy=False)
        if n_outputs == 1:
            return y
        stats = (mean.astype(np.float32, copy=False), inv_std.astype(np.float32, copy=False))
        return (y,) + stats[: n_outputs - 1]

    return layer_norm


def _pairwise_moments(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, x - mean, variance) over axes ``axis``.. with numpy's pairwise sums; mean and
    variance keep the reduced dims. ufunc reductions, not np.mean: its Python wrapper costs
    ~3 us a call at batch 1."""
    axes = tuple(range(axis, x.ndim))
    inv_count = x.dtype.type(1.0 / max(int(np.prod(x.shape[axis:])), 1))
    mean = np.add.reduce(x, axis=axes, keepdims=True)
    np.multiply(mean, inv_count, out=mean)
    centered = np.subtract(x, mean)
    var = np.add.reduce(np.square(centered), axis=axes, keepdims=True)
    np.multiply(var, inv_count, out=var)
    return mean, centered, var


def _sequential_moments(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_pairwise_moments` with TFLite's MEAN: sums left to right, divided by the
    count."""
    kind = x.dtype.type
    count = kind(max(int(np.prod(x.shape[axis:])), 1))
    rows = x.reshape(x.shape[:axis] + (-1,))
    scratch = np.empty(rows.shape, kind)
    mean = _running_total(rows, scratch)
    np.divide(mean, count, out=mean)
    centered = np.subtract(rows, mean)
    np.multiply(centered, centered, out=scratch)
    var = _running_total(scratch, scratch)
    np.divide(var, count, out=var)
    kept = x.shape[:axis] + (1,) * (x.ndim - axis)
    return mean.reshape(kept), centered.reshape(x.shape), var.reshape(kept)


def _small_row_layer_norm(ctx: KernelContext, axis: int, eps: float, n_outputs: int,
                          dtype: np.dtype) -> Kernel | None:
    """LayerNorm over the last axis of a small float32/64 input (a transformer at batch 1).

    Statistics as GEMMs: ``x @ (I - 1/n)`` centers every row in one BLAS call and
    ``centered**2 @ (1/n)`` gives the variances, where ``mean`` + a broadcast subtract and
    a short-row reduction cost ~2-4 us each at this size (numpy pays per 64-value row).
    """
    shape = ctx.static_input_shape(0)
    if shape is None or dtype not in (np.float32, np.float64) or n_outputs != 1:
        return None
    if axis not in (-1, len(shape) - 1) or np.dtype(ctx.input_types[0].dtype) != dtype:
        return None
    width = shape[-1]
    size = int(np.prod(shape))
    if not 1 <= width <= CENTERING_GEMM_MAX_WIDTH or size > CENTERING_GEMM_MAX_SIZE:
        return None
    centering = (np.eye(width) - 1.0 / width).astype(dtype)
    averaging = np.full((width, 1), 1.0 / width, dtype)
    epsilon = dtype.type(eps)
    out = ctx.output_buffer()
    scale_const = ctx.const(1)
    if scale_const is not None and not ctx.has_input(2) and np.all(scale_const == 1):
        # a unit scale and no bias (FoldLayerNormAffinePass moved them into the next
        # product): the division writes the output
        def layer_norm_small_rows_unit(x, scale, bias=None):
            centered = np.matmul(x, centering)
            variance = np.matmul(np.square(centered), averaging)
            np.add(variance, epsilon, out=variance)
            np.sqrt(variance, out=variance)
            return np.divide(centered, variance, out=out, casting="same_kind")

        return layer_norm_small_rows_unit

    def layer_norm_small_rows(x, scale, bias=None):
        centered = np.matmul(x, centering)
        variance = np.matmul(np.square(centered), averaging)
        np.add(variance, epsilon, out=variance)
        np.sqrt(variance, out=variance)
        np.divide(centered, variance, out=centered)
        y = np.multiply(centered, scale, out=out, casting="same_kind")
        if bias is not None:
            np.add(y, bias, out=y, casting="same_kind")
        return y

    return layer_norm_small_rows
