"""QBatchMatMul (edgefw domain): TFLite's integer BATCH_MATMUL of two int8/uint8
activations, exact:

    y[b, m, n] = clamp(MBQM(sum_k (a[b, m, k] - zp_a) * (b[b, k, n] - zp_b), M, shift)
                       + zp_y, act_min, act_max)

one thread per output element, the i32 sum wrapping as the C++ does, then
``requantize.REQUANTIZE_WGSL`` (gemmlowp's double rounding, like the CPU kernel). The
leading (batch) axes of each operand are either all 1 or the output's: attention's
``(N, heads, S, D)`` products; other broadcasts stay on the CPU.
"""

from __future__ import annotations

from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import element_launch, size_of, static_shape
from runtime.providers.gpu.kernels.qgemm import ACTIVATIONS
from runtime.providers.gpu.kernels.requantize import REQUANTIZE_WGSL, requantize_table
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.registry import gpu_kernel


def _batched(shape: tuple, out_batch: tuple) -> bool | None:
    """Whether the operand has the output's batch axes (True), none but 1s (False), or
    some other broadcast (None). Symbolic dims compare by name."""
    lead = tuple(shape[:-2])
    if all(d == 1 for d in lead):
        return False
    padded = (1,) * (len(out_batch) - len(lead)) + lead
    return True if padded == tuple(out_batch) else None


def _check(node: Node) -> str | None:
    for v in (*node.inputs, node.outputs[0]):
        if v is None or v.dtype not in ACTIVATIONS:
            return f"dtype {None if v is None else v.dtype} unsupported (int8 and uint8 are)"
        if v.shape is None or len(v.shape) < 2:
            return f"{v.name}: needs a known rank >= 2"
    out_batch = tuple(node.outputs[0].shape[:-2])
    for v in node.inputs:
        if _batched(tuple(v.shape), out_batch) is None:
            return f"{v.name}: batch axes {list(v.shape[:-2])} broadcast partially"
    return None


@gpu_kernel("QBatchMatMul", check=_check, domain="edgefw")
def qbatch_matmul(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    out_shape = static_shape(ctx)
    a_shape, b_shape = static_shape(ctx, 0), static_shape(ctx, 1)
    rows, depth, cols = a_shape[-2], a_shape[-1], b_shape[-1]
    out_batch = tuple(out_shape[:-2])
    out = env.buffers.tensor(out_shape, ctx.node.outputs[0].dtype, what=ctx.node.name)
    attr = ctx.attr
    table = env.buffers.constant(ctx.node, "requantize", lambda _: requantize_table(
        [int(attr("multiplier"))], [int(attr("shift"))]))
    params = dict(rows=rows, depth=depth, cols=cols,
                  a_batched=int(bool(_batched(a_shape, out_batch))),
                  b_batched=int(bool(_batched(b_shape, out_batch))),
                  zp_a=int(attr("a_zero_point")), zp_b=int(attr("b_zero_point")),
                  zp_y=int(attr("y_zero_point")), act_min=int(attr("act_min")),
                  act_max=int(attr("act_max")))
    decls = """
@group(0) @binding(1) var<storage, read> a_data: array<i32>;
@group(0) @binding(2) var<storage, read> b_data: array<i32>;
@group(0) @binding(3) var<storage, read> requant: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<i32>;
"""
    body = """let g = p.base + i;
  let col = g % p.cols;
  let row = (g / p.cols) % p.rows;
  let batch = g / (p.cols * p.rows);
  let a_at = batch * p.a_batched * p.rows * p.depth + row * p.depth;
  let b_at = batch * p.b_batched * p.depth * p.cols + col;
  var acc = 0i;
  for (var k = 0u; k < p.depth; k++) {
    acc += (a_data[a_at + k] - p.zp_a) * (b_data[b_at + k * p.cols] - p.zp_b);
  }
  y[i] = clamp(requantize(0u, acc) + p.zp_y, p.act_min, p.act_max);"""
    fields = [("rows", "u32"), ("depth", "u32"), ("cols", "u32"), ("a_batched", "u32"),
              ("b_batched", "u32"), ("zp_a", "i32"), ("zp_b", "i32"), ("zp_y", "i32"),
              ("act_min", "i32"), ("act_max", "i32")]
    bindings = [Bind.input(0), Bind.input(1), Bind.fixed(table),
                Bind.fixed(out.buffer, row_bytes=4)]
    launch = element_launch(env, ("qbatch_matmul", "int8"), fields, decls, body, bindings,
                            size_of(out_shape), params, extra_wgsl=REQUANTIZE_WGSL,
                            what=ctx.node.op_type)

    def run(a, b):
        launch(a, b)
        return out

    return run
