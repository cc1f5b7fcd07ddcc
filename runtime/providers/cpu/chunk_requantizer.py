"""Requantization folded into the GEMM operands: two passes per output value.

TFLite's requantization of an integer accumulator ``acc = sum(w * (x - x_zp)) + bias`` is,
in closed form (``requantize.closed_form``), ``floor((acc * M + D) / 2**S) + y_zp`` then a
clamp to ``[act_min, act_max]``. Writing ``scale = M / 2**S`` (the real multiplier) and
``offset = y_zp + D / 2**S - 1/2``, that is ``round(acc * scale + offset)`` with ties
upwards. :class:`FoldedRequantizer` moves everything but the rounding into the operands
of the product the kernels compute anyway:

    w' = w * scale[c]          b' = (bias - x_zp * sum(w[c])) * scale[c] + offset[c]

so that the float32 GEMM of the raw integer inputs (and a ones row for ``b'``) yields
``acc * scale + offset`` directly; then one clamp pass in place (it also does ReLU/ReLU6)
and one rounding pass that writes the int8/uint8 output (on big chunks the float32
rounding trick of ``__call__``, two light passes; ``np.rint`` with a casting output on
small ones): the float Conv kernel's clamp, plus a pass that writes 1 byte per value.

Exactness: the sum is no longer an exact integer. Its float32 error is a few 2**-24 of the
terms' magnitudes, in output steps usually ~1e-5, so a result can differ from TFLite's
by one step when ``acc * scale`` lies that close to a rounding boundary, and exact ties
round to even where TFLite rounds them up: one step, on ~1e-5 of the values
(measured in ``tests/runtime/integer/test_chunk_requantizer.py``).
:meth:`FoldedRequantizer.error_steps` bounds the float error from the weights; the kernels
use the exact :class:`~runtime.providers.cpu.requantize.AccumulatorRequantizer` where the
bound reaches a quarter step (and for int16 outputs). docs/qdq_contract.md states the
bound.

``D`` depends on the sign of gemmlowp's high product (its second rounding goes half away
from zero): ``offset`` holds the positive side's, and values below the zero point are
lowered by ``2**-right_shift`` in one more pass (a compare and a masked subtract) — only
when the activation does not clamp them away anyway (ReLU/ReLU6 outputs never need it),
and never with FULLY_CONNECTED's single rounding. Without it, ~2**-right_shift of those
values would be one step high.

    >>> import numpy as np
    >>> rq = FoldedRequantizer([1 << 30], [-4], zero_point=-128, act_min=-128, act_max=127,
    ...                        dtype="int8")
    >>> w, b = rq.fold(np.array([[2.0]]), np.array([0.0]))  # acc = 2 * x
    >>> acc = (np.array([[20.0, -3.0]]) * w + b).astype(np.float32)  # the GEMM's result
    >>> rq(acc, np.empty((1, 2), np.int8))  # 40 / 32 = 1.25 -> 1, plus the zero point
    array([[-127, -128]], dtype=int8)
"""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives.elementwise import clamp_ufunc
from runtime.providers.cpu.requantize import closed_form

#: float32 values in [2**23, 2**24) are integers: adding this rounds to one.
_ROUNDING = np.float32(1.5 * 2**23)
#: Below this many values np.rint's one call beats the two passes of the bit trick.
_SMALL = 1 << 14
#: float32's unit roundoff.
_UNIT = 2.0**-24
#: The float error the kernels accept (in output steps): below half a step a result is
#: never more than one step from TFLite's; a quarter leaves room for what the bound misses.
MAX_ERROR_STEPS = 0.25


