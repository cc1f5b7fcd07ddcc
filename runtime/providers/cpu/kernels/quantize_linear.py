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


#: Per-tensor quantization of at least this many values runs in slabs of this many through
#: one scratch buffer that stays in cache (a fresh float temporary per pass, the plain way,
#: costs page faults and memory traffic on a batch of images: 2-3x slower).
_SLAB = 1 << 15


def _quantize_slabs(x: np.ndarray, scale, zero_point, lo: float, hi: float,
                    dtype: np.dtype) -> np.ndarray:
    """The same passes as the general path (divide, rint, add, clip), slab by slab."""
    flat = x.reshape(-1)
    out = np.empty(x.shape, dtype)
    out_flat = out.reshape(-1)
    scratch = np.empty(min(_SLAB, flat.size), x.dtype)
    for start in range(0, flat.size, _SLAB):
        src = flat[start:start + _SLAB]
        q = scratch[:src.size]
        np.divide(src, scale, out=q)
        np.rint(q, out=q)
        np.add(q, zero_point, out=q)
        np.clip(q, lo, hi, out=q)
        np.copyto(out_flat[start:start + _SLAB], q, casting="unsafe")
    return out


@cpu_kernel("QuantizeLinear", since=13)
def quantize_linear(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    dtype = ctx.output_dtype()
    info = np.iinfo(dtype)
    lo, hi = float(info.min), float(info.max)

    fast = _per_tensor_quantize(ctx, lo, hi, dtype)
    if fast is not None:
        return fast

    def quantize(x, scale, zero_point=None):
        s = _broadcastable(scale, x.ndim, axis)
        work = np.float32 if x.dtype != np.float64 else np.float64
        if s.ndim == 0 and x.size >= _SLAB and x.dtype == work and x.flags.c_contiguous \
                and (zero_point is None or zero_point.size == 1):
            return _quantize_slabs(x, work(s), 0 if zero_point is None else
                                   work(zero_point.reshape(())), lo, hi, dtype)
        q = np.asarray(np.rint(np.divide(x, s, dtype=work)))  # 0-d inputs give scalars
        if zero_point is not None:
            np.add(q, _broadcastable(zero_point, x.ndim, axis).astype(work), out=q)
        np.clip(q, lo, hi, out=q)
        return q.astype(dtype)

    return quantize


def _per_tensor_quantize(ctx: KernelContext, lo: float, hi: float, dtype: np.dtype
                         ) -> Kernel | None:
    """Float32 input, constant per-tensor scale and zero point (a QDQ graph's input): the
    constants are converted once and the clamp is two ufuncs — at batch 1 the general path's
    conversions and ``np.clip`` wrapper cost more than the work (784 values: ~9 -> ~4 us).
    Big inputs keep the slab path."""
    scale, zero = ctx.const(1), ctx.const(2) if ctx.has_input(2) else np.zeros((), np.int8)
    if scale is None or zero is None or scale.size != 1 or zero.size != 1 \
            or ctx.input_types[0].dtype != "float32":
        return None
    s, z = np.float32(scale.reshape(())), np.float32(zero.reshape(()))
    low, high = np.float32(lo), np.float32(hi)

    def quantize_per_tensor(x, *_params):
        if x.size >= _SLAB and x.flags.c_contiguous:
            return _quantize_slabs(x, s, z, lo, hi, dtype)
        q = np.divide(x, s)
        if q.ndim == 0:  # 0-d: numpy returns a scalar
            q = np.asarray(q)
        np.rint(q, out=q)
        np.add(q, z, out=q)
        np.maximum(q, low, out=q)
        np.minimum(q, high, out=q)
        return q.astype(dtype)

    return quantize_per_tensor


@cpu_kernel("DequantizeLinear", since=13)
def dequantize_linear(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    dtype = ctx.output_dtype()
    fast = _per_tensor_dequantize(ctx, dtype)
    if fast is not None:
        return fast

    def dequantize(x, scale, zero_point=None):
        wide = x.astype(np.int64 if x.dtype == np.int32 else np.int32)
        if zero_point is not None:
            wide = wide - _broadcastable(zero_point, x.ndim, axis).astype(wide.dtype)
        return np.multiply(wide.astype(dtype), _broadcastable(scale, x.ndim, axis)
                           .astype(dtype, copy=False))

    return dequantize


def _per_tensor_dequantize(ctx: KernelContext, dtype: np.dtype) -> Kernel | None:
    """8- and 16-bit input, constant per-tensor scale and zero point, float32 output:
    ``x - zero_point`` is exact in float32 (|difference| < 2**17), so it is one subtraction
    straight to float and one scaling, instead of widening to int32 and converting."""
    scale, zero = ctx.const(1), ctx.const(2) if ctx.has_input(2) else np.zeros((), np.int8)
    x_dtype = ctx.input_types[0].dtype
    if scale is None or zero is None or scale.size != 1 or zero.size != 1 \
            or x_dtype not in ("int8", "uint8", "int16", "uint16") or dtype != np.float32:
        return None
    s, z = np.float32(scale.reshape(())), np.float32(zero.reshape(()))

    def dequantize_per_tensor(x, *_params):
        y = np.subtract(x, z, dtype=np.float32)
        return np.multiply(y, s, out=y) if y.ndim else np.multiply(y, s)

    return dequantize_per_tensor
