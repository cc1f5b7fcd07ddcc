"""unary_kernel(): where an elementwise result goes (in place, a preallocated buffer, or new);
register_ufuncs(): a table of ONNX ops that are plain numpy ufuncs, registered as kernels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def unary_kernel(ctx: KernelContext, fn: Callable[[np.ndarray, np.ndarray | None], np.ndarray]
                 ) -> Kernel:
    """Wrap ``fn(x, out)`` so it writes into x itself when the planner allows it, else into a
    preallocated buffer when the shape is static, else into a new array (out=None)."""
    if ctx.reuse_input(0):
        def unary_in_place(x):
            return fn(x, x)

        return unary_in_place
    out = ctx.output_buffer()

    def unary(x):
        return fn(x, out)

    return unary


def ufunc_kernel(ctx: KernelContext, ufunc: np.ufunc) -> Kernel:
    """A unary ufunc as a kernel (``np.exp``, ``np.sqrt``...)."""
    return unary_kernel(ctx, lambda x, out: ufunc(x, out=out))


def binary_ufunc_kernel(ctx: KernelContext, ufunc: np.ufunc) -> Kernel:
    """A binary ufunc as a kernel, into the preallocated buffer when there is one."""
    out = ctx.output_buffer()

    def binary(a, b):
        return ufunc(a, b, out=out)

    return binary


def register_ufuncs(table: dict[str, np.ufunc]) -> None:
    """Register ``op type -> ufunc`` (unary or binary, by ``ufunc.nin``) as CPU kernels."""
    for op_type, ufunc in table.items():
        make = ufunc_kernel if ufunc.nin == 1 else binary_ufunc_kernel

        def build(ctx: KernelContext, make=make, ufunc=ufunc) -> Kernel:
            return make(ctx, ufunc)

        build.__name__ = op_type.lower()
        cpu_kernel(op_type)(build)


__all__ = ["binary_ufunc_kernel", "register_ufuncs", "ufunc_kernel", "unary_kernel"]
