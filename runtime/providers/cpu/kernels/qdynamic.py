"""QDynamicGemm and QDynamicConv: TFLite's dynamic-range ("hybrid") FULLY_CONNECTED and
CONV_2D with asymmetric input quantization.

Weights are int8 with a float scale per output channel; activations stay float. At run
time each batch row (Gemm: each row of the flattened leading axes; Conv: each image) is
quantized to int8 on its own range, extended to contain 0 (``AsymmetricQuantizeFloats``):

    scale = (max(0, max x) - min(0, min x)) / 255, zero point nudged into [-128, 127],
    q = clamp(round_half_away(zp + x * float32(1 / scale)), -128, 127)

then ``y = float(sum(w * (q - zp))) * (scale * w_scale[c]) + bias[c]`` in float32, with the
node's fused float activation applied after.

How it stays fast and exact:

- The per-row parameters are a handful of float64 operations per row, as TFLite does them
  in double. The per-element work is float32 only — ``zp + x * inverse`` is a float32
  product and sum in TFLite too — in a few in-place passes over one reused buffer. Half-
  away rounding is ``trunc(v + copysign(0.49999997, v))``, which equals
  ``sign(v) * floor(|v| + 0.5)`` for every float32 ``|v| < 2**22`` (checked exhaustively
  over [0.25, 131] when written, and within 64 ulps of every tie by
  ``tests/runtime/integer/test_qdynamic.py``; below 0.25 both give 0),
  and clamping before rounding equals clamping after (rounding is monotone and the bounds
  are integers).
- The integer product runs in float32 BLAS on the raw ``q`` (|q| <= 128), exact while
  every partial sum stays under 2**24: ``128 * sum_k |w[c, k]| < 2**24`` (any int8 weight
  up to K = 1024). Gemm appends ``-zp`` as an extra input column against a weight row
  ``sum_k w[c, k]``, so BLAS subtracts the zero-point term too when
  ``128 * (sum |w[c]| + |sum w[c]|) < 2**24``. Otherwise K is cut into chunks that are
  each exact in float32 and summed in float64 with the zero-point term, then rounded to
  float32 once: exactly TFLite's ``float(int32 accumulator)``.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from edgefw.ir.primitives import conv2d
from edgefw.ir.primitives.blas import PARALLEL_MIN_MACS, matmul, matmul_for
from edgefw.ir.primitives.parallel import parallel_workers, run_split
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.conv import as_2d, pads_for, spatial_rank, window_params
from runtime.providers.cpu.kernels.fused_activation import inplace_activation
from runtime.providers.cpu.kernels.integer_common import (
    FLOAT32_EXACT,
    channel_sums,
    constant_input,
    exact_float_dtype,
)
from runtime.providers.cpu.registry import cpu_kernel

_QMIN, _QMAX = -128.0, 127.0
#: The largest float32 below 0.5: ``trunc(v + copysign(_HALF_DOWN, v))`` rounds half away
#: from zero (0.5 itself would round 0.49999997 up to 1).
_HALF_DOWN = np.nextafter(np.float32(0.5), np.float32(0.0))
_HALF_DOWN_BITS = _HALF_DOWN.view(np.uint32)
_SIGN_BIT = np.uint32(0x80000000)
#: Largest |q| of an int8 input; the bound of the exact float32 products.
_Q_MAGNITUDE = 128.0
#: Up to this many rows the per-row parameters are computed in Python floats (fewer calls).
_SCALAR_ROWS = 4
#: Up to this many values one np.copysign call is cheaper than two bitwise passes.
_SMALL_VALUES = 8192
#: Up to this many rows the zero-point term rides in the product as an extra column.
_FOLD_ROWS = 4
#: Fewest rows of a tile run on a thread of its own.
_MIN_TILE_ROWS = 8


def _row_parameters(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``(scale, zero point)`` of each row from its float64 range (``lo <= 0 <=
    hi``), as TFLite's ``AsymmetricQuantizeFloats`` computes them in double."""
    if lo.size <= _SCALAR_ROWS:
        pairs = [_scalar_parameters(float(a), float(b)) for a, b in zip(lo, hi, strict=True)]
        return (np.array([p[0] for p in pairs], np.float32),
                np.array([p[1] for p in pairs], np.float32))
    degenerate = lo == hi
    scale = (hi - lo) / (_QMAX - _QMIN)
    scale[degenerate] = 1.0
    from_min, from_max = lo / scale, hi / scale
    use_min = (-_QMIN + np.abs(from_min)) < (_QMAX + np.abs(from_max))
    zero_point = np.where(use_min, _QMIN - from_min, _QMAX - from_max)
    # round half away, then clamp: the same as TFLite's clamp-first (monotone rounding)
    nudged = np.copysign(np.floor(np.abs(zero_point) + 0.5), zero_point)
    np.clip(nudged, _QMIN, _QMAX, out=nudged)
    nudged[degenerate] = 0.0
    return scale.astype(np.float32), nudged.astype(np.float32)


