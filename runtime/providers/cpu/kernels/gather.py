"""Gather along an axis; negative indices count from the end, out-of-range ones raise."""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Gather", since=13)
def gather(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))

    def gather_(data, indices):
        return np.take(data, indices, axis=axis)

    return gather_
