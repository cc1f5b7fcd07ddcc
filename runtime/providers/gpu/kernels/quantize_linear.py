"""QuantizeLinear and DequantizeLinear (QDQ graphs).

- DequantizeLinear of constants (weights, int32 biases) is evaluated once at build time;
  its output is a :class:`DeviceConstant` that Gemm/MatMul/Conv recognise, reading the
  packed int8 weights instead (see ``gemm.weight_operand``).
- On activations, per tensor: QuantizeLinear writes int8/uint8 packed four per word (each
  thread packs one word), rounding half to even as ONNX does; DequantizeLinear reads them
  back as ``(q - zero_point) * scale``. The division in QuantizeLinear is refined by one
  residual step so it rounds like the CPU's correctly rounded ``x / scale`` (WGSL allows
  2.5 ulp) — results agree exactly except, rarely, at exact .5 ties (1 LSB).
"""

from __future__ import annotations

import numpy as np

from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import (
    element_launch,
    quantized_source,
    size_of,
    static_shape,
)
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.registry import gpu_kernel, is_constant

_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def _per_tensor(node: Node) -> str | None:
    for i in (1, 2):
        v = node.inputs[i] if i < len(node.inputs) else None
        if v is None:
            continue
        if not is_constant(v):
            return f"input {i} ({v.name}) is computed at run time"
        if v.shape not in ((), (1,)):
            return "per-axis quantization of activations unsupported"
    return None


def _quantize_check(node: Node) -> str | None:
    x, y = node.inputs[0], node.outputs[0]
    if x.dtype != "float32":
        return f"dtype {x.dtype} unsupported (input {x.name})"
    if y.dtype not in _RANGES:
        return f"dtype {y.dtype} unsupported (output {y.name}; int8 and uint8 are)"
    return _per_tensor(node)


def _dequantize_check(node: Node) -> str | None:
    if node.outputs[0].dtype != "float32":
        return f"dtype {node.outputs[0].dtype} unsupported"
    if quantized_source(node.outputs[0]) is not None:
        return None  # constants: evaluated once at build time
    x = node.inputs[0]
    if x.dtype not in _RANGES:
        return f"dtype {x.dtype} unsupported (input {x.name}; int8 and uint8 are)"
    return _per_tensor(node)


def _scale_and_zero(ctx: KernelContext) -> tuple[float, float]:
    scale = float(np.asarray(ctx.const(1), np.float32).reshape(-1)[0])
    zero = float(np.asarray(ctx.const(2)).reshape(-1)[0]) if ctx.has_input(2) else 0.0
    return scale, zero


@gpu_kernel("QuantizeLinear", check=_quantize_check)
def quantize_linear(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    shape = static_shape(ctx)
    dtype = ctx.node.outputs[0].dtype
    lo, hi = _RANGES[dtype]
    scale, zero = _scale_and_zero(ctx)
    out = env.buffers.tensor(shape, dtype, what=ctx.node.name)
    n = size_of(shape)
    words = -(-n // 4)
    body = f"""var word = 0u;
  for (var j = 0u; j < 4u; j++) {{
    let e = (p.base + i) * 4u + j;
    if (e < p.total) {{
      let v = x[i * 4u + j];
      let q0 = v / p.scale;
      let q1 = q0 + fma(-q0, p.scale, v) / p.scale;  // a residual step: correctly rounded
      let q = clamp(round(q1) + p.zero, {float(lo)}, {float(hi)});
      word |= (u32(i32(q)) & 0xffu) << (8u * j);
    }}
  }}
  y[i] = word;"""
    bindings_wgsl = """
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
"""
    launch = element_launch(
        env, ("quantize", dtype), [("total", "u32"), ("scale", "f32"), ("zero", "f32")],
        bindings_wgsl, body, [Bind.input(0, row_bytes=16), Bind.fixed(out.buffer, row_bytes=4)],
        words, dict(total=n, scale=scale, zero=zero), what=ctx.node.describe())

    def run(x, *params):
        launch(x)
        return out

    return run


@gpu_kernel("DequantizeLinear", check=_dequantize_check)
def dequantize_linear(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    source = quantized_source(ctx.node.outputs[0])
    if source is not None:
        held = env.buffers.device_constant(source.dequantized())

        def constant(*inputs):
            return held

        return constant
    shape = static_shape(ctx)
    dtype = ctx.node.inputs[0].dtype
    scale, zero = _scale_and_zero(ctx)
    out = env.buffers.tensor(shape, what=ctx.node.name)
    decode = "bitcast<i32>(byte << 24u) >> 24u" if dtype == "int8" else "i32(byte)"
    body = f"""let e = p.base + i;
  let byte = (x[e >> 2u] >> ((e & 3u) * 8u)) & 0xffu;
  y[i] = f32({decode} - p.zero) * p.scale;"""
    bindings_wgsl = """
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
"""
    launch = element_launch(
        env, ("dequantize", dtype), [("zero", "i32"), ("scale", "f32")], bindings_wgsl, body,
        [Bind.input(0), Bind.fixed(out.buffer, row_bytes=4)], size_of(shape),
        dict(zero=int(zero), scale=scale), what=ctx.node.describe())

    def run(x, *params):
        launch(x)
        return out

    return run
