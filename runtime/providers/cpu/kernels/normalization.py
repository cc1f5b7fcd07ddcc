"""BatchNormalization (inference form) and LayerNormalization.

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


@cpu_kernel("LayerNormalization", since=17)
def layer_normalization(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    eps = float(ctx.attr("epsilon"))
    n_outputs = len(ctx.node.outputs)
    dtype = ctx.output_dtype()

    def layer_norm(x, scale, bias=None):
        a = axis + x.ndim if axis < 0 else axis
        axes = tuple(range(a, x.ndim))
        # stash_type=1: statistics in float32 even for float16 inputs.
        xf = x.astype(np.float32) if x.dtype == np.float16 else x
        kind = xf.dtype.type
        inv_count = kind(1.0 / max(int(np.prod(x.shape[a:])), 1))
        # ufunc reductions, not np.mean: its Python wrapper costs ~3 us a call at batch 1.
        mean = np.add.reduce(xf, axis=axes, keepdims=True)
        np.multiply(mean, inv_count, out=mean)
        centered = np.subtract(xf, mean)
        squares = np.square(centered)
        var = np.add.reduce(squares, axis=axes, keepdims=True)
        np.multiply(var, inv_count, out=var)
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
