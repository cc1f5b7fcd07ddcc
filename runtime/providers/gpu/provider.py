"""The GPU execution provider: WGSL kernels on WebGPU through ``wgpu``.

    >>> from runtime import InferenceSession
    >>> session = InferenceSession(graph, providers=["gpu", "cpu"])   # doctest: +SKIP
    >>> print(session.get_provider_summary())                         # doctest: +SKIP
    12 nodes on gpu, 1 on cpu: shape (Shape: dtype int64 unsupported ...)

Kernels take and return :class:`GPUTensor` s (``device = "gpu"``); the planner inserts the
transfers this provider makes (:meth:`upload`, :meth:`download`) where a value crosses
to or from a CPU node, a graph input or a graph output. Kernel calls only record work;
it is submitted once, when the first result is read back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgefw.errors import DeviceError, UnsupportedOpError
from edgefw.ir import Node, TensorType
from edgefw.ir.schema.dims import is_static
from runtime.providers.base import ExecutionProvider, Kernel, KernelContext
from runtime.providers.gpu import kernels  # noqa: F401  (registers the kernels)
from runtime.providers.gpu.buffers import BufferManager, DeviceToHost, HostToDevice
from runtime.providers.gpu.commands import CommandRecorder
from runtime.providers.gpu.device import GPUContext, gpu_context
from runtime.providers.gpu.launch import GPUKernelEnv
from runtime.providers.gpu.registry import find_gpu_kernel, gpu_supported_ops
from runtime.providers.gpu.tensor import ITEMSIZE

#: Ops whose GPU kernels apply ``node.meta["fused_activation"]``.
FUSED_ACTIVATION_OPS = ("Conv", "Gemm", "MatMul", "Add")


class GPUExecutionProvider(ExecutionProvider):
    """Runs float32 (and QDQ int8) nodes on the process's WebGPU device.

    Creating one opens the device (once per process) and raises DeviceError when no
    adapter is usable. Each instance (one per session) has its own command recorder and
    its own uploaded weights.
    """

    name = "gpu"
    #: Kernels take and return tensors on this device; the planner inserts transfers.
    device = "gpu"

    def __init__(self, context: GPUContext | None = None) -> None:
        self.context = context or gpu_context()
        self.recorder = CommandRecorder(self.context.device, self.context.queue)
        self.buffers = BufferManager(self.context, self.recorder)
        self.env = GPUKernelEnv(self.context, self.buffers, self.recorder)

    # ------------------------------------------------------------- partitioning
    def supports(self, node: Node) -> bool:
        return self.unsupported_reason(node) is None

    def unsupported_reason(self, node: Node) -> str | None:
        """None when this provider can run ``node``, else a short reason for the
        session's partition summary."""
        spec = find_gpu_kernel(node.op_type, node.domain)
        if spec is None:
            return "no GPU kernel"
        if node.meta.get("opset") is not None:
            return f"old-form node (opset {node.meta['opset']}) has no GPU kernel"
        if node.meta.get("fused_activation") is not None:
            if node.op_type not in FUSED_ACTIVATION_OPS:
                return "fused activation on this op unsupported"
            try:
                from runtime.providers.gpu.pipelines import activation_key

                activation_key(node.meta["fused_activation"])
            except UnsupportedOpError as exc:
                return str(exc)
        return spec.check(node) or self._too_big(node)

    def _too_big(self, node: Node) -> str | None:
        """Constants larger than one storage binding (AlexNet's 151 MiB fc6 weight on a
        128 MiB-binding adapter) stay on the CPU."""
        from runtime.providers.gpu.kernels.common import known_at_build

        limit = self.context.max_binding_bytes
        for v in node.inputs:
            if v is None or not known_at_build(v) or v.shape is None:
                continue
            nbytes = 4 * int(np.prod([d if isinstance(d, int) else 1 for d in v.shape]))
            if nbytes > limit:
                return (f"constant {v.name} ({nbytes / 2**20:.1f} MiB) exceeds the adapter's "
                        f"{limit / 2**20:.1f} MiB storage binding limit")
        return None

    def supported_ops(self) -> list[str]:
        return gpu_supported_ops()

    # ----------------------------------------------------------------- kernels
    def build_kernel(self, ctx: KernelContext) -> Kernel:
        spec = find_gpu_kernel(ctx.node.op_type, ctx.node.domain)
        if spec is None:
            raise UnsupportedOpError(f"the GPU provider has no kernel for {ctx.node.op_type!r}")
        shapes = [t.shape for t in ctx.output_types] + [
            t.shape for t in ctx.input_types if t is not None]
        if not all(is_static(s) for s in shapes):
            # The session's first plan uses the declared shapes (batch still symbolic) and
            # is never run: kernels are built when a run binds the batch.
            return _needs_static_shapes(ctx.node)
        return spec.build(ctx, self.env)

    def output_alias(self, node: Node) -> str:
        # GPU tensors are not the planner's host buffers: nothing to share or reuse there.
        return "fresh"

    # --------------------------------------------------------------- transfers
    def upload(self, value_type: TensorType) -> Callable[[Any], Any]:
        """A function copying a host array of ``value_type`` to the GPU (one per
        boundary in a plan; it owns its buffer)."""
        dtype = value_type.dtype if value_type.dtype in ITEMSIZE else "float32"
        return HostToDevice(self.buffers, dtype, "an input copied to the GPU")

    def download(self, value_type: TensorType) -> Callable[[Any], np.ndarray]:
        """A function reading a GPU tensor back (submits the pending work first)."""
        return DeviceToHost(self.buffers)

    # ------------------------------------------------------------------- stats
    @property
    def stats(self) -> dict[str, int]:
        """Submissions and dispatches so far, constants uploaded, pipelines compiled."""
        return {"submissions": self.recorder.submissions,
                "dispatches": self.recorder.dispatches,
                "constant_uploads": self.buffers.constant_uploads,
                "constant_bytes": self.buffers.constant_bytes,
                "allocated_bytes": self.buffers.allocated_bytes,
                "pipelines": len(self.context.pipelines)}

    def __repr__(self) -> str:
        return f"<GPUExecutionProvider on {self.context.info.name} " \
               f"({self.context.info.backend})>"


def _needs_static_shapes(node: Node) -> Kernel:
    def unplanned(*args: Any) -> Any:
        raise DeviceError(f"{node.describe()}: this GPU kernel was planned without concrete "
                          "shapes; run the session so it plans for the inputs' shapes")

    return unplanned


__all__ = ["FUSED_ACTIVATION_OPS", "GPUExecutionProvider"]
