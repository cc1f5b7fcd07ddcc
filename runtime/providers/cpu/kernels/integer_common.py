"""What the integer kernels (QConv, QGemm, QDynamic*) share: reading their constant
parameters, choosing a float type in which BLAS sums integers exactly, and a reusable
float copy of an integer input.

Why float: numpy has no fast int8/int32 matrix product, but BLAS computes a product of
integer-valued float32 matrices exactly as long as every partial sum stays below 2**24
(float64: 2**53). With weights ``w`` and inputs bounded by ``x_max``, every partial sum of
output channel ``c`` is bounded by ``sum(|w[c]|) * x_max``; the kernels check that bound
once per layer when they are built and pick float32, float64, or refuse.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import UnsupportedOpError
from runtime.providers.base import KernelContext

#: Integer magnitudes float32 / float64 represent exactly (every integer up to these).
FLOAT32_EXACT = 2.0**24
FLOAT64_EXACT = 2.0**53


def constant_input(ctx: KernelContext, index: int, what: str) -> np.ndarray:
    """Constant input ``index``; UnsupportedOpError when it is computed at run time (the
    fusion pass only builds these ops with constant weights and parameters)."""
    data = ctx.const(index) if ctx.has_input(index) else None
    if data is None:
        raise UnsupportedOpError(f"{ctx.node.describe()}: the CPU provider needs the {what} "
                                 f"(input {index}) to be a constant")
    return np.asarray(data)


def magnitude(dtype: np.dtype | str) -> int:
    """Largest ``|x|`` of an integer dtype (128 for int8, 255 for uint8)."""
    info = np.iinfo(dtype)
    return max(-int(info.min), int(info.max))


def exact_float_dtype(bound: float, ctx: KernelContext, prefer64: bool = False) -> np.dtype:
    """float32 when every partial sum ``< bound`` is exact in it (and not ``prefer64``),
    else float64; UnsupportedOpError when not even float64 is exact."""
    if bound < FLOAT32_EXACT and not prefer64:
        return np.dtype(np.float32)
    if bound < FLOAT64_EXACT:
        return np.dtype(np.float64)
    raise UnsupportedOpError(f"{ctx.node.describe()}: integer sums up to {bound:.3g} are too "
                             "large to accumulate exactly")


def channel_sums(w: np.ndarray) -> np.ndarray:
    """``(sum(w[c]), sum(|w[c]|))`` over all but the first axis, as int64."""
    flat = w.reshape(w.shape[0], -1).astype(np.int64)
    return flat.sum(axis=1), np.abs(flat).sum(axis=1)


class FloatCopy:
    """A float copy of an integer input in the input's memory layout, written into a
    buffer reused across runs (a fresh array per run costs page faults on batch-256
    activations; keeping the layout keeps the copy a straight pass). Kernels that work
    through batch slabs see two shapes per run (full slabs and the last one): both are
    kept."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self._buffers: dict[tuple, np.ndarray] = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        key = (x.shape, tuple(np.argsort(x.strides)))
        buf = self._buffers.get(key)
        if buf is None:
            if len(self._buffers) >= 4:
                self._buffers.clear()
            buf = self._buffers[key] = np.empty_like(x, dtype=self.dtype)
        np.copyto(buf, x, casting="unsafe")
        return buf


__all__ = [
    "FLOAT32_EXACT",
    "FLOAT64_EXACT",
    "FloatCopy",
    "channel_sums",
    "constant_input",
    "exact_float_dtype",
    "magnitude",
]
