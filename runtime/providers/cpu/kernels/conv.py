"""Conv (1-D and 2-D, grouped and depthwise) on the shared numpy primitive ``conv2d``.

The primitive is the one the autograd forward uses (``edgefw.ir.primitives``); this kernel
resolves the ONNX attributes once (auto_pad, defaults), maps 1-D onto 2-D, and applies a
fused activation in place on the primitive's output.

With a static input shape and constant weights (every traced or exported model) the
kernel builds the convolution's plan (:class:`~edgefw.ir.primitives.conv_plan.ConvPlan`:
padded buffer, window views, chunks) and the GEMM weights (bias folded in) once, so a run
is a copy in, one ``copyto`` and one GEMM per chunk, and the activation: at batch 1 the
per-call argument handling would otherwise cost more than the arithmetic. Results go into
the planner's preallocated buffer, stored batch-minor (what the next conv or pooling reads
without transposing; at batch 1 it is plain NCHW).
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import UnsupportedOpError
from edgefw.ir.primitives import conv2d
from edgefw.ir.primitives.conv import ConvPlan, conv_geometry
from edgefw.ir.primitives.windows import from_batch_minor
from edgefw.ir.schema.dims import resolve_pads
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.fused_activation import clamp_bounds, inplace_activation
from runtime.providers.cpu.registry import cpu_kernel


def window_params(ctx: KernelContext, kernel: list[int]) -> tuple[list[int], list[int]]:
    """strides and dilations with their defaults filled in."""
    n = len(kernel)
    strides = [int(s) for s in (ctx.attr("strides") or [1] * n)]
    dilations = [int(d) for d in (ctx.attr("dilations") or [1] * n)]
    return strides, dilations


def pads_for(ctx: KernelContext, spatial, kernel, strides, dilations) -> list[int] | None:
    """ONNX pads (begin..., end...) for these spatial dims; None if they must wait for the
    actual input (auto_pad SAME with a symbolic dim)."""
    resolved = resolve_pads(ctx.attr("auto_pad"), ctx.attr("pads"), spatial, kernel, strides,
                            dilations)
    if resolved is None:
        return None
    return [p[0] for p in resolved] + [p[1] for p in resolved]


def as_2d(pads: list[int], strides: list[int], dilations: list[int], kernel: list[int]):
    """1-D window parameters as 2-D ones over a height-1 image; 2-D ones unchanged.

    Returns (pads (top, left, bottom, right), strides, dilations, kernel) for 2-D."""
    if len(kernel) == 2:
        return tuple(pads), tuple(strides), tuple(dilations), tuple(kernel)
    return (0, pads[0], 0, pads[1]), (1, strides[0]), (1, dilations[0]), (1, kernel[0])


def spatial_rank(ctx: KernelContext, what: str, rank: int | None) -> int:
    if rank is None:
        raise UnsupportedOpError(f"{what} needs the input rank to be known")
    n = rank - 2
    if n not in (1, 2):
        raise UnsupportedOpError(f"{what} with {n} spatial dims is not supported by the CPU "
                                 "provider (1-D and 2-D are)")
    return n


@cpu_kernel("Conv", since=11)
def conv(ctx: KernelContext) -> Kernel:
    w_shape = ctx.input_shape(1)
    rank = len(w_shape) if w_shape is not None else (
        None if ctx.input_shape(0) is None else len(ctx.input_shape(0)))
    n = spatial_rank(ctx, "Conv", rank)
    group = int(ctx.attr("group"))
    activation = inplace_activation(ctx.fused_activation, ctx.output_dtype())
    const_w, const_b = ctx.const(1), (ctx.const(2) if ctx.has_input(2) else None)
    kernel_attr = ctx.attr("kernel_shape")
    x_shape = ctx.input_shape(0)
    static_pads = None
    if kernel_attr is not None or const_w is not None:
        kernel = [int(k) for k in (kernel_attr or const_w.shape[2:])]
        strides, dilations = window_params(ctx, kernel)
        spatial = x_shape[2:] if x_shape is not None else (None,) * n
        static_pads = pads_for(ctx, spatial, kernel, strides, dilations)
    if n == 1 and const_w is not None:
        const_w = const_w[:, :, None, :]
    planned = _planned_conv(ctx, n, group, const_w, const_b, static_pads)
    if planned is not None:
        return planned

    def conv_(x, w, b=None):
        weight = const_w if const_w is not None else (w if n == 2 else w[:, :, None, :])
        bias = const_b if const_b is not None else b
        k = [int(d) for d in (kernel_attr or w.shape[2:])]
        st, dl = window_params(ctx, k)
        pads = static_pads if static_pads is not None else pads_for(ctx, x.shape[2:], k, st, dl)
        pads2, st2, dl2, _ = as_2d(pads, st, dl, k)
        x4 = x if n == 2 else x[:, :, None, :]
        y = conv2d(x4, weight, bias, st2, pads2, dl2, group)
        if n == 1:
            y = y[:, :, 0, :]
        if activation is not None:
            activation(y)
        return y

    return conv_


def _planned_conv(ctx: KernelContext, n: int, group: int, const_w, const_b, static_pads
                  ) -> Kernel | None:
    """The kernel for a static input shape and constant weights, or None."""
    x_shape = ctx.static_input_shape(0)
    if x_shape is None or const_w is None or static_pads is None:
        return None
    if ctx.has_input(2) and const_b is None:
        return None
    dtype = ctx.output_dtype()
    if dtype.kind != "f" or np.dtype(ctx.input_types[0].dtype) != dtype:
        return None
    kernel = list(const_w.shape[2:])
    strides, dilations = window_params(ctx, kernel[-n:])
    pads2, st2, dl2, _ = as_2d(static_pads, strides, dilations, kernel[-n:])
    x4_shape = tuple(x_shape) if n == 2 else (x_shape[0], x_shape[1], 1, x_shape[2])
    # The kernel's own plan (not the per-thread cache): a session may run in any thread.
    plan = ConvPlan(conv_geometry("Conv", x4_shape, dtype, const_w.shape, st2, pads2, dl2,
                                  group), dtype, ctx.concurrent)
    weight = const_w.astype(dtype, copy=False)
    bias = None if const_b is None else np.asarray(const_b).astype(dtype, copy=False)
    if bias is not None and bias.shape != (plan.geometry.out_channels,):
        return None  # let the general path raise its error at run time
    weights = plan.prepare_weights(weight, bias)
    out = ctx.output_buffer()
    if out is not None:
        # The planner's buffer holds the result in the plan's batch-minor order (the same
        # as NCHW at batch 1): a new allocation per run costs page faults at batch 256.
        g = plan.geometry
        out = from_batch_minor(out.reshape(g.out_channels, *g.out_hw, g.batch))

    bounds = clamp_bounds(ctx.fused_activation)
    activation = None if bounds is not None else inplace_activation(ctx.fused_activation, dtype)
    forward = plan.bind(weights, out, bounds)
    if n == 2 and activation is None:
        return lambda x, w=None, b=None: forward(x)

    def conv_planned(x, w=None, b=None):
        y = forward(x if n == 2 else x[:, :, None, :])
        if activation is not None:
            activation(y)
        return y if n == 2 else y[:, :, 0, :]

    return conv_planned


__all__ = ["as_2d", "pads_for", "spatial_rank", "window_params"]
