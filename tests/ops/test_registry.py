"""One op, findable everywhere: every frontend op has a backward and a graph form, and
every graph form it can emit has a CPU kernel."""

from __future__ import annotations

import edgefw.ops
from edgefw.ir import known_ops
from edgefw.ops.function import Function


def test_every_frontend_op_has_backward_and_ir_mapping():
    assert len(edgefw.ops.REGISTRY) >= 40
    for name, cls in edgefw.ops.REGISTRY.items():
        assert cls.backward is not Function.backward, f"{name} has no backward"
        if getattr(cls, "training_only", False):
            continue
        assert callable(getattr(cls, "lower", None)), f"{name} has no IR mapping (lower)"


def test_every_ir_op_has_a_cpu_kernel():
    import runtime  # noqa: F401 - registers the kernels
    from runtime.providers.cpu.registry import supported_ops

    registered = supported_ops()
    missing = sorted(set(known_ops()) - set(registered))
    assert not missing, f"IR ops without a CPU kernel: {missing}"
