"""Conv (1-D and 2-D; grouped and depthwise) with a fused activation.

Two kernels, chosen per node when the plan is built:

- **implicit GEMM** (``gemm_core`` with an im2col ``load_a``): M = batch x output
  pixels, N = output channels per group, K = input channels per group x kernel taps;
  the z dimension of the grid runs over groups. Used when the GEMM tiles are well filled.
- **direct**: one thread per output element looping over its window — depthwise convs and
  convs with few output channels per group (LeNet's first layer), where a 64-wide tile
  would be mostly empty.

Weights are constants or DequantizeLinear of int8 constants (QDQ graphs: uploaded packed,
dequantized in the kernel). Both kernels split the batch into chunks when a tensor is
larger than one storage binding may be.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir import Node
from edgefw.ir.schema.dims import resolve_pads
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import (
    HEADER,
    host_float,
    known_at_build,
    static_shape,
)
from runtime.providers.gpu.kernels.gemm import column_vectors, weight_operand
from runtime.providers.gpu.kernels.gemm_core import LAYOUT, TILE_M, gemm_wgsl, tile_groups
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.pipelines import (
    GRID_WGSL,
    WORKGROUP,
    ParamLayout,
    activation_key,
    activation_wgsl,
)
from runtime.providers.gpu.registry import float_tensors, gpu_kernel

#: Use the direct kernel below this many output channels per group or GEMM depth.
DIRECT_BELOW = 16

DIRECT_FIELDS = [("n", "u32"), ("cin", "u32"), ("h", "u32"), ("w", "u32"), ("oh", "u32"),
                 ("ow", "u32"), ("cout", "u32"), ("ng", "u32"), ("cin_g", "u32"), ("kh", "u32"),
                 ("kw", "u32"), ("sh", "u32"), ("sw", "u32"), ("pt", "i32"), ("pl", "i32"),
                 ("dh", "u32"), ("dw", "u32")]
DIRECT_LAYOUT = ParamLayout(DIRECT_FIELDS)


def direct_conv_main(zero: str, tap: str, result: str) -> str:
    """The direct kernel's entry point: one thread per output element summing its window.
    ``zero`` is the accumulator's start (``0.0`` / ``0``), ``tap`` the product of one input
    and one weight given WGSL expressions ``{x}`` (input index) and ``{w}`` (weight index),
    ``result`` what is stored from ``acc`` and the output channel ``co`` — the float Conv
    and the integer QConv share the loop."""
    product = tap.format(x="(plane + u32(ih)) * p.w + u32(iw)",
                         w="((co * p.cin_g + ci) * p.kh + r) * p.kw + s")
    return f"""
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
  let i = group_index(wid, nwg) * 256u + lid;
  if (i >= p.n) {{ return; }}
  let ow = i % p.ow;
  var t = i / p.ow;
  let oh = t % p.oh;
  t = t / p.oh;
  let co = t % p.cout;
  let b = t / p.cout;
  let g = co / p.ng;
  var acc = {zero};
  for (var ci = 0u; ci < p.cin_g; ci++) {{
    let plane = (b * p.cin + g * p.cin_g + ci) * p.h;
    for (var r = 0u; r < p.kh; r++) {{
      let ih = i32(oh * p.sh + r * p.dh) - p.pt;
      if (ih < 0 || ih >= i32(p.h)) {{ continue; }}
      for (var s = 0u; s < p.kw; s++) {{
        let iw = i32(ow * p.sw + s * p.dw) - p.pl;
        if (iw < 0 || iw >= i32(p.w)) {{ continue; }}
        acc += {product};
      }}
    }}
  }}
  y[i] = {result};
}}
"""


DIRECT_MAIN = direct_conv_main("0.0", "x[{x}] * wload({w}, co)",
                               "act(acc * colscale[co] + colbias[co])")


def _direct_wgsl(kind: str, act: tuple) -> str:
    packed = kind != "float32"
    decode = "bitcast<i32>(byte << 24u) >> 24u" if kind == "int8" else "byte"
    lines = [DIRECT_LAYOUT.wgsl(), HEADER,
             "@group(0) @binding(1) var<storage, read> x: array<f32>;",
             f"@group(0) @binding(2) var<storage, read> wt: array<{'u32' if packed else 'f32'}>;",
             "@group(0) @binding(3) var<storage, read> colscale: array<f32>;",
             "@group(0) @binding(4) var<storage, read> colbias: array<f32>;",
             "@group(0) @binding(5) var<storage, read_write> y: array<f32>;"]
    if packed:
        lines.append("@group(0) @binding(6) var<storage, read> wzero: array<f32>;")
        lines.append(f"""fn wload(e: u32, co: u32) -> f32 {{
  let byte = (wt[e >> 2u] >> ((e & 3u) * 8u)) & 0xffu;
  return f32({decode}) - wzero[co];
}}""")
    else:
        lines.append("fn wload(e: u32, co: u32) -> f32 { return wt[e]; }")
    return "\n".join(lines + [GRID_WGSL, activation_wgsl(act), DIRECT_MAIN])


def _check(node: Node) -> str | None:
    reason = float_tensors(node, data=(0,))
    if reason:
        return reason
    x = node.inputs[0]
    if len(x.shape) not in (3, 4):
        return f"Conv with {len(x.shape) - 2} spatial dims (the GPU kernel handles 1-D and 2-D)"
    if not known_at_build(node.inputs[1]):
        return "Conv weights computed at run time (the GPU kernel takes constant weights)"
    if len(node.inputs) > 2 and node.inputs[2] is not None and not known_at_build(
            node.inputs[2]):
        return "Conv bias computed at run time"
    for v in node.inputs[1:]:
        if v is not None and v.dtype != "float32":
            return f"dtype {v.dtype} unsupported (input {v.name})"
    return None


def conv_geometry(ctx: KernelContext) -> dict:
    """Shapes and window parameters, every 1-D conv expressed as 2-D over height 1."""
    x_shape, w_shape, y_shape = static_shape(ctx, 0), static_shape(ctx, 1), static_shape(ctx)
    one_d = len(x_shape) == 3
    kernel = [int(k) for k in (ctx.attr("kernel_shape") or w_shape[2:])]
    n = len(kernel)
    strides = [int(s) for s in (ctx.attr("strides") or [1] * n)]
    dilations = [int(d) for d in (ctx.attr("dilations") or [1] * n)]
    pads = resolve_pads(ctx.attr("auto_pad"), ctx.attr("pads"), x_shape[2:], kernel, strides,
                        dilations)
    if one_d:
        x_shape, y_shape = x_shape[:2] + (1,) + x_shape[2:], y_shape[:2] + (1,) + y_shape[2:]
        kernel, strides, dilations, pads = ([1] + kernel, [1] + strides, [1] + dilations,
                                            [(0, 0)] + pads)
    group = int(ctx.attr("group"))
    return dict(batch=x_shape[0], cin=x_shape[1], h=x_shape[2], w=x_shape[3], cout=y_shape[1],
                oh=y_shape[2], ow=y_shape[3], kh=kernel[0], kw=kernel[1], sh=strides[0],
                sw=strides[1], pt=pads[0][0], pl=pads[1][0], dh=dilations[0], dw=dilations[1],
                group=group, cin_g=x_shape[1] // group, ng=y_shape[1] // group,
                one_d=one_d, w_shape=w_shape)


@gpu_kernel("Conv", check=_check)
def conv(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    g = conv_geometry(ctx)
    out = env.buffers.tensor(static_shape(ctx), what=ctx.node.name)
    pix = g["oh"] * g["ow"]
    depth = g["cin_g"] * g["kh"] * g["kw"]
    act = activation_key(ctx.fused_activation)
    bias = host_float(ctx, 2)
    bias = np.zeros(g["cout"], np.float32) if bias is None else bias.reshape(-1)
    x_row, y_row = 4 * g["cin"] * g["h"] * g["w"], 4 * g["cout"] * pix
    w_shape = g["w_shape"]
    weight_4d = (w_shape[0], w_shape[1], 1, w_shape[2]) if g["one_d"] else w_shape

    if g["ng"] < DIRECT_BELOW or depth < DIRECT_BELOW:
        weight = weight_operand(env, ctx, 1, lambda w: w.reshape(-1), 0, g["cout"], "oihw")
        colscale, colbias = column_vectors(env, ctx, weight.colscale, bias)
        bindings = [Bind.input(0, row_bytes=x_row), Bind.fixed(weight.buffer),
                    Bind.fixed(colscale), Bind.fixed(colbias),
                    Bind.fixed(out.buffer, row_bytes=y_row)]
        if weight.zero_point is not None:
            bindings.append(Bind.fixed(env.buffers.constant(
                ctx.node, "wzero", lambda _: weight.zero_point.astype(np.float32))))
        per_image = g["cout"] * pix
        fields = {k: g[k] for k in ("cin", "h", "w", "oh", "ow", "cout", "ng", "cin_g", "kh",
                                    "kw", "sh", "sw", "pt", "pl", "dh", "dw")}
        launch = env.launch(
            ("conv_direct", "float32", weight.kind, act), lambda: _direct_wgsl(weight.kind, act),
            DIRECT_LAYOUT, bindings, lambda start, count: dict(fields, n=count * per_image),
            lambda count: env.grid(-(-count * per_image // WORKGROUP)), rows=g["batch"],
            what=ctx.node.op_type,
            max_rows=env.gpu.max_groups * env.gpu.max_groups * WORKGROUP // max(per_image, 1))
    else:
        def arrange(w: np.ndarray) -> np.ndarray:  # (Cout, Cin_g, kh, kw) -> (G, K, Ng)
            w = w.reshape(g["group"], g["ng"], depth)
            return np.ascontiguousarray(w.transpose(0, 2, 1))

        weight = weight_operand(env, ctx, 1, lambda w: arrange(w.reshape(weight_4d)), 0,
                                g["cout"], "gkn")
        colscale, colbias = column_vectors(env, ctx, weight.colscale, bias)
        bindings = [Bind.input(0, row_bytes=x_row), Bind.fixed(weight.buffer),
                    Bind.fixed(colscale), Bind.fixed(colbias),
                    Bind.fixed(out.buffer, row_bytes=y_row)]
        if weight.zero_point is not None:
            bindings.append(Bind.fixed(env.buffers.constant(
                ctx.node, "wzero", lambda _: weight.zero_point.astype(np.float32))))
        fields = dict(n=g["ng"], k=depth, sbk=g["ng"], sbn=1, b_z=depth * g["ng"],
                      col_z=g["ng"], nz=0, cin=g["cin"], h=g["h"], w=g["w"], ow=g["ow"],
                      pix=pix, kh=g["kh"], kw=g["kw"], sh=g["sh"], sw=g["sw"], pt=g["pt"],
                      pl=g["pl"], dh=g["dh"], dw=g["dw"], cin_g=g["cin_g"], cout=g["cout"])

        def groups(count: int) -> tuple[int, int, int]:
            gx, gy = tile_groups(count * pix, g["ng"])
            return (gx, gy, g["group"])

        launch = env.launch(
            ("gemm", "float32", "im2col", weight.kind, act),
            lambda: gemm_wgsl("im2col", weight.kind, "nchw", act), LAYOUT, bindings,
            lambda start, count: dict(fields, m=count * pix), groups, rows=g["batch"],
            what=ctx.node.op_type, max_rows=env.gpu.max_groups * TILE_M // max(pix, 1))

    def run(x, w=None, b=None):
        launch(x)
        return out

    return run


__all__ = ["conv_geometry"]
