"""Execution providers by name; the session assigns each node to the first listed provider
that supports it.

>>> from runtime.providers import get_provider, available_providers
>>> available_providers()
['cpu', 'gpu']
>>> get_provider("CPUExecutionProvider").name
'cpu'
"""

from __future__ import annotations

from collections.abc import Callable

from edgefw.errors import DeviceError
from runtime.providers.base import ExecutionProvider, Kernel, KernelContext

# name -> factory; factories are called lazily so an optional provider (gpu) only imports
# its dependencies when asked for.
_PROVIDERS: dict[str, Callable[[], ExecutionProvider]] = {}
_ALIASES = {"CPUExecutionProvider": "cpu"}


def register_provider(name: str, factory: Callable[[], ExecutionProvider],
                      aliases: tuple[str, ...] = ()) -> None:
    """Make ``factory`` available under ``name`` (and ``aliases``)."""
    _PROVIDERS[name] = factory
    for alias in aliases:
        _ALIASES[alias] = name


def available_providers() -> list[str]:
    """Registered providers (whether their device is present is only known when one is
    created: ``get_provider("gpu")`` raises DeviceError without an adapter)."""
    return list(_PROVIDERS)


def canonical_provider_name(name: str) -> str | None:
    """``"CPUExecutionProvider"`` -> ``"cpu"``; None for an unknown name."""
    key = _ALIASES.get(name, name) if isinstance(name, str) else None
    return key if key in _PROVIDERS else None


def get_provider(name: str) -> ExecutionProvider:
    """A provider instance; DeviceError naming the available ones when unknown."""
    key = _ALIASES.get(name, name)
    if not isinstance(name, str) or key not in _PROVIDERS:
        raise DeviceError(f"unknown execution provider {name!r}; available: "
                          + ", ".join(available_providers()))
    return _PROVIDERS[key]()


def _cpu() -> ExecutionProvider:
    from runtime.providers.cpu import CPUExecutionProvider

    return CPUExecutionProvider()


def _gpu() -> ExecutionProvider:
    # Imported here: the GPU provider imports wgpu, which ``import runtime`` must not.
    from runtime.providers.gpu import GPUExecutionProvider

    return GPUExecutionProvider()


register_provider("cpu", _cpu)
register_provider("gpu", _gpu, aliases=("GPUExecutionProvider", "WebGpuExecutionProvider"))

__all__ = [
    "ExecutionProvider",
    "Kernel",
    "KernelContext",
    "available_providers",
    "canonical_provider_name",
    "get_provider",
    "register_provider",
]
