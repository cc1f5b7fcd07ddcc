"""QGemm: TFLite's integer FULLY_CONNECTED on the last axis (per-channel or per-tensor).

``y[..., n] = clamp(MBQM(sum_k w[n, k] * (x[..., k] - x_zp) + bias[n], multiplier[n],
shift[n]) + y_zp, act_min, act_max)``, MBQM rounding once as LiteRT's int8 FULLY_CONNECTED
does (ruy's ``ApplyMultiplier``; ``requantize.multiply_by_quantized_multiplier_single``).
The fusion pass builds it from Gemm and from MatMul with a constant 2-D weight,
normalised to ``w[N, K]``.

The product runs in float BLAS on the raw integers (exact: ``integer_common``); the
zero-point term ``x_zp * sum_k w[n, k]`` is input-independent and folds into the
requantizer's offset together with the bias.
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.integer_common import (
    FloatCopy,
    channel_sums,
    constant_input,
    exact_float_dtype,
    magnitude,
)
from runtime.providers.cpu.registry import cpu_kernel
from runtime.providers.cpu.requantize import AccumulatorRequantizer


@cpu_kernel("QGemm", domain="edgefw")
def qgemm(ctx: KernelContext) -> Kernel:
    w_q = constant_input(ctx, 1, "weight")
    units = w_q.shape[0]
    x_dtype = np.dtype(ctx.input_types[0].dtype)
    wide = x_dtype == np.int16
    sums, abs_sums = channel_sums(w_q)
    bound = float(abs_sums.max(initial=0)) * magnitude(x_dtype)
    acc_dtype = exact_float_dtype(bound, ctx, prefer64=wide)
    weight_t = np.ascontiguousarray(w_q.T.astype(acc_dtype))  # (K, N)
    bias = constant_input(ctx, 4, "bias").astype(np.int64) if ctx.has_input(4) \
        else np.zeros(units, np.int64)
    requantize = AccumulatorRequantizer(
        constant_input(ctx, 2, "multiplier"), constant_input(ctx, 3, "shift"),
        bias - int(ctx.attr("x_zero_point")) * sums,
        zero_point=int(ctx.attr("y_zero_point")), act_min=int(ctx.attr("act_min")),
        act_max=int(ctx.attr("act_max")), dtype=ctx.output_dtype().name, acc_bound=bound,
        wide=wide, single_rounding=True)  # FULLY_CONNECTED's int8 kernels round once (ruy)
    to_float = FloatCopy(acc_dtype)
    out_buffer = ctx.output_buffer()
    acc_buffer: list[np.ndarray] = []

    def qgemm_(x, w=None, m=None, s=None, b=None):
        out_shape = x.shape[:-1] + (units,)
        if not acc_buffer or acc_buffer[0].shape != out_shape:
            acc_buffer[:] = [np.empty(out_shape, acc_dtype)]
        acc = np.matmul(to_float(x), weight_t, out=acc_buffer[0])
        out = out_buffer
        if out is None or out.shape != out_shape:
            out = np.empty(out_shape, ctx.output_dtype())
        return requantize(acc, out)

    return qgemm_


__all__ = ["qgemm"]
