"""Softmax and LogSoftmax along one axis (opset 13 semantics), max-subtracted."""

from __future__ import annotations

from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import size_of, static_shape
from runtime.providers.gpu.kernels.rows import row_launch
from runtime.providers.gpu.launch import GPUKernelEnv
from runtime.providers.gpu.registry import float_tensors, gpu_kernel

# Each lane walks its share of the row (lane, lane + LANES, ...); row_max/row_sum combine.
_BODY = """
  var m = bitcast<f32>(0xff800000u);
  for (var j = lane; j < p.len; j += LANES) { m = max(m, x[base + j * p.inner]); }
  m = row_max(m, lane);
  var s = 0.0;
  for (var j = lane; j < p.len; j += LANES) { s += exp(x[base + j * p.inner] - m); }
  s = row_sum(s, lane);
  for (var j = lane; j < p.len; j += LANES) {
    let at = base + j * p.inner;
    y[at] = RESULT;
  }
"""


@gpu_kernel("Softmax", "LogSoftmax", check=float_tensors)
def softmax(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    shape = static_shape(ctx, 0)
    axis = normalize_axis(int(ctx.attr("axis")), max(len(shape), 1))
    out = env.buffers.tensor(shape, what=ctx.node.name)
    log = ctx.node.op_type == "LogSoftmax"
    result = "x[at] - m - log(s)" if log else "exp(x[at] - m) / s"
    launch = row_launch(env, ctx, ("softmax", "float32", "log" if log else "exp"),
                        _BODY.replace("RESULT", result), "", [], out,
                        size_of(shape[:axis]), shape[axis] if shape else 1,
                        size_of(shape[axis + 1:]))

    def run(x):
        launch(x)
        return out

    return run
