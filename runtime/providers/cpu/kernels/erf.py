"""Erf with a fast float32 path, and the float32 exact Gelu (a table of Phi).

numpy has no erf. For float32 a rational approximation in x^2 (the one Eigen and
TensorFlow use for float) gives < 5e-7 absolute error, its two polynomials evaluated
together by one small GEMM over a table of powers; float64 uses the
series/continued-fraction erf of ``edgefw.ir.primitives.special`` (~1e-14).
"""

from __future__ import annotations

import math

import numpy as np

from edgefw.ir.primitives.elementwise import clamp
from edgefw.ir.primitives.special import erf as erf_float64
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.unary_kernel import unary_kernel
from runtime.providers.cpu.registry import cpu_kernel

# Numerator (odd in x) and denominator (even) coefficients, highest power of x^2 first.
_NUM = np.array([-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                 -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                 -1.60960333262415e-02], dtype=np.float32)
_DEN = np.array([-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                 -7.37332916720468e-03, -1.42647390514189e-02], dtype=np.float32)
_CLAMP = np.float32(4.0)  # erf(4) == 1 in float32


# Both polynomials by ascending power of x^2 (x^0 .. x^12), the denominator zero-padded:
# one (2, 7) @ (7, n) product evaluates P and Q for n values at once.
_POWERS = len(_NUM)
_RATIONAL = np.stack([_NUM[::-1], np.concatenate([_DEN[::-1],
                                                  np.zeros(_POWERS - len(_DEN), np.float32)])])
# Values per pass: the (7, n) table of powers stays in L2.
_CHUNK = 16384
_MIN_SQUARE = np.float32(1e-4)


