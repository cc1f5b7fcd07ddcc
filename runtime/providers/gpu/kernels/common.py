"""Helpers shared by the GPU kernels: build-time constants (plain or dequantized), shapes,
and the one-thread-per-element launch most kernels use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefw.errors import DeviceError, UnsupportedOpError
from edgefw.ir.graph import constant_data
from runtime.providers.base import KernelContext
from runtime.providers.gpu.launch import Bind, GPUKernelEnv, Launch
from runtime.providers.gpu.pipelines import GRID_WGSL, WORKGROUP, ParamLayout

HEADER = """
@group(0) @binding(0) var<uniform> p: Params;
"""

ELEMENT_MAIN = """
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = group_index(wid, nwg) * 256u + lid;
  if (i >= p.n) { return; }
  BODY
}
"""


@dataclass(frozen=True)
class QuantizedSource:
    """A float input that is ``DequantizeLinear`` of constants: the integer data, its
    scale and zero point (as arrays) and the axis they run along (None: per tensor)."""

    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None

    def dequantized(self) -> np.ndarray:
        """The float32 values, exactly as the CPU DequantizeLinear kernel computes them."""
        wide = self.q.astype(np.int64 if self.q.dtype == np.int32 else np.int32)
        scale, zp = self.scale, self.zero_point
        if self.axis is not None and self.q.ndim:
            shape = [1] * self.q.ndim
            shape[self.axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        return ((wide - zp.astype(wide.dtype)).astype(np.float32)
                * scale.astype(np.float32)).astype(np.float32)

    def per_channel(self, axis: int, channels: int, what: str) -> tuple[np.ndarray, np.ndarray]:
        """(scale, zero point) as float32 vectors of ``channels`` along ``axis``."""
        if self.axis is None or self.scale.size == 1:
            return (np.full(channels, float(self.scale.reshape(-1)[0]), np.float32),
                    np.full(channels, float(self.zero_point.reshape(-1)[0]), np.float32))
        if self.axis != axis or self.scale.size != channels:
            raise UnsupportedOpError(f"{what}: per-axis scales along axis {self.axis} "
                                     f"(expected {axis})")
        return (self.scale.astype(np.float32).reshape(-1),
                self.zero_point.astype(np.float32).reshape(-1))


def quantized_source(value: Any) -> QuantizedSource | None:
    """The :class:`QuantizedSource` behind ``value``, or None if it is not one."""
    node = None if value is None else value.producer
    if node is None or node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
        return None
    q = constant_data(node.inputs[0])
    scale = constant_data(node.inputs[1]) if len(node.inputs) > 1 else None
    zp_value = node.inputs[2] if len(node.inputs) > 2 else None
    zp = None if zp_value is None else constant_data(zp_value)
    if q is None or scale is None or (zp_value is not None and zp is None):
        return None
    if q.dtype not in (np.int8, np.uint8, np.int32) or int(node.attr("block_size") or 0):
        return None
    if zp is None:
        zp = np.zeros(scale.shape, q.dtype)
    axis = None
    if scale.size > 1:
        axis = int(node.attr("axis"))
        axis = axis + q.ndim if axis < 0 else axis
    return QuantizedSource(q, np.asarray(scale, np.float32), np.asarray(zp), axis)


def host_float(ctx: KernelContext, i: int) -> np.ndarray | None:
    """Input ``i`` as a float32 host array when it is known at build time (a constant or a
    dequantized constant), else None."""
    if not ctx.has_input(i):
        return None
    data = ctx.const(i)
    if data is not None:
        return np.asarray(data, np.float32)
    source = quantized_source(ctx.node.inputs[i])
    return None if source is None else source.dequantized()


def known_at_build(value: Any) -> bool:
    """True if a builder can read ``value`` on the host (constant or dequantized constant)."""
    return value is not None and (constant_data(value) is not None
                                  or quantized_source(value) is not None)


def static_shape(ctx: KernelContext, i: int | None = None, k: int = 0) -> tuple[int, ...]:
    """The concrete shape of input ``i`` (or output ``k``); DeviceError when symbolic."""
    shape = ctx.static_output_shape(k) if i is None else ctx.static_input_shape(i)
    if shape is None:
        what = f"output {k}" if i is None else f"input {i}"
        raise DeviceError(f"the GPU kernel needs the static shape of {what}; got "
                          f"{ctx.output_types[k].shape if i is None else ctx.input_shape(i)}")
    return shape


def size_of(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def element_launch(env: GPUKernelEnv, key: tuple, layout_fields: Sequence[tuple[str, str]],
                   bindings_wgsl: str, body: str, bindings: Sequence[Bind], n: int,
                   params: dict | Callable[[int, int], dict] | None = None,
                   extra_wgsl: str = "", what: str = "kernel") -> Launch:
    """A one-thread-per-element launch over ``n`` elements (index ``i``, ``p.n`` = count).

    ``body`` is WGSL run for each ``i < p.n``; bindings with ``row_bytes`` are chunked
    per element when ``n`` elements do not fit one binding (``p.base`` is the chunk start).
    """
    layout = ParamLayout([("n", "u32"), ("base", "u32"), *layout_fields])

    def make_wgsl() -> str:
        return "\n".join([layout.wgsl(), HEADER, bindings_wgsl, GRID_WGSL, extra_wgsl,
                          ELEMENT_MAIN.replace("BODY", body)])

    def chunk_params(start: int, count: int) -> dict:
        extra = params(start, count) if callable(params) else dict(params or {})
        return {"n": count, "base": start, **extra}

    return env.launch(key, make_wgsl, layout, bindings, chunk_params,
                      lambda count: env.grid(-(-count // WORKGROUP)), rows=n, what=what)


__all__ = ["ELEMENT_MAIN", "HEADER", "QuantizedSource", "element_launch", "host_float",
           "known_at_build", "quantized_source", "size_of", "static_shape"]
