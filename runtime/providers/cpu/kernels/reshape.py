"""Reshape, Flatten, Squeeze, Unsqueeze: views of their input (no copy when possible)."""

from __future__ import annotations

import math

import numpy as np

from edgefw.errors import ShapeError
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def onnx_reshape_target(in_shape: tuple[int, ...], target: list[int], allowzero: bool
                        ) -> tuple[int, ...]:
    """Resolve Reshape's 0 (copy the input dim) and -1 (inferred) against ``in_shape``."""
    dims = [in_shape[i] if d == 0 and not allowzero else d for i, d in enumerate(target)]
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        total = math.prod(in_shape)
        if known == 0 or total % known:
            raise ShapeError(f"cannot reshape {list(in_shape)} to {target}")
        dims[dims.index(-1)] = total // known
    if math.prod(dims) != math.prod(in_shape):
        raise ShapeError(f"cannot reshape {list(in_shape)} ({math.prod(in_shape)} elements) "
                         f"to {target} ({math.prod(dims)} elements)")
    return tuple(dims)


@cpu_kernel("Reshape", since=14, output_alias="view")
def reshape(ctx: KernelContext) -> Kernel:
    static = ctx.static_output_shape()
    allowzero = bool(ctx.attr("allowzero"))
    if static is not None and ctx.const(1) is not None:
        def reshape_static(x, _shape):
            return x.reshape(static)

        return reshape_static
    const_target = ctx.const(1)

    def reshape_dynamic(x, shape):
        target = const_target if const_target is not None else shape
        return x.reshape(onnx_reshape_target(x.shape, [int(d) for d in target], allowzero))

    return reshape_dynamic


@cpu_kernel("Flatten", since=13, output_alias="view")
def flatten(ctx: KernelContext) -> Kernel:
    static = ctx.static_output_shape()
    if static is not None:
        def flatten_static(x):
            return x.reshape(static)

        return flatten_static
    axis = int(ctx.attr("axis"))

    def flatten_dynamic(x):
        a = axis + x.ndim if axis < 0 else axis
        return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))

    return flatten_dynamic


def _axes(values: np.ndarray | None) -> tuple[int, ...] | None:
    return None if values is None else tuple(int(a) for a in values.reshape(-1))


@cpu_kernel("Squeeze", since=13, output_alias="view")
def squeeze(ctx: KernelContext) -> Kernel:
    static = ctx.static_output_shape()
    if static is not None and (not ctx.has_input(1) or ctx.const(1) is not None):
        def squeeze_static(x, _axes=None):
            if x.size != math.prod(static):
                raise ShapeError(f"cannot squeeze {list(x.shape)} to {list(static)}")
            return x.reshape(static)

        return squeeze_static
    const_axes = _axes(ctx.const(1)) if ctx.has_input(1) else None

    def squeeze_dynamic(x, axes=None):
        which = const_axes if const_axes is not None else _axes(axes)
        return np.squeeze(x, axis=which)

    return squeeze_dynamic


@cpu_kernel("Unsqueeze", since=13, output_alias="view")
def unsqueeze(ctx: KernelContext) -> Kernel:
    static = ctx.static_output_shape()
    if static is not None and ctx.const(1) is not None:
        def unsqueeze_static(x, _axes):
            return x.reshape(static)

        return unsqueeze_static
    const_axes = _axes(ctx.const(1))

    def unsqueeze_dynamic(x, axes):
        which = const_axes if const_axes is not None else _axes(axes)
        return np.expand_dims(x, which)

    return unsqueeze_dynamic
