"""Dense (domain "edgefw"): ``x[..., K] @ w[K, N] + b[N]`` as one 2-D GEMM, bias in place.

:class:`~edgefw.ir.passes.FuseDensePass` makes it from a MatMul with a stacked input and a
constant weight followed by a constant bias Add. The stacked input is viewed as one
``[M, K]`` matrix (numpy's matmul would run ``[batch, seq, K] @ W`` one matrix per batch
item), the product goes into the preallocated output, and the bias and any fused activation
are applied there in place.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives.blas import matmul, matmul_for
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.fused_activation import inplace_activation
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Dense", domain="edgefw")
def dense(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()
    activation = inplace_activation(ctx.fused_activation, dtype)
    weight, bias = ctx.const(1), ctx.const(2)
    if weight is not None:
        weight = np.ascontiguousarray(weight)
    if bias is not None:
        bias = np.ascontiguousarray(bias)
    x_shape = ctx.static_input_shape(0)
    out = ctx.output_buffer()
    if weight is not None and bias is not None and x_shape is not None and out is not None:
        rows, depth = int(np.prod(x_shape[:-1], dtype=np.int64)), x_shape[-1]
        product = matmul_for(rows * weight.size)
        out_2d = out.reshape(rows, weight.shape[1])

        def dense_static(x, w, b):
            # (reshape copies only a non-contiguous input, as matmul would have)
            y = product(x.reshape(rows, depth), weight, out=out_2d)
            np.add(y, bias, out=y)
            if activation is not None:
                activation(y)
            return out

        return dense_static

    def dense_any(x, w, b):
        y = matmul(x.reshape(-1, x.shape[-1]), w)
        np.add(y, b, out=y)
        if activation is not None:
            activation(y)
        return y.reshape(x.shape[:-1] + (w.shape[1],))

    return dense_any
