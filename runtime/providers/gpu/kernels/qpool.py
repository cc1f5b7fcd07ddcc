"""QAveragePool and QGlobalAveragePool (edgefw domain), as the CPU provider computes them
(TFLite's AVERAGE_POOL_2D and reference MEAN), exact:

- QAveragePool: the sum of the in-image taps of each window divided by their count,
  rounding half away from zero, clamped to the dtype (same scale in and out);
- QGlobalAveragePool: ``acc = sum(x - x_zp)`` rescaled by MBQM(multiplier, shift),
  divided by the pixel count rounding half away, plus ``y_zp``, clamped to the dtype.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir import Node
from edgefw.ir.schema.dims import resolve_pads
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import HEADER, size_of, static_shape
from runtime.providers.gpu.kernels.pooling import (
    POOL_FIELDS,
    pool_launch,
    pool_wgsl,
    window_fields,
)
from runtime.providers.gpu.kernels.qgemm import ACTIVATIONS
from runtime.providers.gpu.kernels.requantize import REQUANTIZE_WGSL, requantize_table
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.pipelines import GRID_WGSL, WORKGROUP, ParamLayout
from runtime.providers.gpu.registry import gpu_kernel

_ROUNDING_DIVIDE = """
fn rounding_divide(acc: i32, count: i32) -> i32 {
  let half = count / 2;
  if (acc > 0) { return (acc + half) / count; }
  return -((half - acc) / count);
}
"""

POOL_LAYOUT = ParamLayout(POOL_FIELDS + [("lo", "i32"), ("hi", "i32")])

_POOL = pool_wgsl("i32", "var acc = 0;\n  var count = 0;", "acc += v;\n      count += 1;",
                  "y[i] = clamp(rounding_divide(acc, max(count, 1)), p.lo, p.hi);")

GLOBAL_LAYOUT = ParamLayout([("n", "u32"), ("count", "u32"), ("x_zero", "i32"),
                             ("y_zero", "i32"), ("lo", "i32"), ("hi", "i32")])

_GLOBAL = """
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read> requant: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = group_index(wid, nwg) * 256u + lid;
  if (i >= p.n) { return; }
  var acc = 0;
  for (var j = 0u; j < p.count; j++) { acc += x[i * p.count + j] - p.x_zero; }
  let mean = rounding_divide(requantize(0u, acc), max(i32(p.count), 1));
  y[i] = clamp(mean + p.y_zero, p.lo, p.hi);
}
"""


def _check(node: Node) -> str | None:
    for v in (node.inputs[0], node.outputs[0]):
        if v.dtype not in ACTIVATIONS:
            return f"dtype {v.dtype} unsupported ({v.name}; int8 and uint8 are)"
        if v.shape is None:
            return f"{v.name} has an unknown rank"
    if node.op_type == "QAveragePool" and len(node.inputs[0].shape) != 4:
        return "QAveragePool on other than 2-D images unsupported"
    return None


def _dtype_range(ctx: KernelContext) -> tuple[int, int]:
    info = np.iinfo(ctx.node.outputs[0].dtype)
    return int(info.min), int(info.max)


@gpu_kernel("QAveragePool", check=_check, domain="edgefw")
def qaverage_pool(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    x_shape, y_shape = static_shape(ctx, 0), static_shape(ctx)
    kernel = [int(k) for k in ctx.attr("kernel_shape")]
    strides = [int(s) for s in (ctx.attr("strides") or [1, 1])]
    pads = resolve_pads(ctx.attr("auto_pad"), ctx.attr("pads"), x_shape[2:], kernel, strides,
                        [1, 1])
    out = env.buffers.tensor(y_shape, ctx.node.outputs[0].dtype, what=ctx.node.name)
    lo, hi = _dtype_range(ctx)
    fields = dict(window_fields(x_shape, y_shape, kernel, strides, pads, [1, 1]), lo=lo, hi=hi)
    return pool_launch(ctx, env, ("qaverage_pool", "int8"),
                       [POOL_LAYOUT.wgsl(), HEADER, GRID_WGSL, _ROUNDING_DIVIDE, _POOL],
                       POOL_LAYOUT, fields, x_shape, y_shape, out)


@gpu_kernel("QGlobalAveragePool", check=_check, domain="edgefw")
def qglobal_average_pool(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    x_shape = static_shape(ctx, 0)
    out = env.buffers.tensor(static_shape(ctx), ctx.node.outputs[0].dtype, what=ctx.node.name)
    count = size_of(x_shape[2:])
    planes = size_of(x_shape[:2])
    table = env.buffers.constant(ctx.node, "requantize", lambda _: requantize_table(
        [int(ctx.attr("multiplier"))], [int(ctx.attr("shift"))]))
    lo, hi = _dtype_range(ctx)
    fields = dict(count=count, x_zero=int(ctx.attr("x_zero_point")),
                  y_zero=int(ctx.attr("y_zero_point")), lo=lo, hi=hi)
    launch = env.launch(
        ("qglobal_average_pool", "int8"),
        lambda: "\n".join([GLOBAL_LAYOUT.wgsl(), HEADER, GRID_WGSL, REQUANTIZE_WGSL,
                           _ROUNDING_DIVIDE, _GLOBAL]),
        GLOBAL_LAYOUT,
        [Bind.input(0, row_bytes=4 * count), Bind.fixed(table), Bind.fixed(out.buffer,
                                                                           row_bytes=4)],
        lambda start, n: dict(fields, n=n), lambda n: env.grid(-(-n // WORKGROUP)),
        rows=planes, what=ctx.node.op_type)

    def run(x):
        launch(x)
        return out

    return run
