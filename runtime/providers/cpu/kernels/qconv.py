"""QConv: TFLite's per-channel integer CONV_2D / DEPTHWISE_CONV_2D (and 16x8).

``y = clamp(MBQM(sum(w * (x - x_zp)) + bias, multiplier[c], shift[c]) + y_zp, act_min,
act_max)``, where the sum runs over the taps inside the image (padding is the real value
0, i.e. ``x_zp``).

How: the float convolution machinery runs on the raw integer values held in float32
(exact: see ``integer_common``), with zero padding. That differs from the sum above by
``x_zp * (sum of the in-image taps of w[c])`` — a map over (channel, output pixel) that does
not depend on the input, computed once per input size and folded, with the bias, into the
requantizer's per-position offset. Bias, zero points, activation clamp and rounding then
all happen in the requantizer's single epilogue. int16 inputs (16x8) accumulate in float64
and use TFLite's int64 multiply.

With a static input shape and int8/uint8 outputs (the usual case) the kernel runs the
float Conv kernel's :class:`~edgefw.ir.primitives.conv_plan.ConvPlan` chunk by chunk
(:class:`~edgefw.ir.primitives.conv_epilogue.EpilogueConv`): the padded buffer's border
holds ``x_zp`` instead of 0, so the zero-point term is ``x_zp * sum(w[c])`` for every pixel
and joins the bias in the GEMM's bias column, and the requantization is folded into the
weights and that column
(:class:`~runtime.providers.cpu.chunk_requantizer.FoldedRequantizer`): each chunk's product
is the real-valued result, clamped and rounded into the int8 output while it is in cache
(within one step of the reference, on ~1e-5 of the values). The int8 input is converted
while it is copied into the padded buffer (or, for 1x1 convs, into each chunk's columns).
Other cases (int16, multipliers above 1, float error bounds too large, or shapes known only
at run time) keep the exact :class:`AccumulatorRequantizer` epilogue on the whole output.
Results are stored batch-minor, ``(C, H, W, N)`` in memory, the plan's own layout, so
consecutive integer convs pass tensors without transposing copies.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives import conv2d
from edgefw.ir.primitives.conv import ConvPlan, conv_geometry
from edgefw.ir.primitives.conv_epilogue import EpilogueConv
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.chunk_requantizer import MAX_ERROR_STEPS, FoldedRequantizer
from runtime.providers.cpu.kernels.conv import as_2d, pads_for, spatial_rank, window_params
from runtime.providers.cpu.kernels.integer_common import (
    FloatCopy,
    channel_sums,
    constant_input,
    exact_float_dtype,
    magnitude,
)
from runtime.providers.cpu.registry import cpu_kernel
from runtime.providers.cpu.requantize import AccumulatorRequantizer


@cpu_kernel("QConv", domain="edgefw")
def qconv(ctx: KernelContext) -> Kernel:
    w_q = constant_input(ctx, 1, "weight")
    n = spatial_rank(ctx, "QConv", w_q.ndim)
    multiplier = constant_input(ctx, 2, "multiplier").astype(np.int64)
    shift = constant_input(ctx, 3, "shift").astype(np.int64)
    bias = constant_input(ctx, 4, "bias").astype(np.int64) if ctx.has_input(4) \
        else np.zeros(w_q.shape[0], np.int64)
    x_dtype = np.dtype(ctx.input_types[0].dtype)
    wide = x_dtype == np.int16
    x_zero_point = int(ctx.attr("x_zero_point"))
    group = int(ctx.attr("group"))
    kernel = [int(k) for k in w_q.shape[2:]]
    channels = w_q.shape[0]
    strides, dilations = window_params(ctx, kernel)
    out_dtype = ctx.output_dtype()

    sums, abs_sums = channel_sums(w_q)
    bound = float(abs_sums.max(initial=0)) * magnitude(x_dtype)
    acc_dtype = exact_float_dtype(bound, ctx, prefer64=wide)
    weight = (w_q if n == 2 else w_q[:, :, None, :]).astype(acc_dtype)

    # The folded epilogue (int8/uint8 outputs, multipliers below 1, a float error far below
    # half a step): requantization inside the GEMM's operands, then a clamp and a rounding.
    folded = None
    if not wide and FoldedRequantizer.supports(shift, out_dtype):
        folded = FoldedRequantizer(
            multiplier, shift, zero_point=int(ctx.attr("y_zero_point")),
            act_min=int(ctx.attr("act_min")), act_max=int(ctx.attr("act_max")),
            dtype=out_dtype.name, fewer_calls=ctx.concurrent)
        # The raw inputs (border: x_zp) times w, and the bias column's integer.
        terms = abs_sums * magnitude(x_dtype) + np.abs(bias - x_zero_point * sums)
        if folded.error_steps(terms, weight[0].size + 1) >= MAX_ERROR_STEPS:
            folded = None

    def geometry(spatial: tuple[int, ...]) -> tuple:
        """Padding, output size and exact requantizer for one input size."""
        pads = pads_for(ctx, spatial, kernel, strides, dilations)
        pads2, strides2, dilations2, _ = as_2d(pads, strides, dilations, kernel)
        ones = np.ones((1, weight.shape[1] * group) + ((1,) if n == 1 else ()) + spatial,
                       np.float64)
        in_image_taps = conv2d(ones, weight.astype(np.float64), None, strides2, pads2,
                               dilations2, group)[0]  # (C, ho, wo): sum of in-image w
        offset = bias[:, None, None] - x_zero_point * np.rint(in_image_taps).astype(np.int64)
        requantizer = AccumulatorRequantizer(
            multiplier[None, :, None, None], shift[None, :, None, None], offset[None],
            zero_point=int(ctx.attr("y_zero_point")), act_min=int(ctx.attr("act_min")),
            act_max=int(ctx.attr("act_max")), dtype=out_dtype.name, acc_bound=bound,
            wide=wide)
        return (strides2, pads2, dilations2), offset.shape[1:], requantizer

    def batch_minor_output(batch: int, out_hw: tuple[int, int]) -> np.ndarray:
        """A fresh (N, C, H, W) result stored (C, H, W, N)."""
        return np.empty((channels,) + out_hw + (batch,), out_dtype).transpose(3, 0, 1, 2)

    def finish(out4: np.ndarray) -> np.ndarray:
        return out4 if n == 2 else out4[:, :, 0, :]

    static = ctx.static_input_shape(0)
    if static is not None and static[0] > 0:
        if folded is not None:
            return _chunked(ctx, static, n, weight, group, geometry, folded,
                            bias - x_zero_point * sums, x_zero_point, finish)
        planned = _planned(ctx, static, n, weight, group, geometry, batch_minor_output, finish)
        if planned is not None:
            return planned

    to_float = FloatCopy(acc_dtype)
    entries: dict[tuple[int, ...], tuple] = {}

    def qconv_(x, w=None, m=None, s=None, b=None):
        entry = entries.get(x.shape[2:])
        if entry is None:
            entry = entries[x.shape[2:]] = geometry(x.shape[2:])
        window, out_hw, requantizer = entry
        x4 = x if n == 2 else x[:, :, None, :]
        out4 = batch_minor_output(x.shape[0], out_hw)
        if x.shape[0]:
            requantizer(conv2d(to_float(x4), weight, None, *window, group), out4)
        return finish(out4)

    return qconv_


def _chunked(ctx: KernelContext, static: tuple[int, ...], n: int, weight: np.ndarray,
             group: int, geometry, requantizer: FoldedRequantizer, offset: np.ndarray,
             x_zero_point: int, finish) -> Kernel:
    """The kernel for a static input shape: a ConvPlan run chunk by chunk
    (:class:`EpilogueConv`), each chunk requantized while it is in cache. The border is
    padded with the input zero point, so ``sum(w * (x - x_zp)) + bias`` is the GEMM of the
    raw values with ``bias - x_zp * sum(w[c])`` in the bias column; folded with the
    requantizer's scale and offset, the GEMM yields the values to clamp and round."""
    window, out_hw, _ = geometry(tuple(static[2:]))
    x4_shape = tuple(static) if n == 2 else (static[0], static[1], 1, static[2])
    plan = ConvPlan(conv_geometry("QConv", x4_shape, np.float32, weight.shape, *window,
                                  group), np.float32, ctx.concurrent)
    conv = EpilogueConv(plan, plan.prepare_weights(*requantizer.fold(weight, offset)),
                        requantizer, pad_value=x_zero_point)
    out_shape = (weight.shape[0],) + tuple(out_hw) + (static[0],)
    out_dtype = ctx.output_dtype()

    def qconv_chunked(x, w=None, m=None, s=None, b=None):
        return finish(conv(x if n == 2 else x[:, :, None, :], np.empty(out_shape, out_dtype)))

    return qconv_chunked


