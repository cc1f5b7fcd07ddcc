"""The GPU execution provider (WebGPU through ``wgpu``): Vulkan on Linux, Raspberry Pi,
Jetson and Android, Metal on Apple, D3D12 on Windows.

    >>> from runtime import InferenceSession
    >>> session = InferenceSession(graph, providers=["gpu", "cpu"])   # doctest: +SKIP

Importing this package imports ``wgpu`` only when a provider is created or adapters are
listed; ``import runtime`` never imports it. See :mod:`.provider` for how kernels,
transfers and submissions fit together, and :mod:`.device` for adapters and errors.
"""

from __future__ import annotations

from runtime.providers.gpu.device import (
    AdapterInfo,
    gpu_available,
    gpu_context,
    list_adapters,
)
from runtime.providers.gpu.provider import GPUExecutionProvider
from runtime.providers.gpu.registry import gpu_supported_ops

__all__ = ["AdapterInfo", "GPUExecutionProvider", "gpu_available", "gpu_context",
           "gpu_supported_ops", "list_adapters"]
