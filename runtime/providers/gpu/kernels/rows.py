"""The row-wise kernel shape Softmax, LogSoftmax and LayerNormalization share.

A tensor is viewed as (outer, length, inner) around the reduced axis; each row is the
``length`` elements at one (outer, inner) position, ``inner`` apart. Short rows get one
thread each; rows of 128 elements or more get a 64-thread workgroup each, the row's
statistics combined through workgroup memory (``row_sum``/``row_max`` below).
"""

from __future__ import annotations

from typing import Any

from runtime.providers.base import KernelContext
from runtime.providers.gpu.kernels.common import HEADER
from runtime.providers.gpu.launch import Bind, GPUKernelEnv, Launch
from runtime.providers.gpu.pipelines import GRID_WGSL, WORKGROUP, ParamLayout

WIDE_FROM = 128
LAYOUT = ParamLayout([("rows", "u32"), ("len", "u32"), ("inner", "u32"), ("eps", "f32")])

_THREAD = """
const LANES = 1u;
fn row_max(v: f32, lane: u32) -> f32 { return v; }
fn row_sum(v: f32, lane: u32) -> f32 { return v; }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = group_index(wid, nwg) * 256u + lid;
  if (row >= p.rows) { return; }
  let lane = 0u;
  let base = (row / p.inner) * p.len * p.inner + row % p.inner;
  BODY
}
"""

_WIDE = """
const LANES = 64u;
var<workgroup> scratch: array<f32, 64>;
fn row_max(v: f32, lane: u32) -> f32 {
  scratch[lane] = v;
  workgroupBarrier();
  for (var half = 32u; half > 0u; half >>= 1u) {
    if (lane < half) { scratch[lane] = max(scratch[lane], scratch[lane + half]); }
    workgroupBarrier();
  }
  let r = scratch[0];
  workgroupBarrier();
  return r;
}
fn row_sum(v: f32, lane: u32) -> f32 {
  scratch[lane] = v;
  workgroupBarrier();
  for (var half = 32u; half > 0u; half >>= 1u) {
    if (lane < half) { scratch[lane] = scratch[lane] + scratch[lane + half]; }
    workgroupBarrier();
  }
  let r = scratch[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // Every lane of a workgroup works on the same row, so barriers stay in uniform flow;
  // the grid never has a workgroup past the last row.
  let row = group_index(wid, nwg);
  let lane = lid;
  let base = (row / p.inner) * p.len * p.inner + row % p.inner;
  BODY
}
"""


def row_launch(env: GPUKernelEnv, ctx: KernelContext, key: tuple, body: str, extra_wgsl: str,
               extra_bindings: list[tuple[str, Any]], out: Any, outer: int, length: int,
               inner: int, eps: float = 0.0) -> Launch:
    """Launch ``body`` once per row: ``x`` and ``y`` are bindings 1 and 2, then
    ``extra_bindings`` (name, fixed buffer) read-only from binding 3."""
    rows = outer * inner
    wide = length >= WIDE_FROM
    decls = ["@group(0) @binding(1) var<storage, read> x: array<f32>;",
             "@group(0) @binding(2) var<storage, read_write> y: array<f32>;"]
    for slot, (name, _) in enumerate(extra_bindings, start=3):
        decls.append(f"@group(0) @binding({slot}) var<storage, read> {name}: array<f32>;")
    main = (_WIDE if wide else _THREAD).replace("BODY", body)
    chunk = 4 * length if inner == 1 else 0  # contiguous rows can be split into chunks

    def rows_in(count: int) -> int:
        return count if chunk else rows

    return env.launch(
        (*key, "wide" if wide else "thread"),
        lambda: "\n".join([LAYOUT.wgsl(), HEADER, *decls, GRID_WGSL, extra_wgsl, main]), LAYOUT,
        [Bind.input(0, row_bytes=chunk), Bind.fixed(out.buffer, row_bytes=chunk),
         *[Bind.fixed(b) for _, b in extra_bindings]],
        lambda start, count: dict(rows=rows_in(count), len=length, inner=inner, eps=eps),
        lambda count: env.grid(rows_in(count) if wide else -(-rows_in(count) // WORKGROUP)),
        rows=rows if chunk else 1, what=ctx.node.op_type)


__all__ = ["LAYOUT", "WIDE_FROM", "row_launch"]