def _planned(ctx: KernelContext, static: tuple[int, ...], n: int, weight: np.ndarray,
             group: int, geometry, batch_minor_output, finish) -> Kernel | None:
    """The kernel for a static input shape: one ConvPlan, one accumulator buffer.

    (Cutting the batch into slabs was measured slower: batch-minor outputs then take the
    requantized values in runs of a few bytes.)"""
    window, out_hw, requantizer = geometry(tuple(static[2:]))
    x4_shape = tuple(static) if n == 2 else (static[0], static[1], 1, static[2])
    plan = ConvPlan(conv_geometry("QConv", x4_shape, weight.dtype, weight.shape, *window,
                                  group), weight.dtype, ctx.concurrent)
    weights = plan.prepare_weights(weight, None)
    acc = np.empty((weight.shape[0],) + tuple(out_hw) + (static[0],),
                   weight.dtype).transpose(3, 0, 1, 2)
    # 1x1 convs multiply the input as it is: it must be float. Other convs copy the input
    # into the plan's padded buffer anyway, converting int8 to float on the way.
    to_float = FloatCopy(weight.dtype) if plan.geometry.pointwise else None

    def qconv_planned(x, w=None, m=None, s=None, b=None):
        x4 = x if n == 2 else x[:, :, None, :]
        plan.forward(x4 if to_float is None else to_float(x4), weights, acc)
        out4 = batch_minor_output(x.shape[0], out_hw)
        requantizer(acc, out4)
        return finish(out4)

    return qconv_planned


__all__ = ["qconv"]
