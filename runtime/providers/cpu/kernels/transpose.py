"""Transpose: a strided view (consumers such as matmul read it without a copy)."""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Transpose", output_alias="view")
def transpose(ctx: KernelContext) -> Kernel:
    perm = ctx.attr("perm")
    perm = None if perm is None else tuple(int(p) for p in perm)

    def transpose_(x):
        return np.transpose(x, perm)

    return transpose_
