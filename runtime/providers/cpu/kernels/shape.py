"""Shape (an int64 vector of the input's dims) and Expand (a broadcast copy)."""

from __future__ import annotations

import numpy as np

from edgefw.ir.schema.tensor import shape_op_range
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Shape", since=15)
def shape(ctx: KernelContext) -> Kernel:
    start, end = ctx.attr("start"), ctx.attr("end")

    def shape_(x):
        lo, hi = shape_op_range(x.ndim, start, end)
        return np.array(x.shape[lo:hi], dtype=np.int64)

    return shape_


@cpu_kernel("Expand", since=13)
def expand(ctx: KernelContext) -> Kernel:
    const_shape = ctx.const(1)

    def expand_(x, target):
        dims = tuple(int(d) for d in (const_shape if const_shape is not None else target))
        out_shape = np.broadcast_shapes(x.shape, dims)
        # A copy, not np.broadcast_to's read-only view: consumers may write in place.
        return np.array(np.broadcast_to(x, out_shape))

    return expand_
