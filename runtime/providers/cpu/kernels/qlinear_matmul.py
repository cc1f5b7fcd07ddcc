"""QLinearMatMul: numpy.matmul on 8-bit operands with int32 accumulation, requantized.

    acc = (a - a_zero_point) @ (b - b_zero_point)              exact, int32
    y   = saturate(round_half_even(acc * (a_scale * b_scale / y_scale)) + y_zero_point)

as onnxruntime computes it: the multiplier in float32 (a_scale * b_scale first), the
product float32(acc) * multiplier, ties rounded to even. Scales and zero points are per
tensor, per row of a / y ([M] or [..., M, 1]) or per column of b ([N] or [..., 1, N]).
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.matmul_integer import (
    centered,
    integer_matmul,
    per_column,
    per_row,
    zero_point_bound,
)
from runtime.providers.cpu.registry import cpu_kernel


def requantize(acc: np.ndarray, multiplier: np.ndarray, zero_point: np.ndarray,
               dtype: np.dtype) -> np.ndarray:
    """saturate(round_half_even(float32(acc) * multiplier) + zero_point) as ``dtype``."""
    info = np.iinfo(dtype)
    y = np.asarray(np.multiply(acc.astype(np.float32), multiplier, dtype=np.float32))
    np.rint(y, out=y)
    np.add(y, zero_point.astype(np.float32), out=y)
    np.clip(y, float(info.min), float(info.max), out=y)
    return y.astype(dtype)


def multiplier(scale_a: np.ndarray, scale_b: np.ndarray, scale_y: np.ndarray) -> np.ndarray:
    """a_scale * b_scale / y_scale in float32, in that order (onnxruntime's)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return (scale_a.astype(np.float32) * scale_b.astype(np.float32)) \
            / scale_y.astype(np.float32)


@cpu_kernel("QLinearMatMul", since=10)
def qlinear_matmul(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()
    a_dtype = np.dtype(ctx.input_types[0].dtype or "uint8")
    a_zp = ctx.const(2)
    a_bound = zero_point_bound(a_dtype, a_zp)
    b, b_zp = ctx.const(3), ctx.const(5)
    b_centered = None
    if b is not None and b_zp is not None:
        b_centered = centered(b, per_column(b_zp))
        b_bound = int(np.max(np.abs(b_centered))) if b_centered.size else 0
    else:
        b_bound = zero_point_bound(np.dtype(ctx.input_types[3].dtype or "int8"), None)
    scales = [ctx.const(i) for i in (1, 4, 6)]
    const_multiplier = None
    if all(s is not None for s in scales):
        rank = len(ctx.input_shape(0) or (0, 0))
        const_multiplier = multiplier(per_row(scales[0], rank), per_column(scales[1]),
                                      per_row(scales[2], rank))

    def qlinear_matmul_(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                        y_zero_point):
        a_c = centered(a, per_row(a_zero_point, a.ndim))
        b_c = b_centered if b_centered is not None else centered(b, per_column(b_zero_point))
        acc = integer_matmul(a_c, b_c, a_bound, b_bound)
        m = const_multiplier if const_multiplier is not None else multiplier(
            per_row(a_scale, a.ndim), per_column(b_scale), per_row(y_scale, a.ndim))
        return requantize(acc, m, per_row(y_zero_point, a.ndim), dtype)

    return qlinear_matmul_


__all__ = ["multiplier", "requantize"]
