"""QLinearConv: Conv on 8-bit x and w with int32 accumulation (plus the int32 bias B),
requantized to y's 8-bit type:

    acc = conv(x - x_zero_point, w - w_zero_point) + B        exact, int32
    y   = saturate(round_half_even(acc * (x_scale * w_scale / y_scale)) + y_zero_point)

with the float32 multiplier and rounding of ``qlinear_matmul.requantize`` (onnxruntime's).
w_scale / w_zero_point may be per output channel.
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.conv_integer import integer_conv, per_output_channel
from runtime.providers.cpu.kernels.matmul_integer import centered, zero_point_bound
from runtime.providers.cpu.kernels.qlinear_matmul import multiplier, requantize
from runtime.providers.cpu.registry import cpu_kernel


def _channels_last_axis(param: np.ndarray, rank: int) -> np.ndarray:
    """A per-output-channel [M] parameter shaped [1, M, 1, ...] for an [N, M, ...] output."""
    if param.size == 1:
        return param.reshape(())
    return param.reshape((1, -1) + (1,) * (rank - 2))


@cpu_kernel("QLinearConv", since=10)
def qlinear_conv(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()
    x_dtype = np.dtype(ctx.input_types[0].dtype or "uint8")
    x_bound = zero_point_bound(x_dtype, ctx.const(2))
    w, w_zp = ctx.const(3), ctx.const(5)
    w_centered = None
    if w is not None and w_zp is not None:
        w_centered = centered(w, per_output_channel(w_zp, w.ndim))
    accumulate = integer_conv(ctx, 0, 3, x_bound, w_centered)
    scales = [ctx.const(i) for i in (1, 4, 6)]
    out_shape = ctx.output_types[0].shape
    rank = len(out_shape) if out_shape is not None else 4
    const_multiplier = None
    if all(s is not None for s in scales):
        const_multiplier = multiplier(scales[0].reshape(()),
                                      _channels_last_axis(scales[1], rank), scales[2].reshape(()))
    bias = ctx.const(8) if ctx.has_input(8) else None

    def qlinear_conv_(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
                      y_zero_point, b=None):
        x_c = centered(x, x_zero_point.reshape(()))
        w_c = w_centered if w_centered is not None else centered(
            w, per_output_channel(w_zero_point, w.ndim))
        acc = accumulate(x_c, w_c)
        bias_ = bias if bias is not None else b
        if bias_ is not None:
            acc += _channels_last_axis(bias_.astype(np.int32), acc.ndim)
        m = const_multiplier if const_multiplier is not None else multiplier(
            x_scale.reshape(()), _channels_last_axis(w_scale, acc.ndim), y_scale.reshape(()))
        return requantize(acc, m, y_zero_point.reshape(()), dtype)

    return qlinear_conv_
