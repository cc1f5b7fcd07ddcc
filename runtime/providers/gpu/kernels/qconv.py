"""QConv (edgefw domain): TFLite's per-channel integer CONV_2D / DEPTHWISE_CONV_2D, exact.

The same two shapes as the float Conv: an implicit GEMM with int32 tiles (im2col reads
``x - x_zp``, and padding reads 0, which is the zero point), or — for depthwise convs and
few output channels per group — a direct kernel, one thread per output. Both end in
TFLite's fixed-point requantization (``requantize.REQUANTIZE_WGSL``).
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import HEADER, static_shape
from runtime.providers.gpu.kernels.conv import (
    DIRECT_BELOW,
    DIRECT_FIELDS,
    conv_geometry,
    direct_conv_main,
)
from runtime.providers.gpu.kernels.gemm_core import LAYOUT, TILE_M, integer_gemm_wgsl, tile_groups
from runtime.providers.gpu.kernels.qgemm import integer_check, requant_buffers, requant_params
from runtime.providers.gpu.kernels.requantize import REQUANTIZE_WGSL
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.pipelines import GRID_WGSL, WORKGROUP, ParamLayout
from runtime.providers.gpu.registry import gpu_kernel
from runtime.providers.gpu.tensor import pack_int8

INTEGER_DIRECT_LAYOUT = ParamLayout(DIRECT_FIELDS + [("x_zero", "i32"), ("y_zero", "i32"),
                                                     ("act_min", "i32"), ("act_max", "i32")])

_DIRECT = """
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read> requant: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<i32>;
@group(0) @binding(5) var<storage, read_write> y: array<i32>;

fn wload(e: u32) -> i32 {
  return bitcast<i32>(((wt[e >> 2u] >> ((e & 3u) * 8u)) & 0xffu) << 24u) >> 24u;
}

""" + direct_conv_main(
    "0", "(x[{x}] - p.x_zero) * wload({w})",
    "clamp(requantize(co, acc + bias[co]) + p.y_zero, p.act_min, p.act_max)")


@gpu_kernel("QConv", check=integer_check, domain="edgefw")
def qconv(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    g = conv_geometry(ctx)
    out = env.buffers.tensor(static_shape(ctx), ctx.node.outputs[0].dtype, what=ctx.node.name)
    w = np.asarray(ctx.const(1))
    w4 = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2]) if g["one_d"] else w
    pix = g["oh"] * g["ow"]
    depth = g["cin_g"] * g["kh"] * g["kw"]
    table, bias = requant_buffers(env, ctx, g["cout"])
    x_row, y_row = 4 * g["cin"] * g["h"] * g["w"], 4 * g["cout"] * pix
    requant = requant_params(ctx)

    if g["ng"] < DIRECT_BELOW or depth < DIRECT_BELOW:
        weight = env.buffers.constant(w, "packed:oihw", lambda q: pack_int8(q))
        per_image = g["cout"] * pix
        fields = {k: g[k] for k in ("cin", "h", "w", "oh", "ow", "cout", "ng", "cin_g", "kh",
                                    "kw", "sh", "sw", "pt", "pl", "dh", "dw")}
        launch = env.launch(
            ("qconv_direct", "int8"),
            lambda: "\n".join([INTEGER_DIRECT_LAYOUT.wgsl(), HEADER, GRID_WGSL, REQUANTIZE_WGSL,
                               _DIRECT]),
            INTEGER_DIRECT_LAYOUT,
            [Bind.input(0, row_bytes=x_row), Bind.fixed(weight), Bind.fixed(table),
             Bind.fixed(bias), Bind.fixed(out.buffer, row_bytes=y_row)],
            lambda start, count: dict(fields, n=count * per_image, **requant),
            lambda count: env.grid(-(-count * per_image // WORKGROUP)), rows=g["batch"],
            what=ctx.node.op_type,
            max_rows=env.gpu.max_groups * env.gpu.max_groups * WORKGROUP // max(per_image, 1))
    else:
        def arrange(q: np.ndarray) -> np.ndarray:  # (Cout, Cin_g, kh, kw) -> (G, K, Ng)
            q = q.reshape(w4.shape).reshape(g["group"], g["ng"], depth)
            return pack_int8(np.ascontiguousarray(q.transpose(0, 2, 1)))

        weight = env.buffers.constant(w, "packed:gkn", arrange)
        fields = dict(n=g["ng"], k=depth, sbk=g["ng"], sbn=1, b_z=depth * g["ng"],
                      col_z=g["ng"], nz=0, cin=g["cin"], h=g["h"], w=g["w"], ow=g["ow"],
                      pix=pix, kh=g["kh"], kw=g["kw"], sh=g["sh"], sw=g["sw"], pt=g["pt"],
                      pl=g["pl"], dh=g["dh"], dw=g["dw"], cin_g=g["cin_g"], cout=g["cout"],
                      **requant)
        launch = env.launch(
            ("qgemm", "int8", "im2col"), lambda: integer_gemm_wgsl("im2col", "nchw"), LAYOUT,
            [Bind.input(0, row_bytes=x_row), Bind.fixed(weight), Bind.fixed(table),
             Bind.fixed(bias), Bind.fixed(out.buffer, row_bytes=y_row)],
            lambda start, count: dict(fields, m=count * pix),
            lambda count: (*tile_groups(count * pix, g["ng"]), g["group"]), rows=g["batch"],
            what=ctx.node.op_type, max_rows=env.gpu.max_groups * TILE_M // max(pix, 1))

    def run(x, *params):
        launch(x)
        return out

    return run
