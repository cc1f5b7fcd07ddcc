"""Constant: returns the tensor held in its attribute (read-only, shared across runs)."""

from __future__ import annotations

import numpy as np

from edgefw.ir.schema.tensor import constant_value
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Constant", since=13, output_alias="const")
def constant(ctx: KernelContext) -> Kernel:
    value = np.array(constant_value(ctx.node.attrs))
    value.flags.writeable = False

    def constant_():
        return value

    return constant_
