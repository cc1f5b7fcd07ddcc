"""QAdd (edgefw domain): TFLite's integer ADD with numpy broadcasting, exact:

    x_i = MBQM((q_i - zp_i) << left_shift, M_i, s_i)          (i = a, b)
    y   = clamp(MBQM(x_a + x_b, M_y, s_y) + zp_y, act_min, act_max)

with int32 wrap-around where the C++ wraps (the shader's i32 arithmetic wraps too).
"""

from __future__ import annotations

from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.binary import (
    MAX_RANK,
    broadcast_strides,
    index_expr,
    operand_class,
    strided_fn,
)
from runtime.providers.gpu.kernels.common import element_launch, size_of, static_shape
from runtime.providers.gpu.kernels.qgemm import ACTIVATIONS
from runtime.providers.gpu.kernels.requantize import REQUANTIZE_WGSL, requantize_table
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.registry import gpu_kernel


def _check(node: Node) -> str | None:
    for v in (*node.inputs, node.outputs[0]):
        if v is None or v.dtype not in ACTIVATIONS:
            return f"dtype {None if v is None else v.dtype} unsupported (int8 and uint8 are)"
        if v.shape is None or len(v.shape) > MAX_RANK:
            return f"{v.name}: rank unknown or above {MAX_RANK}"
    return None


@gpu_kernel("QAdd", check=_check, domain="edgefw")
def qadd(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    out_shape = static_shape(ctx)
    out = env.buffers.tensor(out_shape, ctx.node.outputs[0].dtype, what=ctx.node.name)
    attr = ctx.attr
    table = env.buffers.constant(ctx.node, "requantize", lambda _: requantize_table(
        [int(attr("a_multiplier")), int(attr("b_multiplier")), int(attr("y_multiplier"))],
        [int(attr("a_shift")), int(attr("b_shift")), int(attr("y_shift"))]))
    classes, bindings, fns = [], [], []
    params = dict(rank=len(out_shape), dims=out_shape, zp_a=int(attr("a_zero_point")),
                  zp_b=int(attr("b_zero_point")), zp_y=int(attr("y_zero_point")),
                  left=int(attr("left_shift")), act_min=int(attr("act_min")),
                  act_max=int(attr("act_max")))
    for i, name in enumerate("ab"):
        shape = static_shape(ctx, i)
        cls = operand_class(shape, out_shape)
        classes.append(cls)
        bindings.append(Bind.input(i, row_bytes=4 if cls == "full" else 0))
        params[f"{name}_size"] = size_of(shape)
        params[f"{name}_strides"] = broadcast_strides(shape, out_shape)
        if cls == "strided":
            fns.append(strided_fn(name))
    bindings += [Bind.fixed(table), Bind.fixed(out.buffer, row_bytes=4)]
    decls = """
@group(0) @binding(1) var<storage, read> a_data: array<i32>;
@group(0) @binding(2) var<storage, read> b_data: array<i32>;
@group(0) @binding(3) var<storage, read> requant: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<i32>;
"""
    body = f"""let a = a_data[{index_expr('a', classes[0])}] - p.zp_a;
  let b = b_data[{index_expr('b', classes[1])}] - p.zp_b;
  let ra = requantize(0u, bitcast<i32>(bitcast<u32>(a) << p.left));
  let rb = requantize(1u, bitcast<i32>(bitcast<u32>(b) << p.left));
  y[i] = clamp(requantize(2u, ra + rb) + p.zp_y, p.act_min, p.act_max);"""
    fields = [("rank", "u32"), ("dims", f"u32[{MAX_RANK}]"), ("a_size", "u32"),
              ("b_size", "u32"), ("a_strides", f"u32[{MAX_RANK}]"),
              ("b_strides", f"u32[{MAX_RANK}]"), ("zp_a", "i32"), ("zp_b", "i32"),
              ("zp_y", "i32"), ("left", "u32"), ("act_min", "i32"), ("act_max", "i32")]
    launch = element_launch(env, ("qadd", "int8", tuple(classes)), fields, decls, body,
                            bindings, size_of(out_shape), params,
                            extra_wgsl=REQUANTIZE_WGSL + "".join(fns), what=ctx.node.op_type)

    def run(a, b):
        launch(a, b)
        return out

    return run
