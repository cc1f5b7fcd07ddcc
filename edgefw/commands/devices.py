"""``edgefw devices``: the execution providers and the GPU adapters this machine offers.

    edgefw devices            # providers; each WebGPU adapter: name, backend, type, driver,
                              # key limits and features; which one the gpu provider uses
    edgefw devices --json     # the same as one JSON object (all limits)

Exit code 0 when a GPU adapter is usable, 1 when none is (the message says what to install),
so scripts can check for a GPU before asking for ``providers=["gpu"]``.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "devices", help="list execution providers and GPU adapters (WebGPU through wgpu)",
        description="List the execution providers and every WebGPU adapter wgpu finds "
                    "(Vulkan, Metal, D3D12, OpenGL): name, backend, type, driver, limits and "
                    "features, and which adapter the gpu provider uses.")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=cmd_devices)


def describe_devices() -> dict[str, Any]:
    """What ``devices`` prints, as plain data (what ``--json`` writes).

    >>> sorted(describe_devices())      # doctest: +SKIP
    ['adapters', 'error', 'gpu_provider_adapter', 'providers', 'wgpu_version']
    """
    from edgefw.errors import DeviceError
    from runtime import available_providers
    from runtime.providers.gpu import device

    facts: dict[str, Any] = {"providers": available_providers(), "wgpu_version": None,
                             "adapters": [], "gpu_provider_adapter": None, "error": None}
    try:
        facts["wgpu_version"] = device.import_wgpu().__version__
        facts["adapters"] = [a.as_dict() for a in device.list_adapters()]
        used = device.gpu_context().info
        facts["gpu_provider_adapter"] = {"name": used.name, "backend": used.backend}
    except DeviceError as exc:
        facts["error"] = str(exc)
    return facts


def format_devices(facts: dict[str, Any]) -> str:
    from runtime.providers.gpu.device import KEY_LIMITS

    lines = ["providers: " + ", ".join(facts["providers"])]
    wgpu = facts["wgpu_version"]
    lines.append(f"wgpu: {wgpu}" if wgpu else "wgpu: not installed")
    used = facts["gpu_provider_adapter"]
    for i, a in enumerate(facts["adapters"]):
        mark = "  <- the gpu provider uses this one" if used and (
            a["name"], a["backend"]) == (used["name"], used["backend"]) else ""
        kind = f"{a['type']}, software" if a["type"].upper() == "CPU" else a["type"]
        lines.append(f"adapter {i}: {a['name']} [{a['backend']}, {kind}]{mark}")
        if a["driver"] or a["vendor"]:
            lines.append(f"  driver: {a['driver'] or '-'}   vendor: {a['vendor'] or '-'}")
        limits = [f"{name} {_size(a['limits'][name], name)}" for name in KEY_LIMITS
                  if name in a["limits"]]
        for label, items in (("limits", limits), ("features", a["features"])):
            lines.append(textwrap.fill(", ".join(items) or "-", width=100, break_on_hyphens=False,
                                       initial_indent=f"  {label}: ",
                                       subsequent_indent="    "))
    if not facts["adapters"] and wgpu:
        lines.append("no WebGPU adapter found")
    if facts["error"]:
        lines.append(f"gpu provider unavailable: {facts['error']}")
    return "\n".join(lines)


def _size(value: int, name: str) -> str:
    if "size" in name and value >= 1 << 20:
        return f"{value / 2**20:.0f} MiB"
    if "size" in name and value >= 1 << 10:
        return f"{value / 2**10:.0f} KiB"
    return str(value)


def cmd_devices(args: argparse.Namespace) -> int:
    facts = describe_devices()
    print(json.dumps(facts, indent=2) if args.json else format_devices(facts))
    return 0 if facts["gpu_provider_adapter"] else 1
