"""ReduceMean / ReduceSum / ReduceMax / ReduceMin and GlobalAveragePool / GlobalMaxPool.

Every output element reduces a set of input elements described by two dims/strides
tables (kept dims, reduced dims). Short reductions (< 256 elements) use one thread per
output; long ones a 64-thread workgroup per output with a tree reduction in workgroup
memory. When the reduced dims are the trailing ones (GlobalAveragePool, a last-axis
mean) the tables are skipped (shape class ``tail``).
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import UnsupportedOpError
from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import HEADER, size_of, static_shape
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.pipelines import GRID_WGSL, WORKGROUP, ParamLayout
from runtime.providers.gpu.registry import float_tensors, gpu_kernel

MAX_RANK = 8
WIDE_FROM = 256  # reductions this long get a workgroup per output
LAYOUT = ParamLayout([("n", "u32"), ("r", "u32"), ("kept_rank", "u32"), ("red_rank", "u32"),
                      ("kept_dims", "u32[8]"), ("kept_strides", "u32[8]"),
                      ("red_dims", "u32[8]"), ("red_strides", "u32[8]")])

_KINDS = {  # init, combine(acc, v), finish(acc)
    "sum": ("0.0", "acc + v", "acc"),
    "mean": ("0.0", "acc + v", "acc / f32(p.r)"),
    "max": ("bitcast<f32>(0xff800000u)", "max(acc, v)", "acc"),
    "min": ("bitcast<f32>(0x7f800000u)", "min(acc, v)", "acc"),
}
_OPS = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
        "GlobalAveragePool": "mean", "GlobalMaxPool": "max"}

_OFFSETS = """
fn base_of(o: u32) -> u32 {
  if (TAIL) { return o * p.r; }
  var rest = o;
  var at = 0u;
  for (var d = i32(p.kept_rank) - 1; d >= 0; d--) {
    let u = u32(d);
    let dim = p.kept_dims[u >> 2u][u & 3u];
    at += (rest % dim) * p.kept_strides[u >> 2u][u & 3u];
    rest /= dim;
  }
  return at;
}
fn offset_of(j: u32) -> u32 {
  if (TAIL) { return j; }
  var rest = j;
  var at = 0u;
  for (var d = i32(p.red_rank) - 1; d >= 0; d--) {
    let u = u32(d);
    let dim = p.red_dims[u >> 2u][u & 3u];
    at += (rest % dim) * p.red_strides[u >> 2u][u & 3u];
    rest /= dim;
  }
  return at;
}
"""

_THREAD_MAIN = """
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = group_index(wid, nwg) * 256u + lid;
  if (o >= p.n) { return; }
  let base = base_of(o);
  var acc = INIT;
  for (var j = 0u; j < p.r; j++) {
    let v = x[base + offset_of(j)];
    acc = COMBINE;
  }
  y[o] = FINISH;
}
"""

_WORKGROUP_MAIN = """
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = group_index(wid, nwg);
  let live = o < p.n;
  var acc = INIT;
  if (live) {
    let base = base_of(o);
    for (var j = lid; j < p.r; j += 64u) {
      let v = x[base + offset_of(j)];
      acc = COMBINE;
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var half = 32u; half > 0u; half >>= 1u) {
    if (lid < half) {
      let v = partial[lid + half];
      acc = partial[lid];
      partial[lid] = COMBINE;
    }
    workgroupBarrier();
  }
  if (live && lid == 0u) {
    acc = partial[0];
    y[o] = FINISH;
  }
}
"""


def reduced_axes(ctx: KernelContext, rank: int) -> list[int]:
    op = ctx.node.op_type
    if op.startswith("Global"):
        return list(range(2, rank))
    axes = ctx.const(1) if ctx.has_input(1) else ctx.node.attrs.get("axes")
    if axes is None or np.asarray(axes).size == 0:
        if ctx.attr("noop_with_empty_axes"):
            return []
        return list(range(rank))
    return sorted({int(a) + rank if int(a) < 0 else int(a) for a in np.asarray(axes).reshape(-1)})


def _check(node: Node) -> str | None:
    reason = float_tensors(node, params=(1,))
    if reason:
        return reason
    if len(node.inputs[0].shape) > MAX_RANK:
        return f"rank {len(node.inputs[0].shape)} unsupported (the GPU kernel handles {MAX_RANK})"
    return None


@gpu_kernel(*_OPS, check=_check)
def reduce(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    x_shape = static_shape(ctx, 0)
    rank = len(x_shape)
    axes = reduced_axes(ctx, rank)
    out = env.buffers.tensor(static_shape(ctx), what=ctx.node.name)
    strides = [size_of(x_shape[d + 1:]) for d in range(rank)]
    kept = [d for d in range(rank) if d not in axes]
    if len(kept) > MAX_RANK or len(axes) > MAX_RANK:
        raise UnsupportedOpError(f"reduction over rank {rank}")
    tail = kept == list(range(len(kept)))
    r = size_of([x_shape[d] for d in axes])
    n = size_of([x_shape[d] for d in kept])
    kind = _OPS[ctx.node.op_type]
    init, combine, finish = _KINDS[kind]
    wide = r >= WIDE_FROM
    main = (_WORKGROUP_MAIN if wide else _THREAD_MAIN).replace("INIT", init).replace(
        "COMBINE", combine).replace("FINISH", finish)
    offsets = _OFFSETS.replace("TAIL", "true" if tail else "false")
    bindings_wgsl = """
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
"""
    params = dict(n=n, r=r, kept_rank=len(kept), red_rank=len(axes),
                  kept_dims=[x_shape[d] for d in kept], kept_strides=[strides[d] for d in kept],
                  red_dims=[x_shape[d] for d in axes], red_strides=[strides[d] for d in axes])
    chunkable = tail  # rows of r contiguous elements: split over outputs
    launch = env.launch(
        ("reduce", "float32", kind, "tail" if tail else "strided", "wide" if wide else "thread"),
        lambda: "\n".join([LAYOUT.wgsl(), HEADER, bindings_wgsl, GRID_WGSL, offsets, main]),
        LAYOUT,
        [Bind.input(0, row_bytes=4 * r if chunkable else 0),
         Bind.fixed(out.buffer, row_bytes=4 if chunkable else 0)],
        lambda start, count: dict(params, n=count if chunkable else n),
        lambda count: env.grid((count if chunkable else n) if wide
                               else -(-(count if chunkable else n) // WORKGROUP)),
        rows=n if chunkable else 1, what=ctx.node.op_type)

    def run(x, axes_input=None):
        launch(x)
        return out

    return run