def _scalar_parameters(lo: float, hi: float) -> tuple[float, float]:
    """:func:`_row_parameters` of one row, in Python floats (doubles)."""
    if lo == hi:
        return 1.0, 0.0
    scale = (hi - lo) / (_QMAX - _QMIN)
    from_min, from_max = lo / scale, hi / scale
    if (-_QMIN + abs(from_min)) < (_QMAX + abs(from_max)):
        zero_point = _QMIN - from_min
    else:
        zero_point = _QMAX - from_max
    if zero_point <= _QMIN:
        return scale, _QMIN
    if zero_point >= _QMAX:
        return scale, _QMAX
    return scale, math.copysign(math.floor(abs(zero_point) + 0.5), zero_point)


def quantize_rows_into(rows: np.ndarray, out: np.ndarray,
                       scratch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantize each row of a 2-D float32 array: ``q`` (float32 integers in [-128, 127])
    written into ``out`` (same shape, C-contiguous; ``scratch`` too, clobbered); returns
    the float32 ``(scale, zero point)`` of every row (scalars for a single row)."""
    if rows.shape[0] == 1:  # batch 1: scalars, the fewest numpy calls
        scale, zero_point = _scalar_parameters(min(float(rows.min()), 0.0),
                                               max(float(rows.max()), 0.0))
        scale32 = np.float32(scale)
        _round_into(rows, np.float32(1.0) / scale32, np.float32(zero_point), out, scratch)
        return scale32, np.float32(zero_point)
    lo = np.minimum.reduce(rows, axis=1, initial=0.0).astype(np.float64)
    hi = np.maximum.reduce(rows, axis=1, initial=0.0).astype(np.float64)
    scale, zero_point = _row_parameters(lo, hi)
    _round_into(rows, (np.float32(1.0) / scale)[:, None], zero_point[:, None], out, scratch)
    return scale, zero_point


def _round_into(rows: np.ndarray, inverse, zero_point, out: np.ndarray,
                scratch: np.ndarray) -> None:
    """TFLite's float32 ``zp + x * inverse``, clamped to [-128, 127] and rounded half away
    from zero, into ``out``."""
    np.multiply(rows, inverse, out=out)
    np.add(out, zero_point, out=out)
    out.clip(_QMIN, _QMAX, out=out)  # the method skips np.clip's dispatch (batch 1)
    if out.size <= _SMALL_VALUES:
        np.copysign(_HALF_DOWN, out, out=scratch)
    else:  # copysign(0.49999997, v) as bits: np.copysign is ~4x slower per value
        bits = scratch.view(np.uint32)
        np.bitwise_and(out.view(np.uint32), _SIGN_BIT, out=bits)
        np.bitwise_or(bits, _HALF_DOWN_BITS, out=bits)
    np.add(out, scratch, out=out)
    np.trunc(out, out=out)


def quantize_rows(rows: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric int8 quantization of each row of a 2-D float array: ``(q - zp)`` as
    ``dtype`` (exact small integers) and the float32 scale of every row.

    >>> centered, scale = quantize_rows(np.array([[-1.0, 0.0, 3.0]], np.float32), np.int32)
    >>> centered.tolist(), bool(scale[0] == np.float32(4 / 255))
    ([[-64, 0, 191]], True)
    """
    rows = np.ascontiguousarray(rows, np.float32)
    q = np.empty_like(rows)
    scale, zero_point = quantize_rows_into(rows, q, np.empty_like(rows))
    scale, zero_point = np.reshape(scale, -1), np.reshape(zero_point, (-1, 1))
    np.subtract(q, zero_point, out=q)
    return q.astype(dtype, copy=False), scale


def _weights(ctx: KernelContext) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    w_q = constant_input(ctx, 1, "weight")
    w_scale = constant_input(ctx, 2, "w_scale").astype(np.float32)
    bias = constant_input(ctx, 3, "bias").astype(np.float32) if ctx.has_input(3) else None
    return w_q, w_scale, bias


def exact_chunks(abs_weight: np.ndarray, magnitude: float = _Q_MAGNITUDE) -> list[slice]:
    """Slices of the K axis of ``|w|`` ([N, K], integers) in which every partial sum of
    ``q * w[c]`` with ``|q| <= magnitude`` is exact in float32: ``magnitude * sum |w[c]|
    < 2**24`` over each slice, for every channel ``c``.

    >>> [(s.start, s.stop) for s in exact_chunks(np.full((2, 3000), 127))]
    [(0, 1032), (1032, 2064), (2064, 3000)]
    """
    depth = abs_weight.shape[1]
    limit = (FLOAT32_EXACT - 1) // magnitude  # largest exact per-channel sum of |w|
    cum = np.zeros((abs_weight.shape[0], depth + 1), np.int64)
    np.cumsum(abs_weight, axis=1, out=cum[:, 1:])
    chunks, start = [], 0
    while start < depth:
        reach = (cum - cum[:, start:start + 1]).max(axis=0)  # nondecreasing along K
        stop = int(np.searchsorted(reach, limit, side="right")) - 1
        if stop <= start:  # not for int8 weights: one |w| would exceed 2**17
            raise ValueError(f"weight magnitude {reach[start + 1]} too large to sum exactly")
        chunks.append(slice(start, stop))
        start = stop
    return chunks


class _HybridProduct:
    """``y = (sum_k w[c, k] * (q[k] - zp)) * (scale * w_scale[c]) + bias[c]`` for rows of
    float inputs, with work arrays kept across runs (per row count, the last few)."""

    def __init__(self, w_q: np.ndarray, w_scale: np.ndarray, bias: np.ndarray | None,
                 activation) -> None:
        self.units, self.depth = w_q.shape
        sums, abs_sums = channel_sums(w_q)
        self.chunks = exact_chunks(np.abs(w_q.astype(np.int64)))
        # With few rows, BLAS subtracts the zero point too (an extra input column) when
        # that stays exact; with many, strided rows would slow every pass (the term is
        # then one outer product on the small output).
        self.foldable = len(self.chunks) == 1 and \
            float((abs_sums + np.abs(sums)).max(initial=0)) * _Q_MAGNITUDE < FLOAT32_EXACT
        self.weight_t = np.empty((self.depth + 1, self.units), np.float32)
        self.weight_t[:self.depth] = w_q.T
        self.weight_t[self.depth] = sums
        self.sums = sums.astype(np.float32)  # exact: |sum| < 2**17
        self.w_scale, self.bias, self.activation = w_scale, bias, activation
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def buffers(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(quantized input [rows, K (+1 folded)], scratch [rows, K], [rows, N])"""
        found = self._buffers.get(rows)
        if found is None:
            if len(self._buffers) >= 4:
                self._buffers.clear()
            fold = self.foldable and rows <= _FOLD_ROWS
            found = self._buffers[rows] = (
                np.empty((rows, self.depth + fold), np.float32),
                np.empty((rows, self.depth), np.float32),
                np.empty((rows, self.units), np.float32))
        return found

    def __call__(self, rows: np.ndarray, q: np.ndarray, scratch: np.ndarray,
                 scales: np.ndarray, y: np.ndarray, product=np.matmul) -> None:
        """Rows ``[n, K]`` into ``y [n, N]``, using the work arrays of :meth:`buffers`."""
        depth = self.depth
        folded = q.shape[1] > depth
        scale, zero_point = quantize_rows_into(rows, q[:, :depth] if folded else q, scratch)
        if rows.shape[0] > 1:  # per-row columns (a single row has scalars)
            scale, zero_point = scale[:, None], zero_point[:, None]
        if folded:
            q[:, depth:] = -zero_point
            product(q, self.weight_t, out=y)  # exact: every partial sum < 2**24
        elif len(self.chunks) == 1:
            product(q, self.weight_t[:depth], out=y)  # exact integers < 2**24
            # both terms exact in float32: the difference is rounded once, as float(int32)
            np.multiply(zero_point, self.sums, out=scales)
            np.subtract(y, scales, out=y)
        else:
            acc = np.empty(y.shape, np.float64)
            np.multiply(-zero_point, self.sums, out=acc)
            for part in self.chunks:  # each chunk exact in float32, their sum in float64
                acc += product(q[:, part], self.weight_t[part])
            y[...] = acc  # rounded once
        # TFLite: bias + acc * float32(input scale * channel scale)
        np.multiply(scale, self.w_scale, out=scales)
        np.multiply(y, scales, out=y)
        if self.bias is not None:
            np.add(y, self.bias, out=y)
        if self.activation is not None:
            self.activation(y)


def _row_tiles(rows: int, macs: int) -> list[tuple[int, int]] | None:
    """One row tile per thread for a product big enough to split (as :mod:`.blas` splits
    float products), or None: quantizing and multiplying a tile on the thread that owns
    it keeps the hand-offs to one per run."""
    workers = parallel_workers() if macs >= PARALLEL_MIN_MACS else 1
    if workers < 2 or rows < 2 * _MIN_TILE_ROWS:
        return None
    bounds = [rows * k // workers for k in range(workers + 1)]
    return list(zip(bounds, bounds[1:]))


@cpu_kernel("QDynamicGemm", domain="edgefw")
def qdynamic_gemm(ctx: KernelContext) -> Kernel:
    w_q, w_scale, bias = _weights(ctx)
    units, depth = w_q.shape
    activation = inplace_activation(ctx.fused_activation, np.dtype(np.float32))
    hybrid = _HybridProduct(w_q, w_scale, bias, activation)
    out_buffer = ctx.output_buffer()
    shape = ctx.static_input_shape(0)
    product = matmul if shape is None else matmul_for(math.prod(shape) * units)

    def qdynamic_gemm_(x, w=None, s=None, b=None):
        rows = x.reshape(-1, depth)
        n = rows.shape[0]
        out_shape = x.shape[:-1] + (units,)
        out = out_buffer if out_buffer is not None and out_buffer.shape == out_shape \
            else np.empty(out_shape, np.float32)
        y = out.reshape(n, units)
        q, scratch, scales = hybrid.buffers(n)
        tiles = None if n < 2 * _MIN_TILE_ROWS else _row_tiles(n, n * depth * units)
        if tiles is None:
            hybrid(rows, q, scratch, scales, y, product)
        else:  # each tile on one thread, start to end (products on one BLAS thread)
            run_split([partial(hybrid, rows[lo:hi], q[lo:hi], scratch[lo:hi], scales[lo:hi],
                               y[lo:hi]) for lo, hi in tiles])
        return out

    return qdynamic_gemm_


@cpu_kernel("QDynamicConv", domain="edgefw")
def qdynamic_conv(ctx: KernelContext) -> Kernel:
    w_q, w_scale, bias = _weights(ctx)
    _, abs_sums = channel_sums(w_q)
    # (q - zp) up to 255: padding is the zero point, so the conv needs centered inputs
    acc_dtype = exact_float_dtype(float(abs_sums.max(initial=0)) * 255.0, ctx)
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


__all__ = ["exact_chunks", "qdynamic_conv", "qdynamic_gemm", "quantize_rows",
           "quantize_rows_into"]
