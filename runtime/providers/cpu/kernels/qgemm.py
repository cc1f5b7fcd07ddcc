"""QGemm: TFLite's integer FULLY_CONNECTED on the last axis (per-channel or per-tensor).

``y[..., n] = clamp(MBQM(sum_k w[n, k] * (x[..., k] - x_zp) + bias[n], multiplier[n],
shift[n]) + y_zp, act_min, act_max)``, MBQM rounding once as LiteRT's int8 FULLY_CONNECTED
does (ruy's ``ApplyMultiplier``; ``requantize.multiply_by_quantized_multiplier_single``).
The fusion pass builds it from Gemm and from MatMul with a constant 2-D weight,
normalised to ``w[N, K]``.

int8/uint8 outputs (the usual case) fold the requantization into the product
(:class:`~runtime.providers.cpu.chunk_requantizer.FoldedRequantizer`): the raw integer
inputs, with a ones column, times ``w[n, k] * scale[n]`` with the bias row
``(bias - x_zp * sum_k w[n, k]) * scale[n] + y_zp`` give the real-valued result; a clamp and
a rounding pass write the output. Within one step of TFLite's integers (exact ties round to
even, and the float32 sum is not exact). int16 (16x8) outputs and weights whose float error
bound reaches a quarter step keep the exact path: the product in float BLAS on the raw
integers (exact: ``integer_common``), the zero-point term ``x_zp * sum_k w[n, k]`` in the
exact requantizer's offset together with the bias.
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.chunk_requantizer import MAX_ERROR_STEPS, FoldedRequantizer
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
    x_zero_point = int(ctx.attr("x_zero_point"))
    out_dtype = ctx.output_dtype()
    multiplier, shift = constant_input(ctx, 2, "multiplier"), constant_input(ctx, 3, "shift")
    if not wide and FoldedRequantizer.supports(shift, out_dtype, single_rounding=True):
        folded = FoldedRequantizer(
            multiplier, shift, zero_point=int(ctx.attr("y_zero_point")),
            act_min=int(ctx.attr("act_min")), act_max=int(ctx.attr("act_max")),
            dtype=out_dtype.name, single_rounding=True)
        terms = abs_sums * magnitude(x_dtype) + np.abs(bias - x_zero_point * sums)
        if folded.error_steps(terms, w_q.shape[1] + 1) < MAX_ERROR_STEPS:
            return _folded(ctx, w_q, bias - x_zero_point * sums, folded)
    requantize = AccumulatorRequantizer(
        multiplier, shift, bias - x_zero_point * sums,
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


def _folded(ctx: KernelContext, w_q: np.ndarray, offset: np.ndarray,
            requantizer: FoldedRequantizer) -> Kernel:
    """One GEMM of the raw inputs and a ones column with the folded ``[w'; b']``, then the
    requantizer's clamp and rounding. Inputs stored batch-minor (a Flatten of a conv's
    output) take the transposed product, so that both copies stay straight passes."""
    units, depth = w_q.shape
    w, b = requantizer.fold(w_q, offset)
    by_rows = np.empty((depth + 1, units), np.float32)  # x (B, K+1) @ this -> (B, N)
    by_rows[:depth] = w.T
    by_rows[depth] = b
    by_columns = np.ascontiguousarray(by_rows.T)  # this @ x.T (K+1, B) -> (N, B)
    out_dtype = ctx.output_dtype()
    out_buffer = ctx.output_buffer()
    buffers: dict[tuple[int, bool], tuple[np.ndarray, np.ndarray]] = {}

    def scratch(rows: int, columns: bool) -> tuple[np.ndarray, np.ndarray]:
        found = buffers.get((rows, columns))
        if found is None:
            if len(buffers) >= 4:
                buffers.clear()
            if columns:
                x1 = np.empty((depth + 1, rows), np.float32)
                x1[depth] = 1
                acc = np.empty((units, rows), np.float32)
            else:
                x1 = np.empty((rows, depth + 1), np.float32)
                x1[:, depth] = 1
                acc = np.empty((rows, units), np.float32)
            found = buffers[(rows, columns)] = (x1, acc)
        return found

    def qgemm_folded(x, w=None, m=None, s=None, b=None):
        out_shape = x.shape[:-1] + (units,)
        out = out_buffer
        if out is None or out.shape != out_shape:
            out = np.empty(out_shape, out_dtype)
        if x.ndim == 2 and x.strides[0] < x.strides[1]:
            x1, acc = scratch(x.shape[0], True)
            np.copyto(x1[:depth], x.T, casting="unsafe")
            np.matmul(by_columns, x1, out=acc)
            requantizer(acc, out.T)
            return out
        x2 = x.reshape(-1, depth)
        x1, acc = scratch(x2.shape[0], False)
        np.copyto(x1[:, :depth], x2, casting="unsafe")
        np.matmul(x1, by_rows, out=acc)
        requantizer(acc, out.reshape(acc.shape), channel_axis=1)
        return out

    return qgemm_folded


__all__ = ["qgemm"]
