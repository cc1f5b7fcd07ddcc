"""MatMul: numpy.matmul semantics (batched, 1-D promotion), optional fused activation."""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives.blas import matmul as blas_matmul
from edgefw.ir.primitives.blas import matmul_for
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
    product = _product_for(ctx)

    if weight is not None:
        def matmul_const(a, b):
            y = product(a, weight, out=out)
            if activation is not None:
                activation(y)
            return y

        return matmul_const

    def matmul_any(a, b):
        y = product(a, b, out=out)
        if activation is not None:
            activation(y)
        return y

    return matmul_any


def _product_for(ctx: KernelContext):
    """np.matmul itself when static shapes show a product OpenBLAS keeps on one thread
    (batch-1 transformer layers: saves the policy's Python), else the policy's matmul."""
    a_shape, b_shape = ctx.static_input_shape(0), ctx.static_input_shape(1)
    out_shape = ctx.static_output_shape()
    if a_shape is None or b_shape is None or out_shape is None or not a_shape:
        return blas_matmul
    depth = a_shape[-1]
    return matmul_for(int(np.prod(out_shape, dtype=np.int64)) * int(depth))

