"""The CPU execution provider: numpy kernels, one file per op (family) in ``kernels/``.

>>> from runtime.providers.cpu import CPUExecutionProvider
>>> "Gemm" in CPUExecutionProvider().supported_ops()
True
"""

from __future__ import annotations

from edgefw.ir import Node
from runtime.providers.base import ExecutionProvider, Kernel, KernelContext
from runtime.providers.cpu import kernels  # noqa: F401  (registers the kernels)
from runtime.providers.cpu.registry import cpu_kernel, find_kernel, get_kernel, supported_ops


def _opset(node: Node) -> int | None:
    return node.meta.get("opset")


class CPUExecutionProvider(ExecutionProvider):
    """numpy kernels for every op of the IR schema list (float32/float16/float64, ints)."""

    name = "cpu"

    def supports(self, node: Node) -> bool:
        return find_kernel(node.op_type, node.domain, _opset(node)) is not None

    def build_kernel(self, ctx: KernelContext) -> Kernel:
        spec = get_kernel(ctx.node.op_type, ctx.node.domain, _opset(ctx.node))
        return spec.build(ctx)

    def output_alias(self, node: Node) -> str:
        return get_kernel(node.op_type, node.domain, _opset(node)).output_alias

    def supported_ops(self) -> list[str]:
        return supported_ops()


__all__ = ["CPUExecutionProvider", "cpu_kernel", "find_kernel", "get_kernel", "supported_ops"]
