"""``edgefw devices``: adapters with backend, type, limits and features; exit code 1 and
what to install when there is no usable GPU."""

from __future__ import annotations

import json

import pytest

from edgefw.cli import main
from edgefw.errors import DeviceError


@pytest.mark.usefixtures("gpu_context")
def test_devices_lists_the_adapter_the_gpu_provider_uses(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("providers: cpu, gpu\nwgpu: ")
    assert "<- the gpu provider uses this one" in out
    assert "max-storage-buffer-binding-size" in out and "features:" in out


@pytest.mark.usefixtures("gpu_context")
def test_devices_json(capsys):
    assert main(["devices", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    used = facts["gpu_provider_adapter"]
    adapters = [a for a in facts["adapters"] if (a["name"], a["backend"]) ==
                (used["name"], used["backend"])]
    assert adapters and adapters[0]["limits"]["max-buffer-size"] > 0
    assert isinstance(adapters[0]["features"], list) and facts["error"] is None


def test_devices_without_a_gpu_says_what_to_install(monkeypatch, capsys):
    from runtime.providers.gpu import device

    def missing():
        raise DeviceError("wgpu found no WebGPU adapter; " + device.INSTALL_HINT)

    monkeypatch.setattr(device, "list_adapters", lambda: [])
    monkeypatch.setattr(device, "gpu_context", missing)
    monkeypatch.setattr(device, "import_wgpu", lambda: type("wgpu", (), {"__version__": "x"}))
    assert main(["devices"]) == 1
    out = capsys.readouterr().out
    assert "no WebGPU adapter found" in out
    assert "edgefw[gpu]" in out and "mesa-vulkan-drivers" in out
