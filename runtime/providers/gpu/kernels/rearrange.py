"""Transpose, Slice, Split, Concat and Expand as strided copies of 32-bit words (float32,
int8 and uint8 tensors alike).

One kernel serves them all: element ``i`` of an iteration shape is read from
``src_offset + sum(index * src_strides)`` and written to ``dst_offset + sum(index *
dst_strides)`` (strides may be negative: Slice with negative steps; zero: Expand). Dims
that are contiguous in both source and destination are merged first, so a Concat along
channels copies (outer, block) rectangles, not 4-D index arithmetic.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import UnsupportedOpError
from edgefw.ir import Node
from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import element_launch, size_of, static_shape
from runtime.providers.gpu.launch import Bind, GPUKernelEnv, Launch
from runtime.providers.gpu.registry import gpu_kernel, is_constant
from runtime.providers.gpu.tensor import WORD_TYPES

MAX_RANK = 8
FIELDS = [("rank", "u32"), ("src_offset", "i32"), ("dst_offset", "i32"),
          ("dims", f"u32[{MAX_RANK}]"), ("src_strides", f"i32[{MAX_RANK}]"),
          ("dst_strides", f"i32[{MAX_RANK}]")]
BINDINGS = """
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
"""
BODY = """var rest = i;
  var src = p.src_offset;
  var dst = p.dst_offset;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let u = u32(d);
    let dim = p.dims[u >> 2u][u & 3u];
    let at = i32(rest % dim);
    rest /= dim;
    src += at * p.src_strides[u >> 2u][u & 3u];
    dst += at * p.dst_strides[u >> 2u][u & 3u];
  }
  y[u32(dst)] = x[u32(src)];"""


def contiguous_strides(shape) -> list[int]:
    return [size_of(shape[d + 1:]) for d in range(len(shape))]


def merge_dims(dims, src, dst) -> tuple[list[int], list[int], list[int]]:
    """Drop size-1 dims and merge neighbours contiguous in both layouts."""
    kept = [(d, s, t) for d, s, t in zip(dims, src, dst, strict=True) if d != 1]
    merged: list[list[int]] = []
    for d, s, t in kept:
        if merged and merged[-1][1] == s * d and merged[-1][2] == t * d:
            merged[-1] = [merged[-1][0] * d, s, t]
        else:
            merged.append([d, s, t])
    if not merged:
        merged = [[1, 0, 0]]
    return [m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged]


def copy_launch(env: GPUKernelEnv, ctx: KernelContext, dims, src_strides, dst_strides,
                src_offset: int, dst_offset: int, out_buffer, arg: int = 0) -> Launch:
    dims, src_strides, dst_strides = merge_dims(list(dims), list(src_strides),
                                                list(dst_strides))
    if len(dims) > MAX_RANK:
        raise UnsupportedOpError(f"a copy over {len(dims)} dims (the "
                                 f"GPU kernel handles {MAX_RANK})")
    return element_launch(
        env, ("strided_copy", "word"), FIELDS, BINDINGS, BODY,
        [Bind.input(arg), Bind.fixed(out_buffer)], size_of(dims),
        dict(rank=len(dims), src_offset=src_offset, dst_offset=dst_offset, dims=dims,
             src_strides=src_strides, dst_strides=dst_strides), what=ctx.node.op_type)


def word_tensors(node: Node, params=()) -> str | None:
    """Data movement copies 32-bit words: float32, int8 and uint8 tensors alike."""
    dtype = node.outputs[0].dtype
    for i, v in enumerate(node.inputs):
        if v is None or i in params:
            if v is not None and not is_constant(v):
                return f"input {i} ({v.name}) is computed at run time; it must be a constant"
            continue
        if v.dtype not in WORD_TYPES or v.dtype != dtype:
            return f"dtype {v.dtype} unsupported ({v.name}; GPU tensors hold " \
                   + ", ".join(WORD_TYPES) + ")"
        if v.shape is None:
            return f"{v.name} has an unknown rank"
    return None


def _rank_check(node: Node, params=()) -> str | None:
    reason = word_tensors(node, params=params)
    if reason:
        return reason
    if any(len(v.shape) > MAX_RANK for v in node.inputs[:1] + node.outputs if v is not None):
        return f"rank above {MAX_RANK} unsupported"
    return None


@gpu_kernel("Transpose", check=_rank_check)
def transpose(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    x_shape, y_shape = static_shape(ctx, 0), static_shape(ctx)
    perm = ctx.attr("perm")
    perm = list(range(len(x_shape)))[::-1] if perm is None else [int(p) for p in perm]
    x_strides = contiguous_strides(x_shape)
    out = env.buffers.tensor(y_shape, ctx.node.outputs[0].dtype, what=ctx.node.name)
    launch = copy_launch(env, ctx, y_shape, [x_strides[p] for p in perm],
                         contiguous_strides(y_shape), 0, 0, out.buffer)

    def run(x):
        launch(x)
        return out

    return run


@gpu_kernel("Slice", check=lambda node: _rank_check(node, params=(1, 2, 3, 4)))
def slice_(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    x_shape, y_shape = static_shape(ctx, 0), static_shape(ctx)
    rank = len(x_shape)
    starts = np.asarray(ctx.const(1)).reshape(-1)
    ends = np.asarray(ctx.const(2)).reshape(-1)
    axes = (np.asarray(ctx.const(3)).reshape(-1) if ctx.has_input(3)
            else np.arange(len(starts)))
    steps = (np.asarray(ctx.const(4)).reshape(-1) if ctx.has_input(4)
             else np.ones(len(starts), np.int64))
    x_strides = contiguous_strides(x_shape)
    begin = [0] * rank
    step_of = [1] * rank
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a = normalize_axis(int(a), rank)
        dim = x_shape[a]
        s, e = int(max(min(int(s), 2**62), -(2**62))), int(max(min(int(e), 2**62), -(2**62)))
        first, _, step = slice(s, e, int(st)).indices(dim)
        begin[a], step_of[a] = first, step
    offset = sum(b * st for b, st in zip(begin, x_strides, strict=True))
    out = env.buffers.tensor(y_shape, ctx.node.outputs[0].dtype, what=ctx.node.name)
    launch = copy_launch(env, ctx, y_shape,
                         [st * k for st, k in zip(x_strides, step_of, strict=True)],
                         contiguous_strides(y_shape), offset, 0, out.buffer)

    def run(x, *params):
        launch(x)
        return out

    return run


@gpu_kernel("Expand", check=lambda node: _rank_check(node, params=(1,)))
def expand(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    x_shape, y_shape = static_shape(ctx, 0), static_shape(ctx)
    padded = (1,) * (len(y_shape) - len(x_shape)) + tuple(x_shape)
    strides = contiguous_strides(padded)
    src = [0 if d == 1 else s for d, s in zip(padded, strides, strict=True)]
    out = env.buffers.tensor(y_shape, ctx.node.outputs[0].dtype, what=ctx.node.name)
    launch = copy_launch(env, ctx, y_shape, src, contiguous_strides(y_shape), 0, 0, out.buffer)

    def run(x, shape=None):
        launch(x)
        return out

    return run


@gpu_kernel("Split", check=lambda node: _rank_check(node, params=(1,)))
def split(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    x_shape = static_shape(ctx, 0)
    axis = normalize_axis(int(ctx.attr("axis")), len(x_shape))
    x_strides = contiguous_strides(x_shape)
    outs, launches, offset = [], [], 0
    for k in range(len(ctx.node.outputs)):
        y_shape = static_shape(ctx, k=k)
        out = env.buffers.tensor(y_shape, ctx.node.outputs[k].dtype,
                                 what=ctx.node.outputs[k].name)
        launches.append(copy_launch(env, ctx, y_shape, x_strides, contiguous_strides(y_shape),
                                    offset * x_strides[axis], 0, out.buffer))
        outs.append(out)
        offset += y_shape[axis]
    result = tuple(outs)

    def run(x, split_sizes=None):
        for launch in launches:
            launch(x)
        return result

    return run


def _concat_check(node: Node) -> str | None:
    reason = word_tensors(node)
    if reason:
        return reason
    if any(len(v.shape) > MAX_RANK for v in node.inputs if v is not None):
        return f"rank above {MAX_RANK} unsupported"
    return None


@gpu_kernel("Concat", check=_concat_check)
def concat(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    y_shape = static_shape(ctx)
    axis = normalize_axis(int(ctx.attr("axis")), len(y_shape))
    y_strides = contiguous_strides(y_shape)
    out = env.buffers.tensor(y_shape, ctx.node.outputs[0].dtype, what=ctx.node.name)
    launches, constants, offset = [], [], 0
    for i in range(ctx.num_inputs):
        x_shape = static_shape(ctx, i)
        data = ctx.const(i)
        constants.append(None if data is None else env.buffers.word_constant(
            data, ctx.node.outputs[0].dtype))
        if size_of(x_shape):
            launches.append(copy_launch(env, ctx, x_shape, contiguous_strides(x_shape),
                                        y_strides, 0, offset * y_strides[axis], out.buffer,
                                        arg=i))
        offset += x_shape[axis]

    def run(*xs):
        args = [x if c is None else c for x, c in zip(xs, constants, strict=True)]
        for launch in launches:
            launch(*args)
        return out

    return run
