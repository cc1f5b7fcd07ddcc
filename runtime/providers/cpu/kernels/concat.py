"""Concat (into a preallocated buffer when the shape is static) and Split (views)."""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Concat", since=13)
def concat(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    out = ctx.output_buffer()

    def concat_(*xs):
        return np.concatenate(xs, axis=axis, out=out)

    return concat_


@cpu_kernel("Split", since=18, output_alias="view")
def split(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    n = len(ctx.node.outputs)
    const_sizes = ctx.const(1) if ctx.has_input(1) else None

    def split_(x, sizes=None):
        given = const_sizes if const_sizes is not None else sizes
        if given is not None:
            bounds = np.cumsum([int(s) for s in given.reshape(-1)])[:-1]
        else:
            dim = x.shape[axis]
            chunk = -(-dim // n)
            bounds = [chunk * i for i in range(1, n)]
        parts = tuple(np.split(x, bounds, axis=axis))
        return parts if n > 1 else parts[0]  # a one-output node returns its array

    return split_
