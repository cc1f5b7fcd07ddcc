"""QConv: TFLite's per-channel integer CONV_2D / DEPTHWISE_CONV_2D (and 16x8).

``y = clamp(MBQM(sum(w * (x - x_zp)) + bias, multiplier[c], shift[c]) + y_zp, act_min,
act_max)``, where the sum runs over the taps inside the image (padding is the real value
0, i.e. ``x_zp``).

How: the float convolution primitive runs on the raw integer values held in float32
(exact: see ``integer_common``), with zero padding. That differs from the sum above by
``x_zp * (sum of the in-image taps of w[c])`` — a map over (channel, output pixel) that does
not depend on the input, computed once per input size and folded, with the bias, into the
requantizer's per-position offset. So the input is converted once (int8 -> float32, no
zero-point pass), the conv is the float path's, and bias, zero points, activation clamp
and rounding all happen in the requantizer's single epilogue. int16 inputs (16x8)
accumulate in float64 and use TFLite's int64 multiply.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives import conv2d
from runtime.providers.base import Kernel, KernelContext
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

#: Accumulator elements per conv call: the batch is cut into slabs of about this size.
SLAB_ELEMENTS = 1 << 20


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

    _, abs_sums = channel_sums(w_q)
    bound = float(abs_sums.max(initial=0)) * magnitude(x_dtype)
    acc_dtype = exact_float_dtype(bound, ctx, prefer64=wide)
    weight = (w_q if n == 2 else w_q[:, :, None, :]).astype(acc_dtype)
    to_float = FloatCopy(acc_dtype)
    requantizers: dict[tuple[int, ...], tuple] = {}

    def prepare(spatial: tuple[int, ...]) -> tuple:
        """Padding and requantizer for one input size (C, spatial...)."""
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
            act_max=int(ctx.attr("act_max")), dtype=ctx.output_dtype().name, acc_bound=bound,
            wide=wide)
        return pads2, strides2, dilations2, requantizer, tuple(offset.shape[1:]) if n == 2 \
            else tuple(offset.shape[2:])

    static = ctx.static_input_shape(0)
    if static is not None:
        requantizers[static[2:]] = prepare(static[2:])

    def qconv_(x, w=None, m=None, s=None, b=None):
        entry = requantizers.get(x.shape[2:])
        if entry is None:
            entry = requantizers[x.shape[2:]] = prepare(x.shape[2:])
        pads2, strides2, dilations2, requantizer, out_spatial = entry
        batch = x.shape[0]
        # Batch-minor memory (C, H, W, N), the conv primitive's own layout: its output
        # slabs are then written as runs, and the next conv reads its input without a
        # transposing copy.
        memory = np.empty((channels,) + out_spatial + (batch,), ctx.output_dtype())
        out = np.moveaxis(memory, -1, 0)
        out4 = out if n == 2 else out[:, :, None, :]
        x4 = x if n == 2 else x[:, :, None, :]
        per_image = max(1, int(np.prod(out4.shape[1:])))
        # Batch slabs of ~4 MiB of accumulators: the conv's temporaries and its output stay
        # in cache for the requantization that follows (measured faster than one big call).
        slab = max(1, SLAB_ELEMENTS // per_image)
        for start in range(0, batch, slab):
            part = slice(start, start + slab)
            acc = conv2d(to_float(x4[part]), weight, None, strides2, pads2, dilations2, group)
            requantizer(acc, out4[part])
        return out

    return qconv_


__all__ = ["qconv"]
