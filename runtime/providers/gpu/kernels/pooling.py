"""MaxPool and AveragePool (1-D and 2-D): one thread per output element.

AveragePool divides by the window's size as ONNX defines it (and the CPU provider
computes it): with ``count_include_pad`` the padding counts but a ``ceil_mode`` overhang
past it does not; without, only input positions count.
"""

from __future__ import annotations

from edgefw.ir import Node
from edgefw.ir.schema.dims import resolve_pads
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import HEADER, static_shape
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.pipelines import GRID_WGSL, WORKGROUP, ParamLayout
from runtime.providers.gpu.registry import float_tensors, gpu_kernel

POOL_FIELDS = [("n", "u32"), ("h", "u32"), ("w", "u32"), ("oh", "u32"), ("ow", "u32"),
               ("kh", "u32"), ("kw", "u32"), ("sh", "u32"), ("sw", "u32"),
               ("pt", "i32"), ("pl", "i32"), ("pb", "i32"), ("pr", "i32"),
               ("dh", "u32"), ("dw", "u32")]
LAYOUT = ParamLayout(POOL_FIELDS)

_MAIN = """
@group(0) @binding(1) var<storage, read> x: array<ELEM>;
@group(0) @binding(2) var<storage, read_write> y: array<ELEM>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = group_index(wid, nwg) * 256u + lid;
  if (i >= p.n) { return; }
  let ow = i % p.ow;
  let t = i / p.ow;
  let oh = t % p.oh;
  let plane = t / p.oh;
  INIT
  for (var r = 0u; r < p.kh; r++) {
    let ih = i32(oh * p.sh + r * p.dh) - p.pt;
    if (ih < 0 || ih >= i32(p.h)) { continue; }
    for (var s = 0u; s < p.kw; s++) {
      let iw = i32(ow * p.sw + s * p.dw) - p.pl;
      if (iw < 0 || iw >= i32(p.w)) { continue; }
      let v = x[(plane * p.h + u32(ih)) * p.w + u32(iw)];
      ACCUMULATE
    }
  }
  FINISH
}
"""



def pool_wgsl(elem: str, init: str, accumulate: str, finish: str) -> str:
    """The window loop with one thread per output: ``init`` declares the accumulators,
    ``accumulate`` takes each in-image tap ``v`` (of WGSL type ``elem``), ``finish`` stores
    ``y[i]`` — MaxPool, AveragePool and the integer QAveragePool share it."""
    return _MAIN.replace("INIT", init).replace("ACCUMULATE", accumulate).replace(
        "FINISH", finish).replace("ELEM", elem)


_MAX = ("var acc = bitcast<f32>(0xff800000u);", "acc = max(acc, v);", "y[i] = acc;")
_MAX_INT = ("var acc: i32 = -2147483648;", "acc = max(acc, v);", "y[i] = acc;")
_AVG = ("var acc = 0.0;", "acc += v;", """
  let h0 = i32(oh * p.sh);
  let w0 = i32(ow * p.sw);
  let count = f32(window(h0, i32(p.kh), i32(p.h), p.pt, p.pb))
            * f32(window(w0, i32(p.kw), i32(p.w), p.pl, p.pr));
  y[i] = acc / count;""")


def _window_fn(include_pad: bool) -> str:
    """Positions of one axis a window at padded start ``s`` divides by."""
    if include_pad:
        body = "return min(s + k, size + begin + end) - s;"
    else:
        body = "return min(s + k, begin + size) - max(s, begin);"
    return f"fn window(s: i32, k: i32, size: i32, begin: i32, end: i32) -> i32 {{ {body} }}"