def _rational_parts(x2: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """(2, n): ``coefficients @ [1, x2, x2**2, ... x2**6]`` for a 1-D float32 ``x2``.

    At batch 1 numpy's cost is per call: Horner's rule takes two calls per coefficient
    (24 for erf), the table of powers and one GEMM take eight (19 -> 12 us, 2048 values).
    The sums have no cancellation worth a bit here (the terms share their sign).
    """
    powers = np.empty((_POWERS, x2.size), np.float32)
    powers[0] = 1
    powers[1] = x2
    for k in range(2, _POWERS):  # (multiply.accumulate along axis 0 is 10x slower)
        np.multiply(powers[k - 1], x2, out=powers[k])
    return np.matmul(coefficients, powers)


def _odd_rational(x: np.ndarray, limit: np.float32, coefficients: np.ndarray) -> np.ndarray:
    """``xc * P(xc**2) / Q(xc**2)`` with ``xc`` = x clamped to +-limit, x 1-D float32."""
    xc = clamp(x, -limit, limit)
    result = np.empty_like(xc)
    for start in range(0, xc.size, _CHUNK):
        part = xc[start:start + _CHUNK]
        # x^2 >= 1e-4: the coefficient times x^12 of a value near 0 would be a subnormal
        # float, ~100x slower to multiply; P and Q are flat there (erf changes < 6e-7).
        x2 = clamp(np.square(part), _MIN_SQUARE, None)
        pq = _rational_parts(x2, coefficients)
        np.multiply(pq[0], part, out=pq[0])
        np.divide(pq[0], pq[1], out=result[start:start + _CHUNK])
    return result


def erf_float32(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """erf of a float32 (or float16, computed in float32) array; ``out`` may be ``x``."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    y = _odd_rational(flat, _CLAMP, _RATIONAL).reshape(x.shape)
    if out is None:
        return y.astype(x.dtype, copy=False)
    np.copyto(out, y, casting="same_kind")
    return out


# Exact GELU for large arrays, x * (1 + erf(x / sqrt 2)) / 2, as x * (1/2 + xc * P'/Q') with
# the 1/sqrt 2 and the 1/2 folded into the coefficients (P'(x^2) = P(x^2 / 2) / (2 sqrt 2), ...).
_SCALE = np.float64(1 / np.sqrt(2))
_GELU_RATIONAL = (_RATIONAL.astype(np.float64) * (_SCALE ** (2 * np.arange(_POWERS)))
                  * np.array([[_SCALE / 2], [1.0]])).astype(np.float32)
_GELU_CLAMP = np.float32(_CLAMP / _SCALE)


def _gelu_rational(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    half_erf = _odd_rational(flat, _GELU_CLAMP, _GELU_RATIONAL)
    np.add(half_erf, np.float32(0.5), out=half_erf)
    return np.multiply(half_erf.reshape(x.shape), x, out=out)


# Small arrays: exact GELU, x * Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2, from a table: Phi
# interpolated linearly between knots 1/256 apart on [-6, 6] (error < 5e-7 in Phi, times |x|
# in GELU; Phi(6) = 1 - 1e-9). Eight numpy calls a value (scale, clamp twice, index, gather,
# multiply-add, times x) where the rational form takes fourteen: 17 -> 11 us for 2048 values
# (a transformer MLP at batch 1). Past ~16k values the gather and the int64 index leave the
# cache and the rational form is faster. The clamp is fmax/fmin, which turn NaN into a bound,
# so the index is always valid; NaN comes back through the final ``* x``.
GELU_TABLE_MAX_SIZE = 8192
_GELU_STEPS = 256  # knots per unit of x
_GELU_RANGE = 6
_GELU_HALF = _GELU_STEPS * _GELU_RANGE  # knots on each side of 0


def _gelu_table() -> np.ndarray:
    """complex64 ``a + 1j * b`` per segment, with Phi(x) ~ a + b * (x * _GELU_STEPS).

    Segment 0 is below the range (Phi = 0), 1..2H the interpolated ones, 2H + 1 above (1).
    """
    knots = np.arange(-_GELU_HALF, _GELU_HALF + 1, dtype=np.float64)
    phi = 0.5 * np.array([math.erfc(-k / (_GELU_STEPS * math.sqrt(2.0))) for k in knots])
    slope = np.diff(phi)
    intercept = phi[:-1] - slope * knots[:-1]
    a = np.concatenate([[0.0], intercept, [1.0]])
    b = np.concatenate([[0.0], slope, [0.0]])
    return (a + 1j * b).astype(np.complex64)


_GELU_TABLE = _gelu_table()
_GELU_SCALE = np.float32(_GELU_STEPS)
_GELU_LOW = np.float32(-_GELU_HALF - 1)
_GELU_HIGH = np.float32(_GELU_HALF)
_GELU_OFFSET = np.float32(_GELU_HALF + 1)


def gelu_float32(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Exact (erf) GELU of a float32 array (< 5e-7 * max(1, |x|) from the true value);
    ``out`` may be ``x``."""
    if x.size > GELU_TABLE_MAX_SIZE:
        return _gelu_rational(x, out)
    return _gelu_table_lookup(np.asarray(x, dtype=np.float32), out)


def _gelu_table_lookup(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    v = np.multiply(x, _GELU_SCALE)
    np.fmax(v, _GELU_LOW, out=v)
    np.fmin(v, _GELU_HIGH, out=v)
    # v + offset >= 0, so the cast truncates to the segment's index.
    index = np.add(v, _GELU_OFFSET, out=np.empty(v.shape, np.intp), casting="unsafe")
    segment = _GELU_TABLE.take(index)
    phi = np.multiply(segment.imag, v, out=v)
    np.add(phi, segment.real, out=phi)
    return np.multiply(phi, x, out=out)


def erf(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """erf in the dtype of ``x``."""
    if x.dtype == np.float64:
        y = erf_float64(x)
        if out is not None:
            out[...] = y
            return out
        return y
    return erf_float32(x, out)


@cpu_kernel("Erf")
def erf_kernel(ctx: KernelContext) -> Kernel:
    return unary_kernel(ctx, erf)
