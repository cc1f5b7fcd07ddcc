"""Gemm, MatMul and edgefw's Dense (MatMul + bias) on the tiled GEMM shader (``gemm_core``).

Constant weights are uploaded once per session in the (K, N) layout the shader reads;
weights that are ``DequantizeLinear`` of int8/uint8 constants (QDQ graphs) are uploaded
packed four per word and dequantized in the kernel, their per-channel scales folded into
the epilogue. MatMul with a 2-D B folds the batch into M (one big GEMM); a batched MatMul
(attention) runs one GEMM per batch entry through the z dimension of the grid, with
numpy broadcasting of the batch dims.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefw.errors import DeviceError, UnsupportedOpError
from edgefw.ir import Node
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.gpu.kernels.common import (
    host_float,
    known_at_build,
    quantized_source,
    size_of,
    static_shape,
)
from runtime.providers.gpu.kernels.gemm_core import (
    FEW_ROWS,
    LAYOUT,
    TILE_M,
    gemm_wgsl,
    tile_groups,
)
from runtime.providers.gpu.launch import Bind, GPUKernelEnv
from runtime.providers.gpu.pipelines import activation_key
from runtime.providers.gpu.registry import float_tensors, gpu_kernel
from runtime.providers.gpu.tensor import pack_int8

MAX_BATCH_RANK = 8


@dataclass
class WeightOperand:
    """B as the shader reads it: kind ("float32"/"int8"/"uint8"), the buffer, and the
    per-column scale and zero point (float32 vectors of the output channels)."""

    kind: str
    buffer: Any
    colscale: np.ndarray
    zero_point: np.ndarray | None


def weight_operand(env: GPUKernelEnv, ctx: KernelContext, i: int,
                   arrange: Callable[[np.ndarray], np.ndarray], channel_axis: int,
                   channels: int, layout: str) -> WeightOperand:
    """Upload constant input ``i`` (once per session) rearranged by ``arrange``; int8 and
    uint8 DequantizeLinear sources stay packed when their scales run along
    ``channel_axis`` (or are per tensor)."""
    source = quantized_source(ctx.node.inputs[i])
    if source is not None and source.q.dtype in (np.int8, np.uint8) and (
            source.axis is None or source.scale.size == 1 or source.axis == channel_axis):
        kind = str(source.q.dtype)
        buffer = env.buffers.constant(source.q, f"packed:{layout}",
                                      lambda q: pack_int8(arrange(q)))
        scale, zero = source.per_channel(channel_axis, channels, ctx.node.describe())
        return WeightOperand(kind, buffer, scale, zero)
    anchor = ctx.const(i) if ctx.const(i) is not None else source.q
    host = host_float(ctx, i)
    buffer = env.buffers.constant(anchor, f"float:{layout}",
                                  lambda _: np.ascontiguousarray(arrange(host), np.float32))
    return WeightOperand("float32", buffer, np.ones(channels, np.float32), None)


def column_vectors(env: GPUKernelEnv, ctx: KernelContext, scale: np.ndarray,
                   bias: np.ndarray) -> tuple[Any, Any]:
    """Upload the epilogue's per-column scale and bias once per session (keyed by node)."""
    return (env.buffers.constant(ctx.node, "colscale", lambda _: scale.astype(np.float32)),
            env.buffers.constant(ctx.node, "colbias", lambda _: bias.astype(np.float32)))


def _gemm_check(node: Node) -> str | None:
    reason = float_tensors(node, data=(0, 1, 2))
    if reason:
        return reason
    a, b = node.inputs[0], node.inputs[1]
    if a.shape is not None and len(a.shape) != 2 or b.shape is not None and len(b.shape) != 2:
        return "Gemm operands must be 2-D"
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        c = node.inputs[2]
        if not known_at_build(c):
            return "Gemm C computed at run time (the GPU kernel takes a constant bias)"
        if c.shape is None or len(c.shape) > 2 or (len(c.shape) == 2 and c.shape[0] != 1):
            return f"Gemm C of shape {c.shape} (the GPU kernel takes a per-column bias)"
    return None


def _matmul_check(node: Node) -> str | None:
    reason = float_tensors(node)
    if reason:
        return reason
    return None


