"""The CPU kernel registry: coverage of the IR schema list, lookup, opset ranges."""

from __future__ import annotations

import pytest

from edgefw.errors import UnsupportedOpError
from edgefw.ir import known_ops
from runtime.providers.cpu import registry
from runtime.providers.cpu.registry import cpu_kernel, find_kernel, get_kernel, supported_ops


def test_every_schema_op_has_a_cpu_kernel():
    missing = sorted(set(known_ops()) - set(supported_ops()))
    assert not missing, f"IR ops without a CPU kernel: {missing}"


def test_every_cpu_kernel_has_a_schema():
    assert not sorted(set(supported_ops()) - set(known_ops()))


def test_unknown_op_lists_supported_ones():
    with pytest.raises(UnsupportedOpError, match="no kernel for 'Frobnicate'; supported: .*Gemm"):
        get_kernel("Frobnicate")


def test_opset_ranges():
    assert find_kernel("Softmax").since == 13
    assert find_kernel("Softmax", opset=17) is find_kernel("Softmax")
    assert find_kernel("Softmax", opset=11) is None  # the 2-D-view Softmax of old opsets
    assert find_kernel("Relu", opset=6) is not None


def test_registration_rejects_overlapping_ranges():
    try:
        cpu_kernel("TestOnlyOp", since=1, until=12)(lambda ctx: None)
        cpu_kernel("TestOnlyOp", since=13)(lambda ctx: None)
        assert find_kernel("TestOnlyOp", opset=12).until == 12
        assert find_kernel("TestOnlyOp", opset=13).since == 13
        with pytest.raises(ValueError, match="overlaps"):
            cpu_kernel("TestOnlyOp", since=10)(lambda ctx: None)
    finally:
        registry._KERNELS.pop(("", "TestOnlyOp"), None)
