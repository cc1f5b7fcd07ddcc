"""Add, Sub, Mul, Div, Pow with numpy broadcasting, and the activation a fusion pass may
have marked on Add.

Each operand is read in the cheapest way its shape allows (the kernel's shape class):
``full`` (same size as the output: ``a[i]``), ``one`` (a scalar: ``a[0]``), ``tail`` (the
output's trailing dims, e.g. a bias: ``a[i % size]``) or ``strided`` (general broadcasting
through a dims/strides table). Constant operands are uploaded once per session.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import element_launch, size_of, static_shape
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.pipelines import activation_key, activation_wgsl, f32_literal
from runtime.providers.gpu.registry import float_tensors, gpu_kernel

MAX_RANK = 8
_OPS = {"Add": "a + b", "Sub": "a - b", "Mul": "a * b", "Div": "a / b"}


def operand_class(shape: tuple[int, ...], out: tuple[int, ...]) -> str:
    size = size_of(shape)
    if size == size_of(out) and tuple(shape) == tuple(out[len(out) - len(shape):]):
        return "full"
    if size == 1:
        return "one"
    trimmed = list(shape)
    while trimmed and trimmed[0] == 1:
        trimmed.pop(0)
    if tuple(trimmed) == tuple(out[len(out) - len(trimmed):]):
        return "tail"
    return "strided"


def broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """Element strides of ``shape`` read at ``out``'s index (0 along broadcast dims)."""
    padded = (1,) * (len(out) - len(shape)) + tuple(shape)
    strides, step = [0] * len(out), 1
    for d in range(len(out) - 1, -1, -1):
        strides[d] = step if padded[d] != 1 else 0
        step *= padded[d]
    return strides


def index_expr(name: str, cls: str) -> str:
    if cls == "full":
        return "i"
    if cls == "one":
        return "0u"
    if cls == "tail":
        return f"(p.base + i) % p.{name}_size"
    return f"strided_{name}(p.base + i)"


def strided_fn(name: str) -> str:
    return f"""
fn strided_{name}(flat: u32) -> u32 {{
  var rest = flat;
  var at = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {{
    let u = u32(d);
    let dim = p.dims[u >> 2u][u & 3u];
    at += (rest % dim) * p.{name}_strides[u >> 2u][u & 3u];
    rest /= dim;
  }}
  return at;
}}
"""


def _pow_expression(exponent: float) -> str:
    if exponent == 2.0:
        return "a * a"
    if exponent == 3.0:
        return "a * a * a"
    if exponent == 1.0:
        return "a"
    if exponent == 0.5:
        return "sqrt(a)"
    if exponent == 0.0:
        return "1.0"
    e = f32_literal(exponent)
    if float(exponent).is_integer():
        odd = int(exponent) % 2 == 1
        magnitude = f"pow(abs(a), {e})"
        return f"select({magnitude}, -{magnitude}, a < 0.0)" if odd else magnitude
    # numpy gives NaN for a negative base with a fractional exponent; WGSL leaves it undefined.
    return f"select(pow(a, {e}), bitcast<f32>(0x7fc00000u), a < 0.0)"


def _check(node: Node) -> str | None:
    reason = float_tensors(node)
    if reason or node.op_type != "Pow":
        return reason
    from runtime.providers.gpu.registry import is_constant

    exponent = node.inputs[1]
    if not is_constant(exponent) or exponent.shape not in ((), (1,)):
        return "Pow with an exponent that is not a constant scalar"
    return None


@gpu_kernel(*_OPS, "Pow", check=_check)
def binary(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    out_shape = static_shape(ctx)
    n = size_of(out_shape)
    out = env.buffers.tensor(out_shape, what=ctx.node.name)
    act = activation_key(ctx.fused_activation)
    op = ctx.node.op_type
    operands = [0, 1]
    if op == "Pow":
        expr = _pow_expression(float(np.asarray(ctx.const(1)).reshape(-1)[0]))
        operands = [0]
    else:
        expr = _OPS[op]

    classes, bindings, params, decls, fns = [], [], {"rank": len(out_shape), "dims": out_shape}, \
        [], []
    constants: dict[int, object] = {}
    for slot, i in enumerate(operands):
        name = "ab"[i]
        shape = static_shape(ctx, i)
        cls = operand_class(shape, out_shape)
        classes.append(cls)
        data = ctx.const(i)
        if data is not None:
            constants[i] = env.buffers.float_constant(np.asarray(data, np.float32))
            bindings.append(Bind.fixed(constants[i].buffer))
        else:
            bindings.append(Bind.input(i, row_bytes=4 if cls == "full" else 0))
        params[f"{name}_size"] = size_of(shape)
        params[f"{name}_strides"] = broadcast_strides(shape, out_shape)
        decls.append(f"@group(0) @binding({slot + 1}) var<storage, read> {name}_data: "
                     "array<f32>;")
        if cls == "strided":
            fns.append(strided_fn(name))
    decls.append(f"@group(0) @binding({len(operands) + 1}) var<storage, read_write> y: "
                 "array<f32>;")
    bindings.append(Bind.fixed(out.buffer, row_bytes=4))
    if len(out_shape) > MAX_RANK:
        from edgefw.errors import UnsupportedOpError

        raise UnsupportedOpError(f"{op} on rank {len(out_shape)} (the GPU kernel handles "
                                 f"up to {MAX_RANK})")
    loads = "\n  ".join(f"let {'ab'[i]} = {'ab'[i]}_data[{index_expr('ab'[i], c)}];"
                        for i, c in zip(operands, classes, strict=True))
    body = f"{loads}\n  y[i] = act({expr});"
    fields = [("rank", "u32"), ("dims", f"u32[{MAX_RANK}]"), ("a_size", "u32"),
              ("b_size", "u32"), ("a_strides", f"u32[{MAX_RANK}]"),
              ("b_strides", f"u32[{MAX_RANK}]")]
    # A chunked launch must not split a non-"full" operand: bind those whole.
    launch = element_launch(
        env, ("binary", "float32", expr, tuple(classes), act), fields, "\n".join(decls), body,
        bindings, n, params, extra_wgsl=activation_wgsl(act) + "".join(fns),
        what=ctx.node.describe())

    def run(a, b=None):
        launch(a, b)
        return out

    return run