def _check(node: Node) -> str | None:
    x = node.inputs[0]
    if node.op_type == "MaxPool" and x.dtype in ("int8", "uint8"):  # integer graphs
        reason = None if node.outputs[0].dtype == x.dtype and x.shape is not None else \
            f"MaxPool from {x.dtype} to {node.outputs[0].dtype} unsupported"
    else:
        reason = float_tensors(node)
    if reason:
        return reason
    if len(node.outputs) > 1:
        return "MaxPool Indices output (int64) unsupported"
    if len(node.inputs[0].shape) not in (3, 4):
        return f"{len(node.inputs[0].shape) - 2}-D pooling unsupported (1-D and 2-D are)"
    if node.op_type == "AveragePool" and any(int(d) != 1 for d in node.attr("dilations") or []):
        return "AveragePool with dilations unsupported"
    return None


@gpu_kernel("MaxPool", "AveragePool", check=_check)
def pool(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    x_shape, y_shape = static_shape(ctx, 0), static_shape(ctx)
    kernel = [int(k) for k in ctx.attr("kernel_shape")]
    n = len(kernel)
    strides = [int(s) for s in (ctx.attr("strides") or [1] * n)]
    dilations = [int(d) for d in (ctx.attr("dilations") or [1] * n)]
    pads = resolve_pads(ctx.attr("auto_pad"), ctx.attr("pads"), x_shape[2:], kernel, strides,
                        dilations)
    if n == 1:
        x_shape, y_shape = x_shape[:2] + (1,) + x_shape[2:], y_shape[:2] + (1,) + y_shape[2:]
        kernel, strides, dilations, pads = ([1] + kernel, [1] + strides, [1] + dilations,
                                            [(0, 0)] + pads)
    dtype = ctx.node.outputs[0].dtype
    out = env.buffers.tensor(static_shape(ctx), dtype, what=ctx.node.name)
    is_max = ctx.node.op_type == "MaxPool"
    integer = dtype != "float32"
    include_pad = bool(ctx.attr("count_include_pad")) if not is_max else False
    init, accumulate, finish = (_MAX_INT if integer else _MAX) if is_max else _AVG
    body = pool_wgsl("i32" if integer else "f32", init, accumulate, finish)
    extra = "" if is_max else _window_fn(include_pad)
    fields = window_fields(x_shape, y_shape, kernel, strides, pads, dilations)
    key = ("pool", "int32" if integer else "float32",
           "max" if is_max else f"avg:{int(include_pad)}")
    return pool_launch(ctx, env, key, [LAYOUT.wgsl(), HEADER, GRID_WGSL, extra, body], LAYOUT,
                       fields, x_shape, y_shape, out)


def window_fields(x_shape, y_shape, kernel, strides, pads, dilations) -> dict[str, int]:
    """The window loop's parameters (:data:`POOL_FIELDS` but ``n``) for 2-D NCHW shapes."""
    return dict(h=x_shape[2], w=x_shape[3], oh=y_shape[2], ow=y_shape[3], kh=kernel[0],
                kw=kernel[1], sh=strides[0], sw=strides[1], pt=pads[0][0], pl=pads[1][0],
                pb=pads[0][1], pr=pads[1][1], dh=dilations[0], dw=dilations[1])


def pool_launch(ctx: KernelContext, env: GPUKernelEnv, key: tuple, wgsl_parts: list[str],
                layout: ParamLayout, fields: dict, x_shape, y_shape, out) -> Kernel:
    """The kernel running a :func:`pool_wgsl` shader: one thread per output element,
    images split into chunks as the bindings require."""
    per_image = y_shape[1] * y_shape[2] * y_shape[3]
    launch = env.launch(
        key, lambda: "\n".join(wgsl_parts), layout,
        [Bind.input(0, row_bytes=4 * x_shape[1] * x_shape[2] * x_shape[3]),
         Bind.fixed(out.buffer, row_bytes=4 * per_image)],
        lambda start, count: dict(fields, n=count * per_image),
        lambda count: env.grid(-(-count * per_image // WORKGROUP)), rows=x_shape[0],
        what=ctx.node.op_type)

    def run(x):
        launch(x)
        return out

    return run
