"""Hardmax: 1 at the first maximum along an axis, 0 elsewhere."""

from __future__ import annotations

import numpy as np

from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Hardmax", since=13)
def hardmax(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))

    def hardmax_(x):
        a = normalize_axis(axis, x.ndim, "Hardmax axis")
        y = np.zeros_like(x)
        if x.size:
            np.put_along_axis(y, np.expand_dims(np.argmax(x, axis=a), a), 1, axis=a)
        return y

    return hardmax_
