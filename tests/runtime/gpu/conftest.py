"""GPU tests: skipped when no WebGPU adapter is found, unless ``EDGEFW_REQUIRE_GPU`` is set
(CI sets it, with Mesa's software Vulkan driver installed), in which case "no adapter"
fails them instead of silently skipping."""

from __future__ import annotations

import os

import pytest

from edgefw.errors import DeviceError

REQUIRE_GPU = os.environ.get("EDGEFW_REQUIRE_GPU", "").strip() not in ("", "0")


@pytest.fixture(scope="session")
def gpu_context():
    """The process's GPU context (skip, or fail under EDGEFW_REQUIRE_GPU, without one)."""
    from runtime.providers.gpu.device import gpu_context as open_context

    try:
        return open_context()
    except DeviceError as exc:
        if REQUIRE_GPU:
            pytest.fail(f"EDGEFW_REQUIRE_GPU is set but no GPU is usable: {exc}")
        pytest.skip(f"no usable WebGPU adapter: {exc}")
