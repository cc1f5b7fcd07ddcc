"""MatMul: numpy.matmul semantics (batched, 1-D promotion), optional fused activation."""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives.blas import matmul as blas_matmul
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.fused_activation import inplace_activation
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("MatMul")
def matmul(ctx: KernelContext) -> Kernel:
    activation = inplace_activation(ctx.fused_activation, ctx.output_dtype())
    out = ctx.output_buffer()
    weight = ctx.const(1)
    if weight is not None and weight.ndim >= 2 and not weight.flags.c_contiguous:
        weight = np.ascontiguousarray(weight)

    if weight is not None:
        def matmul_const(a, b):
            y = blas_matmul(a, weight, out=out)
            if activation is not None:
                activation(y)
            return y

        return matmul_const

    def matmul_any(a, b):
        y = blas_matmul(a, b, out=out)
        if activation is not None:
            activation(y)
        return y

    return matmul_any
