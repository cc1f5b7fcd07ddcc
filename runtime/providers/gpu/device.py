"""WebGPU adapters and the one device the GPU provider uses, through the ``wgpu`` package.

    >>> from runtime.providers.gpu.device import list_adapters
    >>> [a.backend for a in list_adapters()]          # doctest: +SKIP
    ['Vulkan']

``wgpu`` is imported here, lazily: ``import runtime`` never loads it. :func:`gpu_context`
creates the device once per process (adapter discovery costs ~0.5 s) and raises
:class:`~edgefw.errors.DeviceError` saying what is missing and how to get it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from edgefw.errors import DeviceError

#: Limits the provider asks the adapter's best value of instead of WebGPU's defaults, so
#: big batches fit (the defaults are 128 MiB bindings, 256 MiB buffers, 256-byte offsets).
_RAISED_LIMITS = ("max-storage-buffer-binding-size", "max-buffer-size",
                  "max-compute-workgroup-storage-size", "max-storage-buffers-per-shader-stage",
                  "min-storage-buffer-offset-alignment")

#: Limits ``edgefw devices`` shows by default (``--json`` has them all).
KEY_LIMITS = ("max-buffer-size", "max-storage-buffer-binding-size",
              "max-compute-workgroup-storage-size", "max-compute-invocations-per-workgroup",
              "max-compute-workgroups-per-dimension", "min-storage-buffer-offset-alignment")

INSTALL_HINT = (
    "install the GPU extra (pip install 'edgefw[gpu]', which brings the wgpu package with its "
    "native library) and a Vulkan, Metal or D3D12 driver: the GPU vendor's driver, or for "
    "testing without a GPU Mesa's software Vulkan driver (Debian/Ubuntu: "
    "apt-get install mesa-vulkan-drivers)"
)


@dataclass(frozen=True)
class AdapterInfo:
    """What ``edgefw devices`` reports about one WebGPU adapter."""

    name: str
    backend: str  # "Vulkan", "Metal", "D3D12", "OpenGL"
    adapter_type: str  # "DiscreteGPU", "IntegratedGPU", "CPU" (software), "Unknown"
    driver: str
    vendor: str
    limits: dict[str, int] = field(default_factory=dict)
    features: tuple[str, ...] = ()

    @property
    def is_software(self) -> bool:
        return self.adapter_type.upper() == "CPU"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "type": self.adapter_type,
                "driver": self.driver, "vendor": self.vendor, "limits": dict(self.limits),
                "features": list(self.features)}


def import_wgpu() -> Any:
    """The ``wgpu`` module, or DeviceError naming the missing package."""
    try:
        import wgpu
    except ImportError as exc:
        raise DeviceError(f"the GPU provider needs the 'wgpu' package, which is not installed "
                          f"({exc}); {INSTALL_HINT}") from exc
    return wgpu


def _info(adapter: Any) -> AdapterInfo:
    info = dict(adapter.info)
    return AdapterInfo(
        name=str(info.get("device") or getattr(adapter, "summary", "unknown adapter")),
        backend=str(info.get("backend_type", "unknown")),
        adapter_type=str(info.get("adapter_type", "Unknown")),
        driver=str(info.get("description", "")),
        vendor=str(info.get("vendor", "")),
        limits={str(k): int(v) for k, v in dict(adapter.limits).items()
                if isinstance(v, int) and not isinstance(v, bool)},
        features=tuple(sorted(str(f) for f in adapter.features)),
    )


def list_adapters() -> list[AdapterInfo]:
    """Every adapter wgpu finds (an empty list when there is none)."""
    wgpu = import_wgpu()
    try:
        adapters = wgpu.gpu.enumerate_adapters_sync()
    except Exception as exc:  # the native library or a driver failed to load
        raise DeviceError(f"wgpu {wgpu.__version__} could not enumerate adapters "
                          f"({type(exc).__name__}: {exc}); {INSTALL_HINT}") from exc
    return [_info(a) for a in adapters]


class GPUContext:
    """The adapter, device and queue, plus the process-wide pipeline cache.

    One per process: pipelines compiled for one session are reused by the next.
    """

    def __init__(self, wgpu: Any, adapter: Any) -> None:
        self.wgpu = wgpu
        self.adapter = adapter
        self.info = _info(adapter)
        wanted = {name: self.info.limits[name] for name in _RAISED_LIMITS
                  if name in self.info.limits}
        self.device = adapter.request_device_sync(required_limits=wanted)
        self.queue = self.device.queue
        self.limits = {str(k): int(v) for k, v in dict(self.device.limits).items()
                       if isinstance(v, int) and not isinstance(v, bool)}
        self.max_binding_bytes = self.limits.get("max-storage-buffer-binding-size", 128 << 20)
        self.max_buffer_bytes = self.limits.get("max-buffer-size", 256 << 20)
        self.max_groups = self.limits.get("max-compute-workgroups-per-dimension", 65535)
        self.offset_alignment = self.limits.get("min-storage-buffer-offset-alignment", 256)
        from runtime.providers.gpu.pipelines import PipelineCache

        self.pipelines = PipelineCache(self.device)

    def __repr__(self) -> str:
        return f"<GPUContext {self.info.name} via {self.info.backend}>"


_context: GPUContext | None = None
_context_lock = threading.Lock()


def gpu_context() -> GPUContext:
    """The process's GPU device (created on first use); DeviceError if none is usable."""
    global _context
    with _context_lock:
        if _context is None:
            wgpu = import_wgpu()
            try:
                adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
            except Exception as exc:  # the native library reports a missing driver as a failure
                raise DeviceError(f"wgpu {wgpu.__version__} found no usable WebGPU adapter "
                                  f"({type(exc).__name__}: {exc}); {INSTALL_HINT}") from exc
            if adapter is None:
                raise DeviceError(f"wgpu {wgpu.__version__} found no WebGPU adapter (no Vulkan, "
                                  f"Metal or D3D12 driver); {INSTALL_HINT}")
            try:
                _context = GPUContext(wgpu, adapter)
            except DeviceError:
                raise
            except Exception as exc:
                raise DeviceError(f"could not open a device on adapter "
                                  f"{getattr(adapter, 'summary', adapter)}: "
                                  f"{type(exc).__name__}: {exc}") from exc
        return _context


def gpu_available() -> bool:
    """True when :func:`gpu_context` would succeed."""
    try:
        gpu_context()
    except DeviceError:
        return False
    return True


__all__ = ["INSTALL_HINT", "KEY_LIMITS", "AdapterInfo", "GPUContext", "gpu_available",
           "gpu_context", "import_wgpu", "list_adapters"]
