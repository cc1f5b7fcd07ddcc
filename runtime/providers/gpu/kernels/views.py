"""Reshape, Flatten, Squeeze, Unsqueeze, Identity and Dropout (inference): views that share
their input's GPU buffer (no dispatch), for float32 and packed int8/uint8 tensors alike —
the element order does not change, only the shape."""

from __future__ import annotations

import numpy as np

from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import static_shape
from runtime.providers.gpu.launch import GPUKernelEnv
from runtime.providers.gpu.registry import gpu_kernel, is_constant
from runtime.providers.gpu.tensor import ITEMSIZE

#: Inputs that parameterize the view (must be constants): Reshape shape, (Un)Squeeze axes.
_PARAMS = {"Reshape": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Dropout": (1, 2)}


def _check(node: Node) -> str | None:
    if len(node.outputs) > 1:
        return f"{node.op_type} with {len(node.outputs)} outputs (mask) unsupported"
    for i in _PARAMS.get(node.op_type, ()):
        if i < len(node.inputs) and node.inputs[i] is not None and not is_constant(
                node.inputs[i]):
            return f"input {i} ({node.inputs[i].name}) is computed at run time"
    for v in (node.inputs[0], node.outputs[0]):
        if v.dtype not in ITEMSIZE:
            return f"dtype {v.dtype} unsupported ({v.name}; GPU tensors hold " + \
                ", ".join(ITEMSIZE) + ")"
    return None


@gpu_kernel("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", check=_check)
def view(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    shape = static_shape(ctx)
    last: list = [None, None]  # (input, its view): the input is the same object every run

    def run(x, *params):
        if x is not last[0]:
            last[0], last[1] = x, x.view(shape)
        return last[1]

    return run


def _constant_check(node: Node) -> str | None:
    if node.outputs[0].dtype != "float32":
        return f"dtype {node.outputs[0].dtype} unsupported (a Constant read on the host)"
    return None


@gpu_kernel("Constant", check=_constant_check)
def constant(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    from edgefw.ir.graph import constant_data

    held = env.buffers.device_constant(np.asarray(constant_data(ctx.node.outputs[0]),
                                                  np.float32))

    def run():
        return held

    return run
