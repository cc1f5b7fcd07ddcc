"""Softmax and LogSoftmax along one axis (opset >= 13: the axis alone, not a 2-D view)."""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.unary_kernel import unary_kernel
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Softmax", since=13)
def softmax(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))

    # ufunc reductions, not np.max/np.sum: their Python wrappers cost ~2 us a call.
    def softmax_(x, out):
        peak = np.maximum.reduce(x, axis=axis, keepdims=True)
        y = np.subtract(x, peak, out=out)
        np.exp(y, out=y)
        total = np.add.reduce(y, axis=axis, keepdims=True)
        return np.divide(y, total, out=y)

    return unary_kernel(ctx, softmax_)


@cpu_kernel("LogSoftmax", since=13)
def log_softmax(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))

    def log_softmax_(x, out):
        peak = np.maximum.reduce(x, axis=axis, keepdims=True)
        y = np.subtract(x, peak, out=out)
        log_total = np.log(np.add.reduce(np.exp(y), axis=axis, keepdims=True))
        return np.subtract(y, log_total, out=y)

    return unary_kernel(ctx, log_softmax_)