class FoldedRequantizer:
    """Per-channel ``multiplier``/``shift`` (TFLite's, ``shift <= 0`` unless
    ``single_rounding``) folded into GEMM operands; calling it on the product
    ``acc * scale + offset`` (float32, any layout, overwritten) clamps and rounds it into an
    int8/uint8 array. :meth:`supports` says whether the parameters fit. ``fewer_calls``:
    one rounding call per chunk, for kernels that run beside other threads."""

    def __init__(self, multiplier, shift, *, zero_point: int, act_min: int, act_max: int,
                 dtype: str, single_rounding: bool = False, fewer_calls: bool = False) -> None:
        m = np.asarray(multiplier, np.int64).reshape(-1)
        s = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), m.shape)
        if not self.supports(s, dtype, single_rounding):
            raise ValueError("FoldedRequantizer needs int8/uint8 outputs and, with double "
                             "rounding, shifts <= 0")
        self.dtype = np.dtype(dtype)
        total, d_pos, _, _ = closed_form(m, s, single_rounding)
        unit = np.ldexp(1.0, -total)  # 2**-S, exact in float64
        #: float64, per channel: the real multiplier M / 2**S and what joins the bias.
        self.scale = m * unit
        self.offset = int(zero_point) + (d_pos * unit - 0.5)
        self._clip, self._lo, self._hi = clamp_ufunc(act_min, act_max, np.float32)
        # Below the zero point D is smaller by 2**31 / 2**S (double rounding, right shift
        # > 0). Near the zero point itself there is no rounding boundary, so the zero point
        # separates the two sides well enough.
        lower = 2.0 * (d_pos * unit - 0.5)
        self._zero_point = np.float32(zero_point)
        self._lower = lower.astype(np.float32) if int(act_min) < int(zero_point) \
            and np.any(lower) else None
        self._shaped: dict[tuple[int, int], np.ndarray] = {}
        # Beside other threads a call costs a GIL hand-off: round with np.rint's one call
        # on every chunk (LeNet int8 at 2 threads: ~7% faster than the two-pass trick).
        self._small = np.inf if fewer_calls else _SMALL

    @staticmethod
    def supports(shift, dtype, single_rounding: bool = False) -> bool:
        return np.dtype(dtype) in (np.dtype(np.int8), np.dtype(np.uint8)) and (
            single_rounding or not np.any(np.asarray(shift) > 0))

    def fold(self, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(weight * scale, bias * scale + offset)`` in float64, channels on axis 0 of
        ``weight`` (any trailing shape) and of ``bias`` (the integer bias with the input
        zero-point term, ``bias - x_zp * sum(w[c])``)."""
        weight = np.asarray(weight, np.float64)
        per_channel = self.scale.reshape((-1,) + (1,) * (weight.ndim - 1))
        return weight * per_channel, np.asarray(bias, np.float64) * self.scale + self.offset

    def error_steps(self, term_bound, depth: int) -> float:
        """A bound, in output steps, on the float32 error of the folded product when
        ``sum(|w[c] * x|) + |bias[c]| <= term_bound[c]`` (the raw integer terms) over
        ``depth`` products: every operand and every partial sum rounds once (relative
        ``2**-24``; a conservative ``(depth + 3) * u`` overall), plus the offset's
        rounding."""
        terms = np.asarray(term_bound, np.float64) * self.scale + np.abs(self.offset)
        return float(np.max((depth + 3) * _UNIT * terms, initial=0.0))

    def _lowering(self, ndim: int, axis: int) -> np.ndarray:
        key = (ndim, axis)
        found = self._shaped.get(key)
        if found is None:
            shape = [1] * ndim
            shape[axis] = self._lower.size
            found = self._shaped[key] = self._lower.reshape(shape)
        return found

    def __call__(self, acc: np.ndarray, out: np.ndarray, channel_axis: int = 0) -> np.ndarray:
        """Clamp ``acc`` in place and round it into ``out`` (same shape, any strides);
        returns ``out``. Channels lie along ``channel_axis`` (needed only for the
        lowering below the zero point)."""
        if self._lower is not None:
            lower = self._lowering(acc.ndim, channel_axis) if self._lower.size > 1 \
                else self._lower.reshape(())
            np.subtract(acc, lower, out=acc, where=acc < self._zero_point)
        self._clip(acc, self._lo, self._hi, out=acc)
        # Rounding: adding 1.5 * 2**23 leaves round-half-even(acc) in the float's low
        # mantissa bits (its ulp there is 1), and the output takes their low byte (two's
        # complement for int8). Two light passes, 1.3x faster than np.rint casting to int8
        # on chunks in cache; small arrays save a call instead.
        if acc.dtype != np.float32 or acc.size < self._small:
            return np.rint(acc, out=out, casting="unsafe")
        np.add(acc, _ROUNDING, out=acc)
        np.copyto(out.view(np.uint8), acc.view(np.int32), casting="unsafe")
        return out


__all__ = ["MAX_ERROR_STEPS", "FoldedRequantizer"]
