"""Requantization in four float32 passes, for accumulator chunks that are still in cache.

:class:`~runtime.providers.cpu.requantize.AccumulatorRequantizer` reproduces TFLite's
reference integers exactly, at the price of ~7 passes plus a near-integer scan and exact
fix-ups. The integer Conv kernel's hot path instead requantizes each GEMM chunk while it
sits in L2 (see :mod:`edgefw.ir.primitives.conv_epilogue`) with :class:`ChunkRequantizer`:

    w = acc * ms + kp         ms = M / 2**S, kp = 512 + bias8 + y_zp + D_pos / 2**S
    w -= 2**-r where the gemmlowp high product is negative   (only below the zero point)
    w = clip(w, 512 + act_min + bias8, 512 + act_max + bias8 + 0.5)
    y = low byte of (bits(w) >> 14)

``acc`` must already hold ``sum(w * (x - x_zp)) + bias`` as an exact integer (the kernels
fold bias and zero point into the GEMM). ``floor((acc * M + D) / 2**S) + y_zp`` is the
closed form of TFLite's ``MultiplyByQuantizedMultiplier`` (see ``requantize.closed_form``);
in ``[512, 1024)`` a float32 is fixed point with 14 fraction bits, so ``bits >> 14`` is
``floor(w)`` with the float exponent above it, and its low byte is the int8 (two's
complement, thanks to ``bias8 = 256``) or uint8 result. The clip keeps every value in that
binade. Nothing here is exact: the float32 product and sums are off by less than 2**-11
(in output steps) for every value that is not clamped, so a result differs from the
reference only when ``acc * M / 2**S`` lies that close to a rounding boundary — one step,
about once in 10**4 values (measured in ``tests/runtime/integer/test_chunk_requantizer.py``).
TFLite's own optimized kernels (XNNPACK's fp32 requantization) differ from the reference
the same way; docs/qdq_contract.md states the bound.

    >>> import numpy as np
    >>> rq = ChunkRequantizer([1 << 30], [-4], zero_point=-128, act_min=-128, act_max=127,
    ...                       dtype="int8")
    >>> out = np.empty((1, 2), np.int8)
    >>> rq(np.array([[40.0, -5.0]], np.float32), out)  # 40 / 32 = 1.25 -> 1
    array([[-127, -128]], dtype=int8)
"""

from __future__ import annotations

import numpy as np

from runtime.providers.cpu.requantize import closed_form

_BINADE = 512.0
_FRACTION_BITS = 14


class ChunkRequantizer:
    """Exact-integer float32 accumulators ``(C, ...)`` -> int8/uint8, per channel along
    axis ``channel_axis`` (0 for the conv plan's batch-minor chunks). Multipliers must be
    below 1 (every ``shift <= 0``): :meth:`supports` says whether these parameters fit.
    """

    def __init__(self, multiplier, shift, *, zero_point: int, act_min: int, act_max: int,
                 dtype: str) -> None:
        m = np.asarray(multiplier, np.int64).reshape(-1)
        s = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), m.shape)
        if not self.supports(s, dtype):
            raise ValueError("ChunkRequantizer needs int8/uint8 outputs and shifts <= 0")
        self.dtype = np.dtype(dtype)
        bias8 = 256 if self.dtype == np.int8 else 0
        total, d_pos, d_neg, negative_below = closed_form(m, s)
        scale = np.ldexp(1.0, -total)  # 2**-S, exact in float64
        self.channels = m.size
        self._ms = (m * scale).astype(np.float32)
        self._kp = (_BINADE + bias8 + int(zero_point) + d_pos * scale).astype(np.float32)
        adjust = (d_pos - d_neg) * scale  # 2**-right_shift, or 0
        # A negative high product lowers the result only at values <= zero_point: moot when
        # the output is clamped there (ReLU-like outputs).
        self._negative = bool(np.any(adjust)) and act_min < zero_point
        self._adjust = adjust.astype(np.float32)
        # |negative_below| <= 2**31 / M + 1 is tiny for the usual M >= 2**30: exact.
        self._threshold = negative_below.astype(np.float32)
        self._lo = np.float32(_BINADE + act_min + bias8)
        self._hi = np.float32(_BINADE + act_max + bias8 + 0.5)
        self._shaped: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    @staticmethod
    def supports(shift, dtype) -> bool:
        return np.dtype(dtype) in (np.dtype(np.int8), np.dtype(np.uint8)) and not np.any(
            np.asarray(shift) > 0)

    def _constants(self, ndim: int, axis: int) -> tuple[np.ndarray, ...]:
        key = (ndim, axis)
        found = self._shaped.get(key)
        if found is None:
            shape = [1] * ndim
            shape[axis] = self.channels
            found = tuple(c.reshape(shape) for c in (self._ms, self._kp, self._adjust,
                                                    self._threshold))
            self._shaped[key] = found
        return found

    def __call__(self, acc: np.ndarray, out: np.ndarray, channel_axis: int = 0) -> np.ndarray:
        """Requantize ``acc`` (float32, overwritten: it is scratch) into ``out`` (same
        shape, int8/uint8, any strides); returns ``out``."""
        ms, kp, adjust, threshold = self._constants(acc.ndim, channel_axis)
        negative = np.less(acc, threshold) if self._negative else None
        np.multiply(acc, ms, out=acc)
        np.add(acc, kp, out=acc)
        if negative is not None:
            np.subtract(acc, adjust, out=acc, where=negative)
        np.clip(acc, self._lo, self._hi, out=acc)
        # Shift in place, then narrow: faster than one shift with a casting output.
        bits = acc.view(np.int32)
        np.right_shift(bits, _FRACTION_BITS, out=bits)
        np.copyto(out.view(np.uint8), bits, casting="unsafe")
        return out


__all__ = ["ChunkRequantizer"]
