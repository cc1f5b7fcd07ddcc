"""QuantizeLinear and DequantizeLinear (QDQ graphs).

- DequantizeLinear of constants (weights, int32 biases) is evaluated once at build time;
  its output is a :class:`DeviceConstant` that Gemm/MatMul/Conv recognise, reading the
  packed int8 weights instead (see ``gemm.weight_operand``).
- On activations, per tensor: QuantizeLinear writes int8/uint8 values (one per word),
  rounding half to even as ONNX does; DequantizeLinear reads them back as
  ``(q - zero_point) * scale``. The division in QuantizeLinear is refined by one
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
    body = f"""let v = x[i];
  let q0 = v / p.scale;
  let q1 = q0 + fma(-q0, p.scale, v) / p.scale;  // a residual step: correctly rounded
  y[i] = i32(clamp(round(q1) + p.zero, {float(lo)}, {float(hi)}));"""
    bindings_wgsl = """
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<i32>;
"""
    launch = element_launch(
        env, ("quantize", dtype), [("scale", "f32"), ("zero", "f32")], bindings_wgsl, body,
        [Bind.input(0, row_bytes=4), Bind.fixed(out.buffer, row_bytes=4)], size_of(shape),
        dict(scale=scale, zero=zero), what=ctx.node.op_type)

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
    bindings_wgsl = """
@group(0) @binding(1) var<storage, read> x: array<i32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
"""
    launch = element_launch(
        env, ("dequantize", dtype), [("zero", "i32"), ("scale", "f32")], bindings_wgsl,
        "y[i] = f32(x[i] - p.zero) * p.scale;",
        [Bind.input(0, row_bytes=4), Bind.fixed(out.buffer, row_bytes=4)], size_of(shape),
        dict(zero=int(zero), scale=scale), what=ctx.node.op_type)

    def run(x, *params):
        launch(x)
        return out

    return run
