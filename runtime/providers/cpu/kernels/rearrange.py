"""Tile, DepthToSpace, SpaceToDepth, Trilu, ReverseSequence, CenterCropPad and Size."""

from __future__ import annotations

import math

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.schema.creation import MAX_ELEMENTS
from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Tile", since=13)
def tile(ctx: KernelContext) -> Kernel:
    const_repeats = ctx.const(1)

    def tile_(x, repeats):
        reps = [int(r) for r in (const_repeats if const_repeats is not None else repeats)
                .reshape(-1)]
        if len(reps) != x.ndim or any(r < 0 for r in reps) \
                or x.size * math.prod(reps) > MAX_ELEMENTS:
            raise ShapeError(f"Tile repeats {reps} do not fit input {list(x.shape)}")
        return np.tile(x, reps)

    return tile_


@cpu_kernel("DepthToSpace", since=13)
def depth_to_space(ctx: KernelContext) -> Kernel:
    b = int(ctx.attr("blocksize"))
    crd = ctx.attr("mode") == "CRD"

    def depth_to_space_(x):
        n, c, h, w = x.shape
        if c % (b * b):
            raise ShapeError(f"DepthToSpace channels {c} are not divisible by {b * b}")
        if crd:
            y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        else:
            y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        return np.array(y).reshape(n, c // (b * b), h * b, w * b)

    return depth_to_space_


@cpu_kernel("SpaceToDepth", since=13)
def space_to_depth(ctx: KernelContext) -> Kernel:
    b = int(ctx.attr("blocksize"))
    # DCR: output channel = (block row, block col, channel); CRD: (channel, row, col).
    perm = (0, 1, 3, 5, 2, 4) if ctx.attr("mode") == "CRD" else (0, 3, 5, 1, 2, 4)

    def space_to_depth_(x):
        n, c, h, w = x.shape
        if h % b or w % b:
            raise ShapeError(f"SpaceToDepth spatial dims {h}x{w} are not divisible by {b}")
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(perm)
        return np.array(y).reshape(n, c * b * b, h // b, w // b)

    return space_to_depth_


@cpu_kernel("Trilu", since=14)
def trilu(ctx: KernelContext) -> Kernel:
    triangle = np.triu if ctx.attr("upper") else np.tril
    const_k = ctx.const(1) if ctx.has_input(1) else None

    def trilu_(x, k=None):
        given = const_k if const_k is not None else k
        diagonal = 0 if given is None else int(given.reshape(-1)[0])
        # numpy's triu/tril mask the last two axes of a stack of matrices, as ONNX does.
        return triangle(x, diagonal)

    return trilu_


@cpu_kernel("ReverseSequence", since=10)
def reverse_sequence(ctx: KernelContext) -> Kernel:
    batch_axis, time_axis = int(ctx.attr("batch_axis")), int(ctx.attr("time_axis"))

    def reverse_sequence_(x, sequence_lens):
        lens = [int(n) for n in sequence_lens.reshape(-1)]
        batches, steps = x.shape[batch_axis], x.shape[time_axis]
        if len(lens) != batches or any(not 0 <= n <= steps for n in lens):
            raise ShapeError(f"ReverseSequence sequence_lens {lens} must give {batches} lengths "
                             f"in [0, {steps}]")
        y = x.copy()
        for b, n in enumerate(lens):
            index = [slice(None)] * x.ndim
            index[batch_axis] = b
            index[time_axis] = slice(0, n)
            source = list(index)
            source[time_axis] = slice(n - 1, None, -1) if n else slice(0, 0)
            y[tuple(index)] = x[tuple(source)]
        return y

    return reverse_sequence_


@cpu_kernel("CenterCropPad", since=18)
def center_crop_pad(ctx: KernelContext) -> Kernel:
    axes_attr = ctx.attr("axes")

    def center_crop_pad_(x, shape):
        axes = list(range(x.ndim)) if axes_attr is None else [
            normalize_axis(int(a), x.ndim, "CenterCropPad axis") for a in axes_attr]
        target = [int(t) for t in shape.reshape(-1)]
        if len(target) != len(axes) or any(t < 0 for t in target):
            raise ShapeError(f"CenterCropPad shape {target} must give one size per axis {axes}")
        out_shape = list(x.shape)
        source = [slice(None)] * x.ndim
        dest = [slice(None)] * x.ndim
        for a, t in zip(axes, target, strict=True):
            size = x.shape[a]
            out_shape[a] = t
            # The extra element of an odd difference goes to the end, as ONNX's reference.
            if t < size:
                start = (size - t) // 2
                source[a] = slice(start, start + t)
            elif t > size:
                start = (t - size) // 2
                dest[a] = slice(start, start + size)
        if math.prod(out_shape) > MAX_ELEMENTS:
            raise ShapeError(f"CenterCropPad output {out_shape} is absurdly large")
        y = np.zeros(out_shape, dtype=x.dtype)
        y[tuple(dest)] = x[tuple(source)]
        return y

    return center_crop_pad_


@cpu_kernel("Size", since=13)
def size(ctx: KernelContext) -> Kernel:
    def size_(x):
        return np.array(x.size, dtype=np.int64)

    return size_
