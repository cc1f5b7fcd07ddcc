"""QuantizeLinear and DequantizeLinear, per tensor or per axis (QDQ form).

Quantize rounds half to even (``np.rint``, as onnxruntime's ``nearbyint``) and saturates
to the output type's range; dequantize subtracts the zero point in int32 and scales.
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def _broadcastable(param: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """A scale/zero point reshaped to broadcast along ``axis`` (scalars stay scalars)."""
    if param.ndim == 0 or (param.ndim == 1 and param.size == 1):
        return param.reshape(())
    if param.ndim == 1 and rank > 0:
        axis = axis + rank if axis < 0 else axis
        shape = [1] * rank
        shape[axis] = param.shape[0]
        return param.reshape(shape)
    return param


@cpu_kernel("QuantizeLinear", since=13)
def quantize_linear(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    dtype = ctx.output_dtype()
    info = np.iinfo(dtype)
    lo, hi = float(info.min), float(info.max)

    def quantize(x, scale, zero_point=None):
        s = _broadcastable(scale, x.ndim, axis)
        work = np.float32 if x.dtype != np.float64 else np.float64
        q = np.asarray(np.rint(np.divide(x, s, dtype=work)))  # 0-d inputs give scalars
        if zero_point is not None:
            np.add(q, _broadcastable(zero_point, x.ndim, axis).astype(work), out=q)
        np.clip(q, lo, hi, out=q)
        return q.astype(dtype)

    return quantize


@cpu_kernel("DequantizeLinear", since=13)
def dequantize_linear(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    dtype = ctx.output_dtype()

    def dequantize(x, scale, zero_point=None):
        wide = x.astype(np.int64 if x.dtype == np.int32 else np.int32)
        if zero_point is not None:
            wide = wide - _broadcastable(zero_point, x.ndim, axis).astype(wide.dtype)
        return np.multiply(wide.astype(dtype), _broadcastable(scale, x.ndim, axis)
                           .astype(dtype, copy=False))

    return dequantize
