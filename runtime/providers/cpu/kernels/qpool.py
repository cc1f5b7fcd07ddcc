"""QAveragePool and QGlobalAveragePool: TFLite's integer AVERAGE_POOL_2D and MEAN.

- QAveragePool (input and output share scale and zero point): the sum of the raw values of
  the in-image taps of each window, divided by their count rounding half away from zero
  (``(acc +- count/2) / count`` in C), clamped to the dtype. Padding — and the part of a
  ``ceil_mode`` window past the input — counts neither in the sum nor in the count.
- QGlobalAveragePool (reference ``Mean`` over H and W): ``acc = sum(x - x_zp)``, rescaled
  by ``MBQM(acc, multiplier, shift)`` (``x_scale / y_scale``), divided by the pixel count
  rounding half away, plus ``y_zp``, clamped. TFLite's optimized int8 MEAN kernel computes
  the same in float and may differ from this by one step on ties.

Sums are exact int64 (a window of int16 values cannot overflow it).
"""

from __future__ import annotations

import math

import numpy as np

from edgefw.ir import TensorType, infer_types
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.conv import pads_for, spatial_rank
from runtime.providers.cpu.kernels.integer_common import magnitude
from runtime.providers.cpu.registry import cpu_kernel
from runtime.providers.cpu.requantize import apply_multiplier, closed_form, rounding_divide


def _window_sums(x: np.ndarray, kernel, strides, pads, out_spatial) -> np.ndarray:
    """Sum over every window of ``x`` (N, C, spatial...) zero-padded by ``pads`` (begin...,
    end...), extended past the end when ``out_spatial`` needs it (ceil_mode)."""
    n = len(kernel)
    begin = pads[:n]
    ends = []
    for axis in range(n):
        needed = (out_spatial[axis] - 1) * strides[axis] + kernel[axis]
        ends.append(max(needed - begin[axis] - x.shape[2 + axis], 0))
    padded = np.pad(x.astype(np.int64), [(0, 0), (0, 0)] + list(zip(begin, ends, strict=True)))
    total = np.zeros(x.shape[:2] + tuple(out_spatial), np.int64)
    for tap in np.ndindex(*kernel):
        window = tuple(slice(t, t + (o - 1) * s + 1, s)
                       for t, o, s in zip(tap, out_spatial, strides, strict=True))
        total += padded[(slice(None), slice(None)) + window]
    return total


@cpu_kernel("QAveragePool", domain="edgefw")
def qaverage_pool(ctx: KernelContext) -> Kernel:
    shape = ctx.input_shape(0)
    spatial_rank(ctx, "QAveragePool", None if shape is None else len(shape))
    kernel = [int(k) for k in ctx.attr("kernel_shape")]
    strides = [int(s) for s in (ctx.attr("strides") or [1] * len(kernel))]
    dtype = ctx.output_dtype()
    info = np.iinfo(dtype)
    pool_attrs = {k: v for k, v in ctx.node.attrs.items()
                  if k in ("auto_pad", "ceil_mode", "kernel_shape", "pads", "strides")}
    geometry: dict[tuple[int, ...], tuple] = {}

    def prepare(spatial: tuple[int, ...]) -> tuple:
        (out_type,) = infer_types("AveragePool", [TensorType("float32", (1, 1) + spatial)],
                                  [None], pool_attrs)
        out_spatial = tuple(int(d) for d in out_type.shape[2:])
        pads = pads_for(ctx, spatial, kernel, strides, [1] * len(kernel))
        ones = np.ones((1, 1) + spatial, np.int64)
        return pads, out_spatial, _window_sums(ones, kernel, strides, pads, out_spatial)

    def qaverage_pool_(x):
        entry = geometry.get(x.shape[2:])
        if entry is None:
            entry = geometry[x.shape[2:]] = prepare(x.shape[2:])
        pads, out_spatial, count = entry
        sums = _window_sums(x, kernel, strides, pads, out_spatial)
        return np.clip(rounding_divide(sums, count), info.min, info.max).astype(dtype)

    return qaverage_pool_


#: Channels converted to float32 per pass of :func:`_pixel_sums` (a slab stays in cache).
_SUM_CHANNELS = 16


def _pixel_sums(x: np.ndarray, count: int, largest: int, scratch: dict) -> np.ndarray:
    """Per (image, channel) sums of the raw values, (N, C). Over the batch-minor
    ``(C, pixels, N)`` view when the tensor is stored that way (the integer Conv's output)
    as float32 products with a ones vector, a slab of channels at a time converted into the
    kernel's ``scratch``: exact (sums below 2**24) and, unlike numpy's integer reductions
    over a short inner axis (a tile of ~10 images), a few fast calls (a float32 copy of
    the whole input instead: 2x slower at batch 128, page faults included)."""
    n, c = x.shape[:2]
    xb = x.reshape(n, c, count).transpose(1, 2, 0)
    if not (xb.flags.c_contiguous and count * largest < 2**24):
        return x.reshape(n, c, count).sum(axis=2, dtype=np.int64)
    step = min(c, _SUM_CHANNELS)
    slab = scratch.get((count, n))
    if slab is None:
        slab = scratch[(count, n)] = (np.empty((step, count, n), np.float32),
                                      np.ones(count, np.float32))
    buffer, ones = slab
    sums = np.empty((c, n), np.float32)
    for c0 in range(0, c, step):
        part = buffer[:min(step, c - c0)]
        np.copyto(part, xb[c0:c0 + step], casting="unsafe")
        np.matmul(ones, part, out=sums[c0:c0 + step])
    return sums.T


