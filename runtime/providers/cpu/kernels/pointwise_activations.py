"""Elu, Selu, Celu, HardSigmoid, HardSwish, Softplus, Softsign, ThresholdedRelu, Mish,
Swish, Shrink and PRelu (Relu/LeakyRelu/Sigmoid/Tanh/Gelu live in activations.py).

Exponentials are taken of ``min(x, 0)`` (or through ``logaddexp``) so large inputs cannot
overflow into inf * 0 = nan.
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.activations import sigmoid_into
from runtime.providers.cpu.kernels.unary_kernel import unary_kernel
from runtime.providers.cpu.registry import cpu_kernel


def _put(y: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return y
    out[...] = y
    return out


@cpu_kernel("Elu")
def elu(ctx: KernelContext) -> Kernel:
    alpha = ctx.output_dtype().type(ctx.attr("alpha"))

    def elu_(x, out):
        return _put(np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), out)

    return unary_kernel(ctx, elu_)


@cpu_kernel("Selu")
def selu(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()
    alpha, gamma = dtype.type(ctx.attr("alpha")), dtype.type(ctx.attr("gamma"))

    def selu_(x, out):
        y = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
        return np.multiply(y, gamma, out=out)

    return unary_kernel(ctx, selu_)


@cpu_kernel("Celu")
def celu(ctx: KernelContext) -> Kernel:
    alpha = ctx.output_dtype().type(ctx.attr("alpha"))

    def celu_(x, out):
        negative = alpha * np.expm1(np.minimum(x, 0) / alpha)
        return np.add(np.maximum(x, 0), negative, out=out)

    return unary_kernel(ctx, celu_)


@cpu_kernel("HardSigmoid")
def hard_sigmoid(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()
    alpha, beta = dtype.type(ctx.attr("alpha")), dtype.type(ctx.attr("beta"))

    def hard_sigmoid_(x, out):
        y = np.multiply(x, alpha, out=out)
        np.add(y, beta, out=y)
        return np.clip(y, 0, 1, out=y)

    return unary_kernel(ctx, hard_sigmoid_)


@cpu_kernel("HardSwish")
def hard_swish(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()
    sixth, half = dtype.type(1 / 6), dtype.type(0.5)

    def hard_swish_(x, out):
        gate = np.clip(x * sixth + half, 0, 1)
        return np.multiply(x, gate, out=out)

    return unary_kernel(ctx, hard_swish_)


def softplus_into(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """log(1 + exp(x)) without overflow."""
    return np.logaddexp(x.dtype.type(0), x, out=out)


@cpu_kernel("Softplus")
def softplus(ctx: KernelContext) -> Kernel:
    return unary_kernel(ctx, softplus_into)


@cpu_kernel("Softsign")
def softsign(ctx: KernelContext) -> Kernel:
    def softsign_(x, out):
        return np.divide(x, 1 + np.abs(x), out=out)

    return unary_kernel(ctx, softsign_)


@cpu_kernel("ThresholdedRelu")
def thresholded_relu(ctx: KernelContext) -> Kernel:
    alpha = ctx.output_dtype().type(ctx.attr("alpha"))

    def thresholded_relu_(x, out):
        return _put(np.where(x > alpha, x, x.dtype.type(0)), out)

    return unary_kernel(ctx, thresholded_relu_)


@cpu_kernel("Mish")
def mish(ctx: KernelContext) -> Kernel:
    def mish_(x, out):
        return np.multiply(x, np.tanh(softplus_into(x, None)), out=out)

    return unary_kernel(ctx, mish_)


@cpu_kernel("Swish")
def swish(ctx: KernelContext) -> Kernel:
    alpha = ctx.output_dtype().type(ctx.attr("alpha"))

    def swish_(x, out):
        return np.multiply(x, sigmoid_into(x * alpha, None), out=out)

    return unary_kernel(ctx, swish_)


@cpu_kernel("Shrink")
def shrink(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()
    bias, lambd = float(ctx.attr("bias")), float(ctx.attr("lambd"))

    def shrink_(x, out):
        # In float64 so integer inputs shift by a float bias exactly before the cast back.
        wide = x.astype(np.float64)
        y = np.where(wide < -lambd, wide + bias, np.where(wide > lambd, wide - bias, 0.0))
        return _put(y.astype(dtype), out)

    return unary_kernel(ctx, shrink_)


@cpu_kernel("PRelu")
def prelu(ctx: KernelContext) -> Kernel:
    out = ctx.output_buffer()

    def prelu_(x, slope):
        y = np.where(x < 0, x * slope, x)
        return _put(y.astype(x.dtype, copy=False), out)

    return prelu_
