"""Add, Sub, Mul, Div, Pow — and the variadic Sum, Mean, Max, Min — with numpy broadcasting,
and the activation a fusion pass may have marked on Add.

Each operand is read in the cheapest way its shape allows (the kernel's shape class):
``full`` (same size as the output: ``a[i]``), ``one`` (a scalar: ``a[0]``), ``tail`` (the
output's trailing dims, e.g. a bias: ``a[i % size]``) or ``strided`` (general broadcasting
through a dims/strides table). Constant operands are uploaded once per session.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import UnsupportedOpError
from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import element_launch, size_of, static_shape
from runtime.providers.gpu.launch import Bind, GPUKernelEnv, Launch
from runtime.providers.gpu.pipelines import activation_key, activation_wgsl, f32_literal
from runtime.providers.gpu.registry import float_tensors, gpu_kernel, is_constant

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
    exponent = node.inputs[1]
    if not is_constant(exponent) or exponent.shape not in ((), (1,)):
        return "Pow with an exponent that is not a constant scalar"
    return None


def operand(env: GPUKernelEnv, ctx: KernelContext, i: int) -> tuple[tuple[int, ...], Bind]:
    """Input ``i`` as (shape, binding): a run-time argument, or a constant uploaded once."""
    shape = static_shape(ctx, i)
    data = ctx.const(i)
    if data is not None:
        return shape, Bind.fixed(env.buffers.float_constant(np.asarray(data, np.float32)).buffer)
    return shape, Bind.input(i)


def binary_launch(env: GPUKernelEnv, expr: str, operands: list[tuple[tuple[int, ...], Bind]],
                  out_shape: tuple[int, ...], out_buffer, act: tuple = (),
                  what: str = "binary") -> Launch:
    """``y = act(expr)`` over ``out_shape`` with the operands named ``a`` (and ``b``)."""
    if len(out_shape) > MAX_RANK:
        raise UnsupportedOpError(f"{what} on rank {len(out_shape)} (the GPU kernel handles "
                                 f"up to {MAX_RANK})")
    classes, bindings, decls, fns = [], [], [], []
    params: dict = {"rank": len(out_shape), "dims": out_shape}
    for slot, (shape, bind) in enumerate(operands):
        name = "ab"[slot]
        cls = operand_class(shape, out_shape)
        classes.append(cls)
        # A chunked launch splits "full" operands with the output; others are bound whole.
        bindings.append(Bind(arg=bind.arg, buffer=bind.buffer,
                             row_bytes=4 if cls == "full" else 0))
        params[f"{name}_size"] = size_of(shape)
        params[f"{name}_strides"] = broadcast_strides(shape, out_shape)
        decls.append(f"@group(0) @binding({slot + 1}) var<storage, read> {name}_data: "
                     "array<f32>;")
        if cls == "strided":
            fns.append(strided_fn(name))
    decls.append(f"@group(0) @binding({len(operands) + 1}) var<storage, read_write> y: "
                 "array<f32>;")
    bindings.append(Bind.fixed(out_buffer, row_bytes=4))
    loads = "\n  ".join(f"let {'ab'[k]} = {'ab'[k]}_data[{index_expr('ab'[k], c)}];"
                        for k, c in enumerate(classes))
    fields = [("rank", "u32"), ("dims", f"u32[{MAX_RANK}]"), ("a_size", "u32"),
              ("b_size", "u32"), ("a_strides", f"u32[{MAX_RANK}]"),
              ("b_strides", f"u32[{MAX_RANK}]")]
    return element_launch(
        env, ("binary", "float32", expr, tuple(classes), act), fields, "\n".join(decls),
        f"{loads}\n  y[i] = act({expr});", bindings, size_of(out_shape), params,
        extra_wgsl=activation_wgsl(act) + "".join(fns), what=what)


@gpu_kernel(*_OPS, "Pow", check=_check)
def binary(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    out_shape = static_shape(ctx)
    out = env.buffers.tensor(out_shape, what=ctx.node.name)
    op = ctx.node.op_type
    if op == "Pow":
        expr = _pow_expression(float(np.asarray(ctx.const(1)).reshape(-1)[0]))
        operands = [operand(env, ctx, 0)]
    else:
        expr = _OPS[op]
        operands = [operand(env, ctx, 0), operand(env, ctx, 1)]
    launch = binary_launch(env, expr, operands, out_shape, out.buffer,
                           activation_key(ctx.fused_activation), what=op)

    def run(a, b=None):
        launch(a, b)
        return out

    return run


_VARIADIC = {"Sum": "a + b", "Mean": "a + b", "Max": "max(a, b)", "Min": "min(a, b)"}


@gpu_kernel(*_VARIADIC, check=float_tensors)
def variadic(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    """Sum/Mean/Max/Min of any number of inputs (numpy broadcasting), folded pairwise
    through two scratch buffers; Mean divides at the end."""
    out_shape = static_shape(ctx)
    out = env.buffers.tensor(out_shape, what=ctx.node.name)
    op = ctx.node.op_type
    inputs = [operand(env, ctx, i) for i in range(ctx.num_inputs)]
    steps: list[Launch] = []
    if len(inputs) == 1:
        steps.append(binary_launch(env, "a", inputs, out_shape, out.buffer, what=op))
    scratch = [env.buffers.tensor(out_shape) for _ in range(min(2, len(inputs) - 2))] \
        if len(inputs) > 2 else []
    acc = inputs[0]
    for k in range(1, len(inputs)):
        last = k == len(inputs) - 1
        expr = _VARIADIC[op]
        if last and op == "Mean":
            expr = f"({expr}) * {f32_literal(1.0 / len(inputs))}"
        target = out if last else scratch[k % len(scratch)]
        steps.append(binary_launch(env, expr, [acc, inputs[k]], out_shape, target.buffer,
                                   what=op))
        acc = (out_shape, Bind.fixed(target.buffer))

    def run(*xs):
        for launch in steps:
            launch(*xs)
        return out

    return run
