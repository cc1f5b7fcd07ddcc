"""BatchNormalization (inference form) as one per-channel multiply-add, its constants
folded at build time exactly as the CPU provider folds them (in float64)."""

from __future__ import annotations

import numpy as np

from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import element_launch, host_float, size_of, static_shape
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.registry import float_tensors, gpu_kernel

_BINDINGS = """
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> ab: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
"""


def _check(node: Node) -> str | None:
    reason = float_tensors(node, params=(1, 2, 3, 4))
    if reason:
        return reason
    if len(node.outputs) > 1 or int(node.attr("training_mode") or 0):
        return "BatchNormalization in training mode unsupported"
    if len(node.inputs[0].shape) < 2:
        return "BatchNormalization needs a channel dim"
    return None


@gpu_kernel("BatchNormalization", check=_check)
def batch_normalization(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    shape = static_shape(ctx, 0)
    eps = float(ctx.attr("epsilon"))
    scale, bias, mean, var = (host_float(ctx, i).astype(np.float64) for i in range(1, 5))
    a = scale / np.sqrt(var + eps)
    b = bias - mean * a
    folded = np.stack([a, b], axis=1).astype(np.float32).reshape(-1)  # (a0, b0, a1, b1...)
    ab = env.buffers.constant(ctx.node, "folded", lambda _: folded)
    out = env.buffers.tensor(shape, what=ctx.node.name)
    inner = size_of(shape[2:])
    launch = element_launch(
        env, ("batch_norm", "float32"), [("inner", "u32"), ("channels", "u32")], _BINDINGS,
        "let c = ((p.base + i) / p.inner) % p.channels;\n"
        "  y[i] = x[i] * ab[2u * c] + ab[2u * c + 1u];",
        [Bind.input(0, row_bytes=4), Bind.fixed(ab), Bind.fixed(out.buffer, row_bytes=4)],
        size_of(shape), dict(inner=inner, channels=shape[1]), what=ctx.node.op_type)

    def run(x, *params):
        launch(x)
        return out

    return run
