"""QBatchMatMul: TFLite's integer BATCH_MATMUL of two quantized activations.

    acc = (a - a_zero_point) @ (b - b_zero_point)                     exact, int32
    y   = clamp(MultiplyByQuantizedMultiplier(acc, multiplier, shift) + y_zero_point,
                act_min, act_max)

with numpy.matmul broadcasting over the leading axes. Unlike FULLY_CONNECTED (ruy, one
rounding) LiteRT's BATCH_MATMUL requantizes with ``common.h``'s double rounding; the
multiplier is ``QuantizeMultiplier(double(s_a) * double(s_b) / double(s_y))``. Products
run in float BLAS on the centred integers, exact while ``K * |a| * |b|`` fits the float's
mantissa (``matmul_integer.integer_matmul``).
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.matmul_integer import integer_matmul, zero_point_bound
from runtime.providers.cpu.registry import cpu_kernel
from runtime.providers.cpu.requantize import apply_multiplier


@cpu_kernel("QBatchMatMul", domain="edgefw")
def qbatch_matmul(ctx: KernelContext) -> Kernel:
    zp_a, zp_b = int(ctx.attr("a_zero_point")), int(ctx.attr("b_zero_point"))
    zp_y = int(ctx.attr("y_zero_point"))
    multiplier, shift = int(ctx.attr("multiplier")), int(ctx.attr("shift"))
    lo, hi = int(ctx.attr("act_min")), int(ctx.attr("act_max"))
    a_bound = zero_point_bound(np.dtype(ctx.input_types[0].dtype), np.array(zp_a))
    b_bound = zero_point_bound(np.dtype(ctx.input_types[1].dtype), np.array(zp_b))
    dtype = ctx.output_dtype()

    def qbatch_matmul_(a, b):
        a_c = a.astype(np.int32) - np.int32(zp_a)
        b_c = b.astype(np.int32) - np.int32(zp_b)
        acc = integer_matmul(a_c, b_c, a_bound, b_bound)
        y = apply_multiplier(acc, multiplier, shift) + zp_y
        return np.clip(y, lo, hi).astype(dtype)

    return qbatch_matmul_


__all__ = ["qbatch_matmul"]
