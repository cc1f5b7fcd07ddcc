"""MatMulInteger: numpy.matmul of (A - a_zero_point) and (B - b_zero_point), int32 result.

Exact integer arithmetic through float BLAS (DESIGN.md): with 8-bit operands each product
is at most 255 * 255 in magnitude, so when ``K * max|A'| * max|B'| < 2^24`` every partial
sum is an integer float32 holds exactly, and float32 matmul (any summation order, FMA or
not) gives the exact int32 result. Past that bound float64 is exact up to 2^53; past 2^31
the int32 result wraps as an int32 accumulator would (the spec allows overflow only in
the 32-bit accumulation).
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import UnsupportedOpError
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel

FLOAT32_EXACT = 2**24
FLOAT64_EXACT = 2**53


def zero_point_bound(dtype: np.dtype, zero_point: np.ndarray | None) -> int:
    """Largest |x - zero_point| over the 8-bit range of ``dtype`` (zero point constant or
    None; a runtime zero point may be anything in range)."""
    info = np.iinfo(dtype)
    if zero_point is None:
        return int(info.max) - int(info.min)
    z = zero_point.astype(np.int64)
    return int(max(np.max(z) - info.min, info.max - np.min(z))) if z.size else 0


def centered(x: np.ndarray, zero_point: np.ndarray | None) -> np.ndarray:
    """``x - zero_point`` as int32 (zero_point already shaped to broadcast)."""
    wide = x.astype(np.int32)
    if zero_point is not None:
        wide -= zero_point.astype(np.int32)
    return wide


def accumulation_dtype(k: int, a_bound: int, b_bound: int) -> np.dtype:
    """float32 or float64: the smallest float type in which a K-term dot product of
    integers bounded by a_bound and b_bound is exact."""
    bound = k * a_bound * b_bound
    if bound < FLOAT32_EXACT:
        return np.dtype(np.float32)
    if bound < FLOAT64_EXACT:
        return np.dtype(np.float64)
    raise UnsupportedOpError(f"an integer dot product of {k} terms bounded by {a_bound} * "
                             f"{b_bound} cannot be computed exactly")


def exact_int32(acc: np.ndarray, bound: int) -> np.ndarray:
    """A float accumulator holding exact integers -> int32, wrapping like int32 would."""
    if bound < 2**31:
        return acc.astype(np.int32)
    return acc.astype(np.int64).astype(np.int32)


def integer_matmul(a: np.ndarray, b: np.ndarray, a_bound: int, b_bound: int) -> np.ndarray:
    """Exact int32 ``np.matmul(a, b)`` of centered integer operands (see the module doc)."""
    k = a.shape[-1] if a.ndim else 1
    dtype = accumulation_dtype(k, a_bound, b_bound)
    acc = np.matmul(a.astype(dtype), b.astype(dtype))
    return exact_int32(np.asarray(acc), k * a_bound * b_bound)


def per_row(zero_point: np.ndarray | None, rank: int) -> np.ndarray | None:
    """A per-row parameter of a (vector of M) as [M, 1]; scalars and N-D ones unchanged."""
    if zero_point is None:
        return None
    if zero_point.ndim == 1 and zero_point.size > 1 and rank >= 2:
        return zero_point.reshape(-1, 1)
    if zero_point.size == 1:
        return zero_point.reshape(())
    return zero_point


def per_column(zero_point: np.ndarray | None) -> np.ndarray | None:
    """A per-column parameter of b: vectors broadcast along the last axis as they are."""
    if zero_point is None:
        return None
    return zero_point.reshape(()) if zero_point.size == 1 else zero_point


@cpu_kernel("MatMulInteger", since=10)
def matmul_integer(ctx: KernelContext) -> Kernel:
    a_zp_const = ctx.const(2) if ctx.has_input(2) else None
    b_zp_const = ctx.const(3) if ctx.has_input(3) else None
    b_const = ctx.const(1)
    a_dtype = np.dtype(ctx.input_types[0].dtype or "uint8")
    a_bound = zero_point_bound(a_dtype, a_zp_const if ctx.has_input(2) else np.zeros(1, a_dtype))
    b_centered = None
    if b_const is not None and (not ctx.has_input(3) or b_zp_const is not None):
        b_centered = centered(b_const, per_column(b_zp_const))
        b_bound = int(np.max(np.abs(b_centered))) if b_centered.size else 0
    else:
        b_bound = zero_point_bound(np.dtype(ctx.input_types[1].dtype or "uint8"), None)

    def matmul_integer_(a, b, a_zero_point=None, b_zero_point=None):
        a_c = centered(a, per_row(a_zero_point, a.ndim))
        b_c = b_centered if b_centered is not None else centered(b, per_column(b_zero_point))
        return integer_matmul(a_c, b_c, a_bound, b_bound)

    return matmul_integer_


__all__ = ["accumulation_dtype", "centered", "exact_int32", "integer_matmul", "per_column",
           "per_row", "zero_point_bound"]