@cpu_kernel("QGlobalAveragePool", domain="edgefw")
def qglobal_average_pool(ctx: KernelContext) -> Kernel:
    x_zp, y_zp = int(ctx.attr("x_zero_point")), int(ctx.attr("y_zero_point"))
    multiplier, shift = int(ctx.attr("multiplier")), int(ctx.attr("shift"))
    dtype = ctx.output_dtype()
    info = np.iinfo(dtype)
    # (pixel count, input dtype) -> (largest magnitude, mean function): constants computed
    # once, since at batch 1 each numpy call and np.prod on a shape cost a microsecond or more
    means: dict[tuple, tuple] = {}
    lo, hi = float(info.min), float(info.max)
    scratch: dict = {}  # _pixel_sums' float32 slab per (pixel count, batch)

    def qglobal_average_pool_(x):
        count = math.prod(x.shape[2:])
        entry = means.get((count, x.dtype))
        if entry is None:
            largest = magnitude(x.dtype)
            entry = means[(count, x.dtype)] = (largest, _mean_function(
                count, largest, x_zp, multiplier, shift))
        largest, mean_of = entry
        mean = mean_of(_pixel_sums(x, count, largest, scratch))
        np.add(mean, y_zp, out=mean)
        np.maximum(mean, lo, out=mean)  # ufuncs: np.clip's wrapper costs ~3 us
        out = np.minimum(mean, hi, out=mean).astype(dtype)
        return out.reshape(x.shape[:2] + (1,) * (x.ndim - 2))

    return qglobal_average_pool_


def _mean_function(count: int, largest: int, x_zp: int, multiplier: int, shift: int):
    """``sums -> rounding_divide(MBQM(sums - x_zp * count), count)`` (as float64 integers)
    for this pixel count, in
    exact float64 when every intermediate stays below 2**52 (:func:`_mean_float64`, its
    constants computed here once: at batch 1 the kernel is ~10 numpy calls), else in int64."""
    if (largest + abs(x_zp)) * count * multiplier >= 2.0 ** (52 - max(shift, 0)):
        def mean_int64(sums):
            acc = sums.astype(np.int64) - x_zp * count
            mean = rounding_divide(apply_multiplier(acc, multiplier, shift), max(count, 1))
            return mean.astype(np.float64)  # int32-range integers: exact

        return mean_int64
    divisor = max(count, 1)
    half = float(divisor // 2)
    correction = float(x_zp * count)
    if shift > 0:
        # x << shift cannot wrap int32 here: |x| * 2**shift * M < 2**52 and M >= 2**30.
        scale, below, d_neg, d_pos, step = float(multiplier << shift), None, 2.0**30, 2.0**30, \
            2.0**-31
    else:
        total, d_pos, d_neg, below = (int(v) for v in closed_form(multiplier, shift))
        scale, step = float(multiplier), 2.0**-total
        d_pos, d_neg = float(d_pos), float(d_neg)

    def mean_float64(sums):
        return _mean_float64(sums, correction, scale, below, d_pos, d_neg, step, half,
                             divisor)

    return mean_float64


def _mean_float64(sums, correction, scale, below, d_pos, d_neg, step, half, divisor):
    """``rounding_divide(apply_multiplier(sums - correction, M, shift), count)`` in float64,
    where every product, sum and quotient is an exact integer or is floored exactly
    (``|acc * M * 2**shift| < 2**52``, checked by the caller): a few passes instead of
    gemmlowp's int64 steps. SRDHM is ``floor((x * M + 2**30) / 2**31)``; with a left shift
    nothing more rounds, else ``closed_form`` merges the second rounding in (the offset
    ``d_neg`` below ``below``, ``d_pos`` from there)."""
    x = np.subtract(sums, correction, dtype=np.float64)
    offset = d_pos if below is None else np.where(x < below, d_neg, d_pos)
    y = np.multiply(x, scale)
    np.add(y, offset, out=y)
    np.multiply(y, step, out=y)
    np.floor(y, out=y)
    # rounding_divide: (y +- count // 2) / count, truncated toward zero as in C (y == 0
    # gives 0 either way: half < count).
    np.add(y, np.copysign(half, y), out=y)
    np.divide(y, divisor, out=y)
    return np.trunc(y, out=y)  # exact integers in float64


__all__ = ["qaverage_pool", "qglobal_average_pool"]
