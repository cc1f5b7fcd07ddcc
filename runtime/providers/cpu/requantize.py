"""Fixed-point requantization exactly as TFLite's reference integer kernels do it.

An integer kernel accumulates ``acc = sum(w * (x - x_zero_point)) + bias`` in int32 and maps
it to the output scale with a real multiplier ``m = x_scale * w_scale / y_scale``. TFLite
stores ``m`` as an int32 Q31 mantissa and a power-of-two exponent (:func:`quantize_multiplier`)
and applies it with two roundings (gemmlowp's, TFLite's default build):

- :func:`saturating_rounding_doubling_high_mul` — the high 32 bits of ``2 * a * b``,
  rounded to nearest (ties toward +inf);
- :func:`rounding_divide_by_pot` — a right shift rounding half away from zero.

:func:`multiply_by_quantized_multiplier` combines them (int32 accumulators, int8/uint8
activations); :func:`multiply_by_quantized_multiplier_int64` is TFLite's single-rounding
variant with a 16-bit multiplier used for int64 accumulators (16x8: int16 activations).
FULLY_CONNECTED does not use either: its int8 kernels run through ruy (``cpu_backend_gemm``,
the reference resolver included), whose ``ApplyMultiplier`` rounds once,
``(x * M + 2**(S-1)) >> S`` with ``S = 31 - shift``
(:func:`multiply_by_quantized_multiplier_single`; measured against LiteRT 2.x).
Every function here is vectorised over numpy arrays and bit-exact; the tests compare them
with a literal transcription of the C++ code.

:class:`AccumulatorRequantizer` is what the Conv/Gemm kernels call on every run. The double
rounding collapses to one, ``floor((x * M + D) / 2**S)`` with a sign-dependent ``D`` (see
:func:`closed_form`), which it evaluates three ways, all giving TFLite's integers:

- exact int64 arithmetic (reference; int16 outputs; multipliers above 1);
- float64, for small tensors: every term is an integer times a power of two below 2**53,
  so nothing rounds;
- float32, for large int8/uint8 tensors, in cache-sized slabs: the result is off by less
  than a bound known at plan time, the integer and fraction are read off the float's bits,
  and the rare values whose fraction lies within that bound of an integer are recomputed
  exactly.

    >>> import numpy as np
    >>> quantize_multiplier(0.0037)
    (2034096511, -8)
    >>> int(multiply_by_quantized_multiplier(np.int64(10_000), 2034096511, -8))
    37
"""

from __future__ import annotations

import math

import numpy as np

from edgefw.ir.passes.qdq_patterns import (
    quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp,
)

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
_Q31 = 1 << 31


def _as_int64(x) -> np.ndarray:
    return np.asarray(x).astype(np.int64, copy=False)


def _trunc_div_pot(x: np.ndarray, bits: int) -> np.ndarray:
    """C integer division by ``2**bits`` (rounds toward zero)."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` on int32 values (as int64 arrays)."""
    a, b = _as_int64(a), _as_int64(b)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div_pot(ab + nudge, 31)
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded half away from zero
    (``exponent`` in ``[0, 31]``)."""
    x, exponent = _as_int64(x), _as_int64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.int32).astype(np.int64)


def multiply_by_quantized_multiplier(x, quantized_multiplier, shift) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier`` for int32 ``x`` (double rounding).

    ``x * (1 << left_shift)`` wraps in int32 like the C++ code does on the hardware it
    targets; scales that need a left shift (multiplier > 1) are rare.
    """
    x, shift = _as_int64(x), _as_int64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = _wrap_int32(x << left) if np.any(left) else x
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted,
                                                                        quantized_multiplier),
                                  right)


def multiply_by_quantized_multiplier_single(x, quantized_multiplier, shift) -> np.ndarray:
    """ruy's ``MultiplyByQuantizedMultiplier`` (TFLite's FULLY_CONNECTED): one rounding of
    the 64-bit product, half toward +inf, ``shift`` in [-31, 30]."""
    x, shift = _as_int64(x), _as_int64(shift)
    total_shift = 31 - shift
    rounded = x * _as_int64(quantized_multiplier) + (np.int64(1) << (total_shift - 1))
    return rounded >> total_shift


