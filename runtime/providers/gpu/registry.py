"""The GPU provider's kernel registry: per op type, a builder and a check that says why a
node cannot run on the GPU (the reason the session's partition summary shows).

    @gpu_kernel("Relu", check=float_tensors)
    def relu(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
        ...

A check takes the node and returns None when the GPU can run it, else a short reason
("dtype int64 unsupported", "3-D pooling unsupported"). Checks see the graph's declared
types, where the batch may still be symbolic; builders see the plan's concrete shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.launch import GPUKernelEnv

GPUKernelBuilder = Callable[[KernelContext, GPUKernelEnv], Kernel]
SupportCheck = Callable[[Node], "str | None"]


@dataclass(frozen=True)
class GPUKernelSpec:
    op_type: str
    domain: str
    build: GPUKernelBuilder
    check: SupportCheck


_KERNELS: dict[tuple[str, str], GPUKernelSpec] = {}


def gpu_kernel(*op_types: str, check: SupportCheck, domain: str = ""
               ) -> Callable[[GPUKernelBuilder], GPUKernelBuilder]:
    """Register the decorated builder for ``op_types`` in ``domain`` ("" = ONNX)."""

    def register(build: GPUKernelBuilder) -> GPUKernelBuilder:
        for op_type in op_types:
            if (domain, op_type) in _KERNELS:
                raise ValueError(f"a GPU kernel for {op_type} is already registered")
            _KERNELS[(domain, op_type)] = GPUKernelSpec(op_type, domain, build, check)
        return build

    return register


def find_gpu_kernel(op_type: str, domain: str = "") -> GPUKernelSpec | None:
    return _KERNELS.get(("" if domain == "ai.onnx" else domain, op_type))


def gpu_supported_ops(domain: str = "") -> list[str]:
    """Sorted op types with a GPU kernel in ``domain``."""
    return sorted(op for d, op in _KERNELS if d == domain)


# ------------------------------------------------------------------------- shared checks
def _dtype(value) -> str | None:
    return None if value is None else value.dtype


def float_tensors(node: Node, params: Sequence[int] = (), data: Sequence[int] | None = None
                  ) -> str | None:
    """None if every data input and output is float32 with a known rank, and the inputs
    at ``params`` (shape, axes, bounds...) are constants; else why not."""
    for i, v in enumerate(node.inputs):
        if v is None:
            continue
        if i in params:
            if not is_constant(v):
                return f"input {i} ({v.name}) is computed at run time; it must be a constant"
            continue
        if data is not None and i not in data:
            continue
        reason = _float_value(v, f"input {v.name}")
        if reason:
            return reason
    for v in node.outputs:
        reason = _float_value(v, f"output {v.name}")
        if reason:
            return reason
    return None


def _float_value(v, what: str) -> str | None:
    if v.dtype != "float32":
        return f"dtype {v.dtype} unsupported ({what}; the GPU provider computes float32)"
    if v.shape is None:
        return f"{what} has an unknown rank"
    return None


def is_constant(value) -> bool:
    from edgefw.ir.graph import constant_data

    return value is not None and constant_data(value) is not None


def check_float(node: Node) -> str | None:
    return float_tensors(node)


def checks_all(*checks: SupportCheck) -> SupportCheck:
    """A check passing when every one of ``checks`` passes (the first reason otherwise)."""

    def check(node: Node) -> str | None:
        for c in checks:
            reason = c(node)
            if reason:
                return reason
        return None

    return check


__all__ = ["GPUKernelSpec", "check_float", "checks_all", "find_gpu_kernel", "float_tensors",
           "gpu_kernel", "gpu_supported_ops", "is_constant"]
