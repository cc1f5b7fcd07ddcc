"""LayerNormalization over the trailing dims from ``axis`` (output Y only), two-pass
statistics (mean, then the mean of squared deviations) like the CPU provider."""

from __future__ import annotations

import numpy as np

from edgefw.ir import Node
from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import host_float, known_at_build, size_of, static_shape
from runtime.providers.gpu.kernels.rows import row_launch
from runtime.providers.gpu.launch import GPUKernelEnv
from runtime.providers.gpu.registry import float_tensors, gpu_kernel

_BODY = """
  var s = 0.0;
  for (var j = lane; j < p.len; j += LANES) { s += x[base + j]; }
  let mean = row_sum(s, lane) / f32(p.len);
  var q = 0.0;
  for (var j = lane; j < p.len; j += LANES) { let d = x[base + j] - mean; q += d * d; }
  let inv_std = 1.0 / sqrt(row_sum(q, lane) / f32(p.len) + p.eps);
  for (var j = lane; j < p.len; j += LANES) {
    y[base + j] = (x[base + j] - mean) * inv_std * gamma[j] + beta[j];
  }
"""


def _check(node: Node) -> str | None:
    reason = float_tensors(node, data=(0,))
    if reason:
        return reason
    if len(node.outputs) > 1:
        return "LayerNormalization Mean/InvStdDev outputs unsupported"
    for v in node.inputs[1:]:
        if v is not None and not known_at_build(v):
            return f"LayerNormalization {v.name} computed at run time (must be a constant)"
        if v is not None and v.dtype != "float32":
            return f"dtype {v.dtype} unsupported (input {v.name})"
    return None


@gpu_kernel("LayerNormalization", check=_check)
def layer_normalization(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    shape = static_shape(ctx, 0)
    axis = normalize_axis(int(ctx.attr("axis")), len(shape))
    length = size_of(shape[axis:])
    out = env.buffers.tensor(shape, what=ctx.node.name)
    normalized = tuple(shape[axis:])
    scale = np.broadcast_to(host_float(ctx, 1), normalized).reshape(-1)
    bias = host_float(ctx, 2)
    bias = np.zeros(length, np.float32) if bias is None else np.broadcast_to(
        bias, normalized).reshape(-1)
    gamma = env.buffers.constant(ctx.node, "gamma", lambda _: np.ascontiguousarray(scale))
    beta = env.buffers.constant(ctx.node, "beta", lambda _: np.ascontiguousarray(bias))
    launch = row_launch(env, ctx, ("layer_norm", "float32"), _BODY, "",
                        [("gamma", gamma), ("beta", beta)], out, size_of(shape[:axis]), length,
                        1, eps=float(ctx.attr("epsilon")))

    def run(x, scale_input=None, bias_input=None):
        launch(x)
        return out

    return run