@gpu_kernel("Gemm", check=_gemm_check)
def gemm(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    trans_a, trans_b = bool(ctx.attr("transA")), bool(ctx.attr("transB"))
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    a_shape, b_shape = static_shape(ctx, 0), static_shape(ctx, 1)
    m, k = (a_shape[1], a_shape[0]) if trans_a else a_shape
    n = b_shape[0] if trans_b else b_shape[1]
    out = env.buffers.tensor((m, n), what=ctx.node.name)

    if known_at_build(ctx.node.inputs[1]):
        weight = weight_operand(env, ctx, 1, (lambda w: w.T) if trans_b else (lambda w: w),
                                0 if trans_b else 1, n, f"gemm:{int(trans_b)}")
        b_bind, sbk, sbn = Bind.fixed(weight.buffer), n, 1
    else:
        weight = WeightOperand("float32", None, np.ones(n, np.float32), None)
        b_bind = Bind.input(1)
        sbk, sbn = (1, k) if trans_b else (n, 1)
    bias = np.zeros(n, np.float32)
    c = host_float(ctx, 2)
    if c is not None:
        flat = c.reshape(-1) if c.size > 1 else c.reshape(())
        bias = np.broadcast_to(flat, (n,)).astype(np.float32) * np.float32(beta)
    a_bind = _a_binding(env, ctx, rows_ok=not trans_a, row_bytes=4 * k)
    return _gemm_launch(env, ctx, out, weight, bias, alpha, a_bind, b_bind, m, n, k,
                        sam=1 if trans_a else k, sak=m if trans_a else 1, sbk=sbk, sbn=sbn,
                        chunk_rows=not trans_a)


def _a_binding(env: GPUKernelEnv, ctx: KernelContext, rows_ok: bool, row_bytes: int) -> Bind:
    data = ctx.const(0)
    if data is not None:
        return Bind.fixed(env.buffers.float_constant(np.asarray(data, np.float32)).buffer)
    return Bind.input(0, row_bytes=row_bytes if rows_ok else 0)


def _gemm_launch(env: GPUKernelEnv, ctx: KernelContext, out, weight: WeightOperand,
                 bias: np.ndarray, alpha: float, a_bind: Bind, b_bind: Bind, m: int, n: int,
                 k: int, sam: int, sak: int, sbk: int, sbn: int, chunk_rows: bool,
                 batch: tuple[list[int], list[int], list[int]] | None = None) -> Kernel:
    """One (possibly batched, possibly row-chunked) GEMM launch writing ``out``."""
    act = activation_key(ctx.fused_activation)
    colscale, colbias = column_vectors(env, ctx, weight.colscale * np.float32(alpha), bias)
    zdims, za, zb = batch or ([], [], [])
    z = size_of(zdims) if zdims else 1
    if z > env.gpu.max_groups:
        raise DeviceError(f"{z} matrices in one batched MatMul exceed "
                          f"the adapter's grid ({env.gpu.max_groups})")
    bindings = [a_bind, b_bind, Bind.fixed(colscale), Bind.fixed(colbias),
                Bind.fixed(out.buffer, row_bytes=4 * n if chunk_rows and z == 1 else 0)]
    if weight.zero_point is not None:
        zero = env.buffers.constant(ctx.node, "wzero",
                                    lambda _: weight.zero_point.astype(np.float32))
        bindings.append(Bind.fixed(zero))
    if not (chunk_rows and z == 1):
        bindings[0] = Bind(arg=a_bind.arg, buffer=a_bind.buffer)  # no row split

    def params(start: int, count: int) -> dict:
        return dict(m=count, n=n, k=k, sam=sam, sak=sak, sbk=sbk, sbn=sbn, b_z=0, col_z=0,
                    nz=len(zdims), zdims=zdims, za=za, zb=zb)

    few = m <= FEW_ROWS

    def groups(count: int) -> tuple[int, int, int]:
        gx, gy = tile_groups(count, n, few, env.gpu.max_groups)
        return (gx, gy, z)

    launch = env.launch(("gemm", "float32", "few_rows" if few else "rows", weight.kind, act),
                        lambda: gemm_wgsl("rows", weight.kind, "rows", act, few), LAYOUT,
                        bindings, params, groups, rows=m, what=ctx.node.op_type,
                        max_rows=env.gpu.max_groups * TILE_M)

    def run(a, b=None, c=None):
        launch(a, b, c)
        return out

    return run


@gpu_kernel("MatMul", check=_matmul_check)
def matmul(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    a_shape, b_shape = static_shape(ctx, 0), static_shape(ctx, 1)
    out_shape = static_shape(ctx)
    out = env.buffers.tensor(out_shape, what=ctx.node.name)
    a2 = (1,) + a_shape if len(a_shape) == 1 else a_shape
    b2 = b_shape + (1,) if len(b_shape) == 1 else b_shape
    m, k, n = a2[-2], a2[-1], b2[-1]
    b_known = known_at_build(ctx.node.inputs[1])

    if len(b2) == 2:  # one weight matrix: the batch folds into M
        if b_known:
            weight = weight_operand(env, ctx, 1, lambda w: w.reshape(k, n), 1, n, "matmul")
            b_bind = Bind.fixed(weight.buffer)
        else:
            weight = WeightOperand("float32", None, np.ones(n, np.float32), None)
            b_bind = Bind.input(1)
        rows = size_of(a2[:-1])
        a_bind = _a_binding(env, ctx, rows_ok=True, row_bytes=4 * k)
        return _gemm_launch(env, ctx, out, weight, np.zeros(n, np.float32), 1.0, a_bind, b_bind,
                            rows, n, k, sam=k, sak=1, sbk=n, sbn=1, chunk_rows=True)

    rank = max(len(a2), len(b2)) - 2
    if rank > MAX_BATCH_RANK:
        raise UnsupportedOpError(f"MatMul with {rank} batch dims (the GPU kernel handles "
                                 f"{MAX_BATCH_RANK})")
    a_batch = (1,) * (rank - len(a2) + 2) + tuple(a2[:-2])
    b_batch = (1,) * (rank - len(b2) + 2) + tuple(b2[:-2])
    zdims = [max(x, y) for x, y in zip(a_batch, b_batch, strict=True)]
    za, zb = _batch_strides(a_batch, m * k), _batch_strides(b_batch, k * n)
    if b_known:
        host = host_float(ctx, 1)
        buffer = env.buffers.constant(ctx.node, "matmul:b",
                                      lambda _: np.ascontiguousarray(host, np.float32))
        b_bind = Bind.fixed(buffer)
    else:
        b_bind = Bind.input(1)
    weight = WeightOperand("float32", None, np.ones(n, np.float32), None)
    a_bind = _a_binding(env, ctx, rows_ok=False, row_bytes=0)
    return _gemm_launch(env, ctx, out, weight, np.zeros(n, np.float32), 1.0, a_bind, b_bind,
                        m, n, k, sam=k, sak=1, sbk=n, sbn=1, chunk_rows=False,
                        batch=(zdims, za, zb))


def _dense_check(node: Node) -> str | None:
    reason = float_tensors(node, data=(0, 1, 2))
    if reason:
        return reason
    if not known_at_build(node.inputs[1]) or not known_at_build(node.inputs[2]):
        return "Dense weight or bias computed at run time"
    return None


@gpu_kernel("Dense", check=_dense_check, domain="edgefw")
def dense(ctx: KernelContext, env: GPUKernelEnv) -> Kernel:
    """``x[..., K] @ w[K, N] + b[N]``: MatMul's folded-batch GEMM with the bias in the
    epilogue."""
    a_shape, (k, n) = static_shape(ctx, 0), static_shape(ctx, 1)
    out = env.buffers.tensor(static_shape(ctx), what=ctx.node.name)
    weight = weight_operand(env, ctx, 1, lambda w: w, 1, n, "matmul")
    bias = np.asarray(host_float(ctx, 2), np.float32).reshape(n)
    a_bind = _a_binding(env, ctx, rows_ok=True, row_bytes=4 * k)
    return _gemm_launch(env, ctx, out, weight, bias, 1.0, a_bind, Bind.fixed(weight.buffer),
                        size_of(a_shape[:-1]), n, k, sam=k, sak=1, sbk=n, sbn=1,
                        chunk_rows=True)


def _batch_strides(batch: tuple[int, ...], matrix: int) -> list[int]:
    strides, step = [0] * len(batch), matrix
    for d in range(len(batch) - 1, -1, -1):
        strides[d] = step if batch[d] != 1 else 0
        step *= batch[d]
    return strides


__all__ = ["WeightOperand", "column_vectors", "weight_operand"]
