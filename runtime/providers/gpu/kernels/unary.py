"""Elementwise unary ops on float32: one thread per element, chunked for huge tensors.

Gelu and Erf use an erfc fit with fractional error below 1.2e-7 (WGSL has no erf); Tanh
clamps its argument so no driver overflows exp() inside tanh.
"""

from __future__ import annotations

from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import element_launch, size_of, static_shape
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.pipelines import MATH_WGSL, f32_literal
from runtime.providers.gpu.registry import float_tensors, gpu_kernel

BINDINGS = """
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
"""

_SIMPLE = {
    "Relu": "max(v, 0.0)",
    "Sigmoid": "sigmoid(v)",
    "Tanh": "tanh_safe(v)",
    "Exp": "exp(v)",
    "Log": "log(v)",
    "Sqrt": "sqrt(v)",
    "Neg": "-v",
    "Abs": "abs(v)",
    "Reciprocal": "1.0 / v",
    "Erf": "erf_nr(v)",
}


def _expression(ctx: KernelContext) -> str:
    op = ctx.node.op_type
    if op in _SIMPLE:
        return _SIMPLE[op]
    if op == "LeakyRelu":
        return f"select(v, v * {f32_literal(ctx.attr('alpha'))}, v < 0.0)"
    if op == "Gelu":
        if ctx.attr("approximate") == "tanh":
            return "0.5 * v * (1.0 + tanh_safe(0.7978845608028654 * (v + 0.044715 * v * v * v)))"
        # 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2), accurate for x << 0 too.
        return "0.5 * v * erfc_nr(-v * 0.7071067811865476)"
    if op == "Clip":
        expr = "v"
        lo, hi = ctx.const(1) if ctx.has_input(1) else None, (
            ctx.const(2) if ctx.has_input(2) else None)
        if lo is not None:
            expr = f"max({expr}, {f32_literal(float(lo))})"
        if hi is not None:
            expr = f"min({expr}, {f32_literal(float(hi))})"
        return expr
    raise AssertionError(op)


def _check(node: Node) -> str | None:
    if node.op_type == "Clip":
        return float_tensors(node, params=(1, 2))
    return float_tensors(node)


@gpu_kernel(*_SIMPLE, "LeakyRelu", "Gelu", "Clip", check=_check)
def unary(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    shape = static_shape(ctx)
    n = size_of(shape)
    out = env.buffers.tensor(shape, what=ctx.node.name)
    expr = _expression(ctx)
    launch = element_launch(
        env, ("unary", "float32", expr), [], BINDINGS, f"let v = x[i];\n  y[i] = {expr};",
        [Bind.input(0, row_bytes=4), Bind.fixed(out.buffer, row_bytes=4)], n,
        extra_wgsl=MATH_WGSL, what=ctx.node.op_type)

    def run(x, *params):
        launch(x)
        return out

    return run
