"""Slice: ONNX clamping rules mapped onto numpy basic slicing (a view)."""

from __future__ import annotations

import numpy as np

from edgefw.ir.schema.dims import normalize_axis
from edgefw.ir.schema.tensor import slice_bounds
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def onnx_slices(shape: tuple[int, ...], starts, ends, axes, steps) -> tuple[slice, ...]:
    """One Python slice per dim of ``shape`` implementing ONNX Slice."""
    index = [slice(None)] * len(shape)
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        a = normalize_axis(int(axis), len(shape), "Slice axis")
        lo, hi = slice_bounds(int(start), int(end), int(step), shape[a])
        # ONNX's "end = -1" (before index 0, going backwards) is Python's stop=None.
        index[a] = slice(lo, None if hi < 0 else hi, int(step))
    return tuple(index)


def _ints(a: np.ndarray | None) -> list[int] | None:
    return None if a is None else [int(v) for v in a.reshape(-1)]


@cpu_kernel("Slice", since=13, output_alias="view")
def slice_(ctx: KernelContext) -> Kernel:
    consts = [_ints(ctx.const(i)) if ctx.has_input(i) else None for i in range(1, 5)]
    all_const = all(ctx.const(i) is not None for i in range(1, 5) if ctx.has_input(i))
    static_in = ctx.static_input_shape(0)
    if all_const and static_in is not None:
        index = onnx_slices(static_in, *consts)

        def slice_static(x, *_params):
            return x[index]

        return slice_static

    def slice_dynamic(x, starts, ends, axes=None, steps=None):
        return x[onnx_slices(x.shape, _ints(starts), _ints(ends), _ints(axes), _ints(steps))]

    return slice_dynamic
