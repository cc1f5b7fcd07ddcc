"""LpNormalization (x / ||x||_p along one axis) and RMSNormalization (x / rms(x) * scale
over the trailing dims from ``axis``)."""

from __future__ import annotations

import numpy as np

from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("LpNormalization")
def lp_normalization(ctx: KernelContext) -> Kernel:
    axis, p = int(ctx.attr("axis")), int(ctx.attr("p"))

    def lp_norm(x):
        a = normalize_axis(axis, x.ndim, "LpNormalization axis")
        if p == 1:
            norm = np.sum(np.abs(x), axis=a, keepdims=True)
        else:
            norm = np.sqrt(np.sum(np.square(x), axis=a, keepdims=True))
        with np.errstate(divide="ignore", invalid="ignore"):
            # An all-zero slice has norm 0: it stays 0 (not 0/0 = nan), as ONNX specifies.
            return np.where(norm == 0, 0, x / norm).astype(x.dtype, copy=False)

    return lp_norm


@cpu_kernel("RMSNormalization", since=23)
def rms_normalization(ctx: KernelContext) -> Kernel:
    axis, eps = int(ctx.attr("axis")), float(ctx.attr("epsilon"))
    dtype = ctx.output_dtype()

    def rms_norm(x, scale):
        a = normalize_axis(axis, x.ndim, "RMSNormalization axis")
        # stash_type=1: the mean square in float32 even for float16 inputs.
        xw = x.astype(np.float32) if x.dtype == np.float16 else x
        mean_square = np.mean(np.square(xw), axis=tuple(range(a, x.ndim)), keepdims=True)
        y = xw / np.sqrt(mean_square + xw.dtype.type(eps))
        return (y * scale).astype(dtype, copy=False)

    return rms_norm
