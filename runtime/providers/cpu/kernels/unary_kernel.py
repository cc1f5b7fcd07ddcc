"""unary_kernel(): where an elementwise result goes (in place, a preallocated buffer, or new)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from runtime.providers.base import Kernel, KernelContext


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


__all__ = ["ufunc_kernel", "unary_kernel"]
