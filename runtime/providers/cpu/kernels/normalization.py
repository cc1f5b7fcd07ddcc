"""BatchNormalization (inference form) and LayerNormalization (TFLite's summation order).

With constant statistics BatchNormalization is folded at build time into one per-channel
multiply-add: y = x * a + b with a = scale / sqrt(var + eps), b = bias - mean * a.
"""

from __future__ import annotations

import numpy as np

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


@cpu_kernel("LayerNormalization", since=17)
def layer_normalization(ctx: KernelContext) -> Kernel:
    """LayerNorm in the exact order of the TFLite exporter's decomposition (MEAN, SUB, MUL,
    MEAN, ADD eps, RSQRT, MUL, MUL scale, ADD bias) with MEAN's sum taken left to right
    and divided by the count, as TFLite's kernels do: a QDQ graph then quantizes the same
    float32 values in this runtime and in LiteRT running its export (a LayerNorm result a
    hair apart from a rounding boundary would otherwise flip an int8 step and carry on).
    """
    axis = int(ctx.attr("axis"))
    eps = float(ctx.attr("epsilon"))
    n_outputs = len(ctx.node.outputs)
    dtype = ctx.output_dtype()

    def layer_norm(x, scale, bias=None):
        a = axis + x.ndim if axis < 0 else axis
        # stash_type=1: statistics in float32 even for float16 inputs.
        xf = x.astype(np.float32) if x.dtype == np.float16 else x
        kind = xf.dtype.type
        count = kind(max(int(np.prod(x.shape[a:])), 1))
        rows = xf.reshape(xf.shape[:a] + (-1,))
        scratch = np.empty(rows.shape, kind)
        mean = _running_total(rows, scratch)
        np.divide(mean, count, out=mean)
        centered = np.subtract(rows, mean)
        np.multiply(centered, centered, out=scratch)
        var = _running_total(scratch, scratch)
        np.divide(var, count, out=var)
        np.add(var, kind(eps), out=var)
        inv_std = np.sqrt(var, out=var)
        np.reciprocal(inv_std, out=inv_std)
        y = np.multiply(centered, inv_std, out=centered).reshape(x.shape)
        np.multiply(y, scale, out=y, casting="same_kind")
        if bias is not None:
            np.add(y, bias, out=y, casting="same_kind")
        y = y.astype(dtype, copy=False)
        if n_outputs == 1:
            return y
        stat_shape = x.shape[:a] + (1,) * (x.ndim - a)
        stats = (mean.reshape(stat_shape).astype(np.float32, copy=False),
                 inv_std.reshape(stat_shape).astype(np.float32, copy=False))
        return (y,) + stats[: n_outputs - 1]

    return layer_norm
