"""QDynamicGemm and QDynamicConv: TFLite's dynamic-range ("hybrid") FULLY_CONNECTED and
CONV_2D with asymmetric input quantization.

Weights are int8 with a float scale per output channel; activations stay float. At run
time each batch row (Gemm: each row of the flattened leading axes; Conv: each image) is
quantized to int8 on its own range, extended to contain 0 (``AsymmetricQuantizeFloats``):

    scale = (max(0, max x) - min(0, min x)) / 255, zero point nudged into [-128, 127],
    q = clamp(round_half_away(zp + x * float32(1 / scale)), -128, 127)

then ``y = float(sum(w * (q - zp))) * (scale * w_scale[c]) + bias[c]`` in float32, with the
node's fused float activation applied after. The integer sums run exactly in float BLAS.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives import conv2d
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.conv import as_2d, pads_for, spatial_rank, window_params
from runtime.providers.cpu.kernels.fused_activation import inplace_activation
from runtime.providers.cpu.kernels.integer_common import (
    channel_sums,
    constant_input,
    exact_float_dtype,
)
from runtime.providers.cpu.registry import cpu_kernel

_QMIN, _QMAX = -128.0, 127.0


def quantize_rows(rows: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric int8 quantization of each row of a 2-D float array: ``(q - zp)`` as
    ``dtype`` (exact small integers) and the float32 scale of every row."""
    rows = rows.astype(np.float32, copy=False)
    rmin = np.minimum(rows.min(axis=1, initial=0.0), 0.0).astype(np.float64)
    rmax = np.maximum(rows.max(axis=1, initial=0.0), 0.0).astype(np.float64)
    degenerate = rmin == rmax
    scale = np.where(degenerate, 1.0, (rmax - rmin) / (_QMAX - _QMIN))
    from_min, from_max = _QMIN - rmin / scale, _QMAX - rmax / scale
    use_min = (-_QMIN + np.abs(rmin / scale)) < (_QMAX + np.abs(rmax / scale))
    zero_point = np.where(use_min, from_min, from_max)
    nudged = np.where(zero_point <= _QMIN, _QMIN, np.where(
        zero_point >= _QMAX, _QMAX, np.sign(zero_point) * np.floor(np.abs(zero_point) + 0.5)))
    nudged = np.where(degenerate, 0.0, nudged)
    scale32 = np.where(degenerate, 1.0, scale).astype(np.float32)
    inverse = (np.float32(1.0) / scale32)[:, None]
    # TFLite rounds the float32 value zp + x * inverse half away from zero.
    value = (nudged.astype(np.float32)[:, None] + rows * inverse).astype(np.float64)
    q = np.clip(np.sign(value) * np.floor(np.abs(value) + 0.5), _QMIN, _QMAX)
    q = np.where(degenerate[:, None], 0.0, q)
    return (q - nudged[:, None]).astype(dtype), scale32


def _weights(ctx: KernelContext) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.dtype]:
    w_q = constant_input(ctx, 1, "weight")
    w_scale = constant_input(ctx, 2, "w_scale").astype(np.float32)
    bias = constant_input(ctx, 3, "bias").astype(np.float32) if ctx.has_input(3) else None
    _, abs_sums = channel_sums(w_q)
    acc_dtype = exact_float_dtype(float(abs_sums.max(initial=0)) * 255.0, ctx)
    return w_q, w_scale, bias, acc_dtype


@cpu_kernel("QDynamicGemm", domain="edgefw")
def qdynamic_gemm(ctx: KernelContext) -> Kernel:
    w_q, w_scale, bias, acc_dtype = _weights(ctx)
    units, depth = w_q.shape
    weight_t = np.ascontiguousarray(w_q.T.astype(acc_dtype))
    activation = inplace_activation(ctx.fused_activation, np.dtype(np.float32))

    def qdynamic_gemm_(x, w=None, s=None, b=None):
        rows = x.reshape(-1, depth)
        centered, scale = quantize_rows(rows, acc_dtype)
        acc = np.matmul(centered, weight_t).astype(np.float32, copy=False)
        y = acc * (scale[:, None] * w_scale[None, :])
        if bias is not None:
            y += bias
        if activation is not None:
            activation(y)
        return y.reshape(x.shape[:-1] + (units,)).astype(x.dtype, copy=False)

    return qdynamic_gemm_


@cpu_kernel("QDynamicConv", domain="edgefw")
def qdynamic_conv(ctx: KernelContext) -> Kernel:
    w_q, w_scale, bias, acc_dtype = _weights(ctx)
    n = spatial_rank(ctx, "QDynamicConv", w_q.ndim)
    weight = (w_q if n == 2 else w_q[:, :, None, :]).astype(acc_dtype)
    group = int(ctx.attr("group"))
    kernel = [int(k) for k in w_q.shape[2:]]
    strides, dilations = window_params(ctx, kernel)
    channel_scale = w_scale[None, :, None, None]
    activation = inplace_activation(ctx.fused_activation, np.dtype(np.float32))

    def qdynamic_conv_(x, w=None, s=None, b=None):
        pads = pads_for(ctx, x.shape[2:], kernel, strides, dilations)
        pads2, strides2, dilations2, _ = as_2d(pads, strides, dilations, kernel)
        centered, scale = quantize_rows(x.reshape(x.shape[0], -1), acc_dtype)
        x4 = centered.reshape(x.shape if n == 2 else x.shape[:2] + (1,) + x.shape[2:])
        acc = conv2d(x4, weight, None, strides2, pads2, dilations2, group)
        y = acc.astype(np.float32, copy=False) * (scale[:, None, None, None] * channel_scale)
        if bias is not None:
            y += bias[None, :, None, None]
        if activation is not None:
            activation(y)
        if n == 1:
            y = y[:, :, 0, :]
        return y.astype(x.dtype, copy=False)

    return qdynamic_conv_


__all__ = ["qdynamic_conv", "qdynamic_gemm", "quantize_rows"]
