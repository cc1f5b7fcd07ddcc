"""QAdd: TFLite's integer ADD of two quantized tensors (numpy broadcasting).

Each input, zero-centred and shifted left by ``left_shift`` bits of headroom (20 for
8-bit, 15 for int16), is rescaled to twice the larger input scale; the sum is rescaled to
the output scale, offset by the output zero point and clamped (fused Relu/Relu6 included):

    x_i = MBQM((q_i - zp_i) << left_shift, M_i, s_i)          (i = a, b)
    y   = clamp(MBQM(x_a + x_b, M_y, s_y) + zp_y, act_min, act_max)

Everything is exact int64 arithmetic, vectorised; int32 wrap-around is reproduced where the
C++ code would wrap.
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel
from runtime.providers.cpu.requantize import apply_multiplier


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.int32).astype(np.int64)


@cpu_kernel("QAdd", domain="edgefw")
def qadd(ctx: KernelContext) -> Kernel:
    zp_a, zp_b = int(ctx.attr("a_zero_point")), int(ctx.attr("b_zero_point"))
    zp_y = int(ctx.attr("y_zero_point"))
    m_a, s_a = int(ctx.attr("a_multiplier")), int(ctx.attr("a_shift"))
    m_b, s_b = int(ctx.attr("b_multiplier")), int(ctx.attr("b_shift"))
    m_y, s_y = int(ctx.attr("y_multiplier")), int(ctx.attr("y_shift"))
    left_shift = int(ctx.attr("left_shift"))
    lo, hi = int(ctx.attr("act_min")), int(ctx.attr("act_max"))
    dtype = ctx.output_dtype()

    def rescaled(q: np.ndarray, zero_point: int, m: int, s: int) -> np.ndarray:
        shifted = _wrap_int32((q.astype(np.int64) - zero_point) << left_shift)
        return apply_multiplier(shifted, m, s)

    def qadd_(a, b):
        total = _wrap_int32(rescaled(a, zp_a, m_a, s_a) + rescaled(b, zp_b, m_b, s_b))
        y = apply_multiplier(total, m_y, s_y) + zp_y
        return np.clip(y, lo, hi).astype(dtype)

    return qadd_


__all__ = ["qadd"]
