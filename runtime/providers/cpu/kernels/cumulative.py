"""CumSum and CumProd along the axis input, with the exclusive and reverse flags."""

from __future__ import annotations

import numpy as np

from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def cumulative(x: np.ndarray, axis: int, exclusive: bool, reverse: bool, product: bool
               ) -> np.ndarray:
    """Running sum (or product) of ``x`` along ``axis``, in x's dtype."""
    a = normalize_axis(axis, x.ndim, "cumulative axis")
    y = np.flip(x, a) if reverse else x
    running = (np.cumprod if product else np.cumsum)(y, axis=a, dtype=x.dtype)
    if exclusive:  # shift by one along the axis, starting from the identity
        identity = np.ones_like if product else np.zeros_like
        head = identity(np.take(running, [0], axis=a))
        body = np.take(running, np.arange(running.shape[a] - 1), axis=a)
        running = np.concatenate([head, body], axis=a)
    return np.ascontiguousarray(np.flip(running, a) if reverse else running)


def _register(op_type: str, since: int, product: bool) -> None:
    @cpu_kernel(op_type, since=since)
    def build(ctx: KernelContext) -> Kernel:
        exclusive, reverse = bool(ctx.attr("exclusive")), bool(ctx.attr("reverse"))
        const_axis = ctx.const(1)

        def cumulative_(x, axis):
            a = int((const_axis if const_axis is not None else axis).reshape(-1)[0])
            return cumulative(x, a, exclusive, reverse, product)

        return cumulative_

    build.__name__ = op_type.lower()


_register("CumSum", 11, product=False)
_register("CumProd", 26, product=True)
