"""InstanceNormalization, GroupNormalization and MeanVarianceNormalization: statistics over
spatial dims (per sample and channel, or channel group), then an optional affine map.

Statistics are computed in float32 at least (float16 inputs are widened: stash_type=1).
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def _wide(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _per_channel(v: np.ndarray, rank: int) -> np.ndarray:
    return v.reshape((-1,) + (1,) * (rank - 2))


def _normalize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    mean = np.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(np.square(centered), axis=axes, keepdims=True)
    return centered / np.sqrt(var + x.dtype.type(eps))


@cpu_kernel("InstanceNormalization", since=6)
def instance_normalization(ctx: KernelContext) -> Kernel:
    eps = float(ctx.attr("epsilon"))
    dtype = ctx.output_dtype()

    def instance_norm(x, scale, bias):
        y = _normalize(_wide(x), tuple(range(2, x.ndim)), eps)
        y = y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)
        return y.astype(dtype, copy=False)

    return instance_norm


@cpu_kernel("GroupNormalization", since=21)
def group_normalization(ctx: KernelContext) -> Kernel:
    eps = float(ctx.attr("epsilon"))
    groups = int(ctx.attr("num_groups"))
    dtype = ctx.output_dtype()

    def group_norm(x, scale, bias):
        n, c = x.shape[:2]
        if c % groups:
            raise ShapeError(f"GroupNormalization channels {c} are not divisible by "
                             f"num_groups {groups}")
        grouped = _wide(x).reshape(n, groups, -1)
        y = _normalize(grouped, (2,), eps).reshape(x.shape)
        y = y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)
        return y.astype(dtype, copy=False)

    return group_norm


@cpu_kernel("MeanVarianceNormalization", since=9)
def mean_variance_normalization(ctx: KernelContext) -> Kernel:
    axes_attr = tuple(int(a) for a in ctx.attr("axes"))
    dtype = ctx.output_dtype()

    def mvn(x):
        axes = tuple(a + x.ndim if a < 0 else a for a in axes_attr)
        xw = _wide(x)
        # ONNX's function body: std = sqrt(E[x^2] - E[x]^2), and 1e-9 added to it.
        mean = np.mean(xw, axis=axes, keepdims=True)
        variance = np.mean(np.square(xw), axis=axes, keepdims=True) - np.square(mean)
        std = np.sqrt(np.maximum(variance, 0))
        return ((xw - mean) / (std + xw.dtype.type(1e-9))).astype(dtype, copy=False)

    return mvn
