"""QGemm (edgefw domain): TFLite's integer FULLY_CONNECTED on the last axis, exact.

``y[..., n] = clamp(MBQM(sum_k w[n, k] * (x[..., k] - x_zp) + bias[n], multiplier[n],
shift[n]) + y_zp, act_min, act_max)`` on the tiled GEMM shader with int32 tiles and
accumulators; the int8 weights are uploaded once, packed four per word, and the
requantization is ``requantize.REQUANTIZE_WGSL`` with FULLY_CONNECTED's single rounding
(bit-exact with the CPU provider).
"""

from __future__ import annotations

import numpy as np

from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import size_of, static_shape
from runtime.providers.gpu.kernels.gemm_core import (
    FEW_ROWS,
    LAYOUT,
    TILE_M,
    integer_gemm_wgsl,
    tile_groups,
)
from runtime.providers.gpu.kernels.requantize import requantize_table
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.registry import gpu_kernel, is_constant
from runtime.providers.gpu.tensor import pack_int8

ACTIVATIONS = ("int8", "uint8")


def integer_check(node: Node, params: tuple[int, ...] = (1, 2, 3, 4)) -> str | None:
    """Integer ops on the GPU: int8/uint8 activations (not int16, the 16x8 mode) and
    constant weights and requantization parameters."""
    for v in (node.inputs[0], node.outputs[0]):
        if v.dtype not in ACTIVATIONS:
            return f"dtype {v.dtype} unsupported ({v.name}; the GPU integer kernels take " \
                   "int8 and uint8)"
        if v.shape is None:
            return f"{v.name} has an unknown rank"
    for i in params:
        v = node.inputs[i] if i < len(node.inputs) else None
        if v is not None and not is_constant(v):
            return f"input {i} ({v.name}) is computed at run time; it must be a constant"
    if len(node.inputs) > 1 and node.inputs[1] is not None and 1 in params \
            and node.inputs[1].dtype != "int8":
        return f"weight dtype {node.inputs[1].dtype} unsupported"
    return None


def requant_buffers(env: GPUKernelEnv, ctx: KernelContext, channels: int,
                    single_rounding: bool = False):
    """Upload (once per session) the requantization table and the int32 bias."""
    table = env.buffers.constant(ctx.node, "requantize", lambda _: requantize_table(
        np.broadcast_to(np.asarray(ctx.const(2), np.int64).reshape(-1), (channels,)),
        np.broadcast_to(np.asarray(ctx.const(3), np.int64).reshape(-1), (channels,)),
        single_rounding))
    bias = ctx.const(4) if ctx.has_input(4) else None
    bias = np.zeros(channels, np.int32) if bias is None else np.asarray(bias, np.int32)
    return table, env.buffers.constant(ctx.node, "bias", lambda _: bias.reshape(-1))


def requant_params(ctx: KernelContext) -> dict:
    return dict(x_zero=int(ctx.attr("x_zero_point")), y_zero=int(ctx.attr("y_zero_point")),
                act_min=int(ctx.attr("act_min")), act_max=int(ctx.attr("act_max")))


@gpu_kernel("QGemm", check=integer_check, domain="edgefw")
def qgemm(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    x_shape, y_shape = static_shape(ctx, 0), static_shape(ctx)
    w = np.asarray(ctx.const(1))
    n, k = w.shape
    rows = size_of(x_shape[:-1])
    out = env.buffers.tensor(y_shape, ctx.node.outputs[0].dtype, what=ctx.node.name)
    weight = env.buffers.constant(w, "packed:kn", lambda q: pack_int8(np.ascontiguousarray(q.T)))
    table, bias = requant_buffers(env, ctx, n, single_rounding=True)  # as the CPU's QGemm
    fields = dict(n=n, k=k, sam=k, sak=1, sbk=n, sbn=1, b_z=0, col_z=0, nz=0,
                  **requant_params(ctx))
    few = rows <= FEW_ROWS
    launch = env.launch(
        ("qgemm", "int8", "few_rows" if few else "rows"),
        lambda: integer_gemm_wgsl("rows", "rows", few), LAYOUT,
        [Bind.input(0, row_bytes=4 * k), Bind.fixed(weight), Bind.fixed(table),
         Bind.fixed(bias), Bind.fixed(out.buffer, row_bytes=4 * n)],
        lambda start, count: dict(fields, m=count),
        lambda count: (*tile_groups(count, n, few, env.gpu.max_groups), 1), rows=rows,
        what=ctx.node.op_type, max_rows=env.gpu.max_groups * TILE_M)

    def run(x, *params):
        launch(x)
        return out

    return run


__all__ = ["ACTIVATIONS", "integer_check", "requant_buffers", "requant_params"]