def reduced_multiplier(quantized_multiplier) -> np.ndarray:
    """The 16-bit multiplier of TFLite's int64 ``MultiplyByQuantizedMultiplier``."""
    m = _as_int64(quantized_multiplier)
    return np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)


def multiply_by_quantized_multiplier_int64(x, quantized_multiplier, shift) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier`` for int64 ``x`` (16x8 kernels): a 16-bit
    multiplier and one rounding, half toward +inf; ``|x| < 2**47``, ``shift`` in [-31, 7]."""
    x, shift = _as_int64(x), _as_int64(shift)
    total_shift = 15 - shift
    rounded = x * reduced_multiplier(quantized_multiplier) + (np.int64(1) << (total_shift - 1))
    return _wrap_int32(rounded >> total_shift)


def rounding_divide(acc, count) -> np.ndarray:
    """TFLite's pooling/mean average: ``acc / count`` rounded half away from zero, written
    as C does it: ``(acc + count/2) / count`` or ``(acc - count/2) / count`` truncated."""
    acc, count = _as_int64(acc), _as_int64(count)
    half = count // 2
    return np.where(acc > 0, (acc + half) // count, -((-acc + half) // count))


def closed_form(multiplier, shift, single_rounding: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(S, D_pos, D_neg, negative_below)`` with, for ``shift <= 0`` and any int32 ``x``,

        multiply_by_quantized_multiplier(x, M, shift)
            == floor((x * M + D) / 2**S),  D = D_neg if x < negative_below else D_pos.

    Why: SRDHM is ``floor((x*M + 2**30) / 2**31)`` for every x (the C++ nudge and
    truncation combine to that), and ``floor(floor(a) / n) == floor(a / n)``, so the two
    roundings merge into one with a sign-dependent constant. ``x < negative_below`` is
    "SRDHM's result is negative", where RoundingDivideByPOT rounds ties down instead of up.
    With ``single_rounding`` (:func:`multiply_by_quantized_multiplier_single`) the form is
    that function itself: ``D_pos == D_neg == 2**(S-1)``.
    """
    m, shift = _as_int64(multiplier), _as_int64(shift)
    if single_rounding:
        total = np.broadcast_to(31 - shift, np.broadcast(m, shift).shape)
        d = np.int64(1) << (total - 1)
        return total, d, d, np.full(total.shape, INT32_MIN, np.int64)
    if np.any(shift > 0):
        raise ValueError("closed_form needs shift <= 0 (multipliers below 1)")
    right = -shift
    total = 31 + right
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)
    d_pos = (np.int64(1) << 30) + half * _Q31
    d_neg = d_pos - np.where(right > 0, _Q31, 0)
    # x*M + 2**30 < 0  <=>  x < -floor(2**30 / M) (x <= -1 for the usual M > 2**30);
    # never for M == 0.
    negative_below = np.where(m > 0, -((np.int64(1) << 30) // np.maximum(m, 1)), INT32_MIN)
    return total, d_pos, d_neg, negative_below



def apply_multiplier(x, quantized_multiplier, shift) -> np.ndarray:
    """:func:`multiply_by_quantized_multiplier` through :func:`closed_form` when every shift
    is <= 0 (one multiply, add and shift instead of gemmlowp's dozen steps); same result."""
    x = _as_int64(x)
    if np.any(_as_int64(shift) > 0):
        return multiply_by_quantized_multiplier(x, quantized_multiplier, shift)
    total, d_pos, d_neg, negative_below = closed_form(quantized_multiplier, shift)
    return (x * _as_int64(quantized_multiplier) + np.where(x < negative_below, d_neg, d_pos)) \
        >> total


# ------------------------------------------------------------------ accumulator -> output
#: Outputs smaller than this take the exact float64 (or int64) path: the fast path's fixed
#: cost (a dozen numpy calls per slab, then the fixups) only pays off on big tensors.
FAST_PATH_MIN_ELEMENTS = 1 << 17
# The fast path holds 512 + value in float32: in [512, 1024) that is fixed point with 14
# fraction bits. Its error budget (in those units) must stay well below half a unit.
_BINADE = 512.0
_FRACTION_BITS = 14
_MAX_ERROR_UNITS = 1 << 11
# Elements per slab of the fast path: ~1 MiB of float32, so that its buffers stay in L2.
_SLAB_ELEMENTS = 1 << 18
# The closed form's constants, in the order of the fast path's stacked table.
_EXACT_NAMES = ("multiplier", "shift", "offset", "total", "d_pos", "d_neg", "negative_below")


def _sparse_nonzero(flags: np.ndarray) -> np.ndarray:
    """``np.flatnonzero`` of a contiguous bool array with few True values: scans it as
    64-bit words (8 flags each) and looks closer only at the words that are not zero."""
    flat = flags.reshape(-1)
    if flat.size % 8:
        return np.flatnonzero(flat)
    words = np.flatnonzero(flat.view(np.uint64))
    if not words.size:
        return words
    candidates = (words[:, None] * 8 + np.arange(8)).reshape(-1)
    return candidates[flat[candidates]]


def memory_order(a: np.ndarray) -> tuple[int, ...]:
    """The axes of ``a`` from the slowest-varying in memory to the fastest (size-1 axes
    first): ``a.transpose(memory_order(a))`` is C-contiguous for any dense layout, e.g. the
    (C, H, W, N) memory behind an (N, C, H, W) conv output."""
    return tuple(sorted(range(a.ndim), key=lambda ax: (a.shape[ax] != 1, -a.strides[ax])))


class AccumulatorRequantizer:
    """Accumulators -> quantized outputs, as TFLite's Conv/FullyConnected epilogue:
    ``clamp(MultiplyByQuantizedMultiplier(acc + offset) + zero_point, act_min, act_max)``.

    Accumulators are exact integers in any dense layout (float32/float64 from BLAS, or
    ints). ``multiplier``, ``shift`` and ``offset`` (the int32 bias minus the
    input-zero-point correction) broadcast against them: ``(N,)`` per channel of a Gemm,
    ``(1, C, H, W)`` per channel and pixel of a Conv. The output keeps the accumulators'
    memory layout. ``wide=True`` selects the int64 multiply of TFLite's 16x8 kernels,
    ``single_rounding=True`` the one rounding of FULLY_CONNECTED (ruy's, see the module doc);
    ``acc_bound`` bounds ``|acc|`` and sets the float fast path's error budget.

    >>> import numpy as np
    >>> rq = AccumulatorRequantizer([1 << 30], [-4], [0], zero_point=-128, act_min=-128,
    ...                             act_max=127, dtype="int8", acc_bound=1000)
    >>> rq(np.array([[40.0]], np.float32))  # 40 / 32 = 1.25 -> 1, plus the zero point
    array([[-127]], dtype=int8)
    """

    def __init__(self, multiplier, shift, offset, *, zero_point: int, act_min: int,
                 act_max: int, dtype: str, acc_bound: float, wide: bool = False,
                 single_rounding: bool = False) -> None:
        m, s, o = np.broadcast_arrays(_as_int64(multiplier), _as_int64(shift),
                                      _as_int64(offset))
        self.zero_point, self.act_min, self.act_max = int(zero_point), int(act_min), int(act_max)
        self.dtype = np.dtype(dtype)
        self.wide = wide
        self.single_rounding = single_rounding and not wide
        self._narrow = not wide and (self.single_rounding or not np.any(s > 0))
        constants = {"multiplier": m, "shift": s, "offset": o}
        if self._narrow:
            total, d_pos, d_neg, negative_below = closed_form(m, s, self.single_rounding)
            constants.update(total=total, d_pos=d_pos, d_neg=d_neg,
                             negative_below=negative_below)
        self._constants = {k: np.ascontiguousarray(v) for k, v in constants.items()}
        self._fast = self._fast_constants(float(acc_bound)) if self._narrow else None
        self._small = self._small_constants(float(acc_bound)) if self._narrow else None
        self._by_order: dict[tuple, dict[str, np.ndarray]] = {}
        self._slab_cache: dict[tuple, list] = {}
        self._scratch: tuple[np.ndarray, ...] = ()
        #: How many values the fast path recomputed exactly so far (near-integer quotients).
        self.exact_fixups = 0

    # ---------------------------------------------------------------- exact
    def exact(self, x: np.ndarray, constants: dict[str, np.ndarray] | None = None
              ) -> np.ndarray:
        """Requantized int64 values of int64 accumulators ``x`` (offset not yet added);
        ``constants`` (default: the logical ones) must broadcast against ``x``."""
        c = self._constants if constants is None else constants
        x = x + c["offset"]
        if self.wide:
            y = multiply_by_quantized_multiplier_int64(x, c["multiplier"], c["shift"])
        elif self._narrow:
            d = np.where(x < c["negative_below"], c["d_neg"], c["d_pos"])
            y = (x * c["multiplier"] + d) >> c["total"]
        else:
            y = multiply_by_quantized_multiplier(x, c["multiplier"], c["shift"])
        return np.clip(y + self.zero_point, self.act_min, self.act_max)

    def __call__(self, acc: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The requantized ``acc``, written into ``out`` when given (same shape)."""
        if self._fast is None or acc.dtype != np.float32 or acc.size < FAST_PATH_MIN_ELEMENTS:
            if self._small_fits(acc):
                y = self._small_path(acc)
            else:
                y = self.exact(acc.astype(np.int64))
            if out is None:
                return y.astype(self.dtype)
            out[...] = y
            return out
        order = memory_order(acc)
        acc_t = np.ascontiguousarray(acc.transpose(order))
        if out is None:
            out_t = np.empty(acc_t.shape, self.dtype)
            self._fast_path(acc_t, out_t, self._ordered(order, acc.ndim), (order, acc_t.shape))
            return out_t.transpose(np.argsort(order))
        # Any layout of ``out`` works: the results are written through a transposed view.
        self._fast_path(acc_t, out.transpose(order), self._ordered(order, acc.ndim),
                        (order, acc_t.shape))
        return out

    def _ordered(self, order: tuple[int, ...], ndim: int) -> dict[str, np.ndarray]:
        """Fast-path constants laid out like ``acc.transpose(order)``."""
        key = (order, ndim)
        found = self._by_order.get(key)
        if found is None:
            found = {}
            for name, value in {**self._constants, **self._fast["arrays"]}.items():
                full = value.reshape((1,) * (ndim - value.ndim) + value.shape)
                found[name] = np.ascontiguousarray(full.transpose(order))
            # Everything the exact recomputation needs, stacked: one gather per call.
            found["exact_table"] = np.stack([found[k] for k in _EXACT_NAMES])
            self._by_order[key] = found
        return found

    # ---------------------------------------------------------------- small
    def _small_constants(self, acc_bound: float) -> dict | None:
        """float64 form of the closed form, exact when ``|acc*M| + |offset*M + D| < 2**53``:
        then ``acc * M/2**S + (offset*M + D)/2**S`` is computed without rounding (every
        term and the sum are representable), and its floor is the integer result. Fewer,
        cheaper numpy calls than int64 arithmetic: what small (batch-1) tensors need."""
        c = self._constants
        m = c["multiplier"].astype(np.float64)
        k = c["offset"] * c["multiplier"] + c["d_pos"]
        k_max = float(np.max(np.abs(k), initial=0))
        if k_max >= 2.0**52:
            return None
        m_max = float(np.max(m, initial=0.0))
        scale = np.ldexp(1.0, -c["total"])
        adjust = (c["d_pos"] - c["d_neg"]) * scale
        negative = bool(np.any(adjust)) and self.act_min < self.zero_point
        return {"m": m * scale, "k": k * scale,
                "adjust": adjust if negative else None,
                "threshold": (c["negative_below"] - c["offset"]).astype(np.float64),
                # |acc| below this keeps every term exact; checked on the data when the
                # static bound is larger (weights' worst case is rarely reached)
                "acc_limit": (2.0**52 - k_max) / max(m_max, 1.0),
                "static_ok": acc_bound * m_max + k_max < 2.0**52}

    def _small_fits(self, acc: np.ndarray) -> bool:
        s = self._small
        return s is not None and acc.dtype.kind == "f" and (
            s["static_ok"] or float(np.max(np.abs(acc), initial=0.0)) < s["acc_limit"])

    def _small_path(self, acc: np.ndarray) -> np.ndarray:
        s = self._small
        w = acc * s["m"]
        w += s["k"]
        if s["adjust"] is not None:
            np.subtract(w, s["adjust"], out=w, where=acc < s["threshold"])
        np.floor(w, out=w)
        # The zero point joins after the floor: added before, it could push the sum past
        # 53 significant bits when the shift is large.
        w += self.zero_point
        return np.clip(w, self.act_min, self.act_max, out=w)

    # ----------------------------------------------------------------- fast
    def _fast_constants(self, acc_bound: float) -> dict | None:
        """Float32 constants of ``w = acc * ms + kp = 512 + bias8 + v``, ``v`` the closed
        form's real quotient plus the zero point (``bias8`` = 256 for int8). In [512, 1024)
        a float32's mantissa is ``w - 512`` in fixed point with 14 fraction bits, so the low
        byte of ``bits >> 14`` is ``floor(v)`` as uint8, or as int8's two's complement
        thanks to the 256, and ``bits & 0x3FFF`` is the fraction: both read off the
        float's bits, with no conversion pass."""
        if self.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
            return None
        c = self._constants
        bias8 = 256 if self.dtype == np.int8 else 0
        lo, hi = self.act_min + bias8, self.act_max + bias8
        if not 0 <= lo <= hi <= 511:
            return None
        scale = np.ldexp(1.0, -c["total"])  # 2**-S, exact
        ms = c["multiplier"] * scale
        kp_exact = (c["offset"] * c["multiplier"] + c["d_pos"]) * scale \
            + (self.zero_point + bias8 + _BINADE)
        # float32 rounding of ms, kp, the product, the sum and the tie subtraction: each
        # < 2**-24 relative. Values whose exact w is outside [0, 2 * 1024] are off by far
        # less than their distance to the clamp range and clamp right; inside it
        # |acc * ms| <= 2048 + |kp|.
        k_max = float(np.max(np.abs(kp_exact), initial=0.0))
        product = min(acc_bound * float(np.max(ms, initial=0.0)), 4 * _BINADE + k_max)
        error_v = (2 * product + k_max + 4 * _BINADE) * 2.0**-24
        error = int(math.ceil(error_v * (1 << _FRACTION_BITS))) + 1
        if error > _MAX_ERROR_UNITS:
            return None
        adjust = (c["d_pos"] - c["d_neg"]) * scale  # 2**-right_shift, or 0
        # A negative SRDHM result only lowers values <= zero_point: moot when clamped there.
        needs_negative = bool(np.any(adjust)) and self.act_min < self.zero_point
        arrays = {"ms": ms.astype(np.float32),
                  "kp": (kp_exact + error * 2.0**-_FRACTION_BITS).astype(np.float32)}
        if needs_negative:
            # |acc| <= acc_bound: a threshold beyond it decides like one just past it, and
            # the clipped one is exact in float32.
            limit = min(acc_bound + 1.0, 2.0**24)
            arrays["adjust"] = adjust.astype(np.float32)
            arrays["threshold"] = np.clip(c["negative_below"] - c["offset"], -limit,
                                          limit).astype(np.float32)
        shifted = np.array([_BINADE + lo + 0.5, _BINADE + hi + 0.5], np.float32).view(
            np.int32) >> _FRACTION_BITS
        return {
            "arrays": arrays,
            "names": tuple(arrays),
            "lo": np.int32(shifted[0]),  # the binade's exponent bits above floor(v) + bias8
            "hi": np.int32(shifted[1]),
            "window": 2 * error,
        }

    def _slabs(self, acc: np.ndarray, c: dict[str, np.ndarray], key: tuple) -> list:
        """Cache-sized slabs of the first non-trivial axis (contiguous ranges of the flat
        array), each with its first flat index and its constants."""
        found = self._slab_cache.get(key)
        if found is None:
            axis = next((a for a, n in enumerate(acc.shape) if n > 1), 0)
            per_index = acc.size // max(acc.shape[axis], 1)
            step = max(1, _SLAB_ELEMENTS // max(per_index, 1))
            lead = (slice(None),) * axis
            found = []
            for start in range(0, acc.shape[axis], step):
                part = lead + (slice(start, start + step),)
                found.append((part, start * per_index,
                              [c[k][part] if c[k].shape[axis] > 1 else c[k]
                               for k in self._fast["names"]]))
            self._slab_cache[key] = found
            size = step * per_index
            if not self._scratch or self._scratch[0].size < size:
                self._scratch = (np.empty(size, np.float32), np.empty(size, np.int32),
                                 np.empty(size, np.bool_))
        return found

    def _fast_path(self, acc: np.ndarray, out: np.ndarray, c: dict[str, np.ndarray],
                   key: tuple) -> None:
        """``acc`` C-contiguous, ``out`` and ``c`` laid out like it. Works through
        cache-sized slabs, so that the passes run on data in L2 instead of streaming every
        temporary through memory; then recomputes the flagged near-integers exactly."""
        near: list[np.ndarray] = []
        for part, first, consts in self._slabs(acc, c, key):
            flagged = self._fast_slab(acc[part], out[part], *consts)
            if flagged.size:
                near.append(flagged + first)
        if near:
            near_integer = np.concatenate(near)
            self.exact_fixups += int(near_integer.size)
            where = np.unravel_index(near_integer, acc.shape)
            table = c["exact_table"]
            picked = table[(slice(None),) + tuple(i if n > 1 else 0 for i, n in
                                                  zip(where, table.shape[1:], strict=True))]
            constants = dict(zip(_EXACT_NAMES, picked, strict=True))
            out[where] = self.exact(acc[where].astype(np.int64), constants)

    def _fast_slab(self, acc: np.ndarray, out: np.ndarray, ms: np.ndarray, kp: np.ndarray,
                   adjust: np.ndarray | None = None, threshold: np.ndarray | None = None
                   ) -> np.ndarray:
        """Requantize one slab; returns the flat indices (in the slab) of the values whose
        float result was too close to an integer to trust."""
        f = self._fast
        size = acc.size
        w = self._scratch[0][:size].reshape(acc.shape)
        z = self._scratch[1][:size].reshape(acc.shape)
        flags = self._scratch[2][:size].reshape(acc.shape)
        np.multiply(acc, ms, out=w)
        np.add(w, kp, out=w)
        if threshold is not None:
            np.less(acc, threshold, out=flags)
            np.subtract(w, adjust, out=w, where=flags)
        bits = w.view(np.int32)
        # For a positive float the int32 bit pattern grows with the value, and a negative
        # one is a negative int32: shifting, then clamping in the integer domain, clamps
        # the value itself. The output takes the low byte: floor(v) (+ 256 for int8).
        np.right_shift(bits, _FRACTION_BITS, out=z)
        np.clip(z, f["lo"], f["hi"], out=z)
        np.copyto(out.view(np.uint8), z, casting="unsafe")
        # Outside the binade these bits are no fraction: a few extra exact recomputations.
        np.bitwise_and(bits, (1 << _FRACTION_BITS) - 1, out=z)
        np.less(z, f["window"], out=flags)
        return _sparse_nonzero(flags)

__all__ = [
    "FAST_PATH_MIN_ELEMENTS",
    "memory_order",
    "INT32_MAX",
    "AccumulatorRequantizer",
    "INT32_MIN",
    "apply_multiplier",
    "closed_form",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_int64",
    "multiply_by_quantized_multiplier_single",
    "quantize_multiplier",
    "quantize_multiplier_smaller_than_one_exp",
    "reduced_multiplier",
    "rounding_divide",
    "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul",
]
