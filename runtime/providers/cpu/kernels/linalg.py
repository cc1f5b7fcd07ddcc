"""Einsum (numpy.einsum with an optimized contraction order) and Det."""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Einsum", since=12)
def einsum(ctx: KernelContext) -> Kernel:
    equation = ctx.attr("equation").replace(" ", "")
    dtype = ctx.output_dtype()
    # A contraction of three or more operands benefits from a planned order.
    optimize = len(ctx.node.inputs) > 2

    def einsum_(*xs):
        # np.array copies: a one-operand einsum ("ij->ji") returns a view of its input.
        return np.array(np.einsum(equation, *xs, optimize=optimize), dtype=dtype)

    return einsum_


@cpu_kernel("Det", since=11)
def det(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()

    def det_(x):
        return np.asarray(np.linalg.det(x), dtype=dtype)

    return det_
