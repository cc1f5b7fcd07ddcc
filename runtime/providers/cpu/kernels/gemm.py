"""Gemm: alpha * A' @ B' + beta * C, with the activation a fusion pass may have marked.

With a constant B (every Linear layer) the weight is transposed, scaled by alpha and made
contiguous once at build time; beta * C is folded likewise. A call is then one matmul into
a preallocated buffer, one in-place bias add and one in-place activation.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives.blas import matmul, matmul_for
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.fused_activation import inplace_activation
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Gemm")
def gemm(ctx: KernelContext) -> Kernel:
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    trans_a, trans_b = bool(ctx.attr("transA")), bool(ctx.attr("transB"))
    dtype = ctx.output_dtype()
    activation = inplace_activation(ctx.fused_activation, dtype)
    out = ctx.output_buffer()

    weight = ctx.const(1)
    if weight is not None:
        weight = weight.T if trans_b else weight
        weight = np.ascontiguousarray(weight * dtype.type(alpha) if alpha != 1.0 else weight)
    bias = ctx.const(2) if ctx.has_input(2) else None
    if bias is not None:
        bias = np.ascontiguousarray(bias * dtype.type(beta) if beta != 1.0 else bias)
        if not bias.any():
            bias = None
    has_runtime_c = ctx.has_input(2) and ctx.const(2) is None

    if weight is not None and not trans_a and not has_runtime_c:
        # The hot path: y = x @ W' (+ b) (+ activation), everything else precomputed.
        a_shape = ctx.static_input_shape(0)
        product = matmul if a_shape is None else matmul_for(a_shape[0] * weight.size)

        def gemm_const_weight(a, b, c=None):
            y = product(a, weight, out=out)
            if bias is not None:
                np.add(y, bias, out=y)
            if activation is not None:
                activation(y)
            return y

        return gemm_const_weight

    scale = dtype.type(alpha)
    c_scale = dtype.type(beta)

    def gemm_general(a, b, c=None):
        a = a.T if trans_a else a
        if weight is not None:
            y = matmul(a, weight, out=out)
        else:
            y = matmul(a, b.T if trans_b else b, out=out)
            if alpha != 1.0:
                np.multiply(y, scale, out=y)
        if bias is not None:
            np.add(y, bias, out=y)
        elif c is not None and has_runtime_c:
            np.add(y, c * c_scale if beta != 1.0 else c, out=y)
        if activation is not None:
            activation(y)
        return y

    return gemm_general
