"""ConvInteger: Conv of (x - x_zero_point) and (w - w_zero_point), int32 result.

The centered operands go through the float ``conv2d`` primitive in a float type where the
K-term dot products (K = C/group * kernel area) are provably exact (see
``matmul_integer``). Padding after centering is padding with the zero point in the
quantized domain, i.e. with real zero, as onnxruntime does. 1-D and 2-D convolutions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgefw.ir.primitives import conv2d
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.conv import as_2d, pads_for, spatial_rank, window_params
from runtime.providers.cpu.kernels.matmul_integer import (
    accumulation_dtype,
    centered,
    exact_int32,
    zero_point_bound,
)
from runtime.providers.cpu.registry import cpu_kernel


def per_output_channel(param: np.ndarray | None, rank: int) -> np.ndarray | None:
    """A scalar stays a scalar; a [M] vector becomes [M, 1, ...] for an [M, ...] weight."""
    if param is None:
        return None
    if param.size == 1:
        return param.reshape(())
    return param.reshape((-1,) + (1,) * (rank - 1))


def integer_conv(ctx: KernelContext, x_index: int, w_index: int, x_bound: int,
                 w_centered: np.ndarray | None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``accumulate(x_centered, w_centered) -> int32 acc`` for the node's Conv attributes.

    ``w_centered`` (a constant weight minus its zero point) is converted once here."""
    w_shape = w_centered.shape if w_centered is not None else ctx.input_shape(w_index)
    x_shape = ctx.input_shape(x_index)
    rank = len(w_shape) if w_shape is not None else (None if x_shape is None else len(x_shape))
    n = spatial_rank(ctx, ctx.node.op_type, rank)
    group = int(ctx.attr("group"))
    const_w = None
    if w_centered is not None:
        w_bound = int(np.max(np.abs(w_centered))) if w_centered.size else 0
        k = int(math.prod(w_centered.shape[1:]))
        dtype = accumulation_dtype(k, x_bound, w_bound)
        const_w = w_centered.astype(dtype)
        if n == 1:
            const_w = const_w[:, :, None, :]

    def accumulate(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        kernel = [int(d) for d in (ctx.attr("kernel_shape") or w.shape[2:])]
        strides, dilations = window_params(ctx, kernel)
        pads = pads_for(ctx, x.shape[2:], kernel, strides, dilations)
        pads2, strides2, dilations2, _ = as_2d(pads, strides, dilations, kernel)
        k = int(math.prod(w.shape[1:]))
        bound = x_bound * (w_bound if const_w is not None else int(np.max(np.abs(w), initial=0)))
        dtype = accumulation_dtype(k, 1, bound)
        weight = const_w if const_w is not None else (
            w.astype(dtype) if n == 2 else w.astype(dtype)[:, :, None, :])
        x4 = x.astype(dtype) if n == 2 else x.astype(dtype)[:, :, None, :]
        acc = conv2d(x4, weight, None, strides2, pads2, dilations2, group)
        if n == 1:
            acc = acc[:, :, 0, :]
        return exact_int32(acc, k * bound)

    return accumulate


@cpu_kernel("ConvInteger", since=10)
def conv_integer(ctx: KernelContext) -> Kernel:
    x_dtype = np.dtype(ctx.input_types[0].dtype or "uint8")
    x_zp = ctx.const(2) if ctx.has_input(2) else np.zeros((), x_dtype)
    x_bound = zero_point_bound(x_dtype, x_zp)
    w_const = ctx.const(1)
    w_zp_const = ctx.const(3) if ctx.has_input(3) else None
    w_centered = None
    if w_const is not None and (not ctx.has_input(3) or w_zp_const is not None):
        w_centered = centered(w_const, per_output_channel(w_zp_const, w_const.ndim))
    accumulate = integer_conv(ctx, 0, 1, x_bound, w_centered)

    def conv_integer_(x, w, x_zero_point=None, w_zero_point=None):
        x_c = centered(x, None if x_zero_point is None else x_zero_point.reshape(()))
        w_c = w_centered if w_centered is not None else centered(
            w, per_output_channel(w_zero_point, w.ndim))
        return accumulate(x_c, w_c)

    return conv_integer_


__all__ = ["integer_conv", "per_output_channel"]
