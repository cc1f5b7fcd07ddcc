"""RotaryEmbedding and SwiGLU."""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.activations import sigmoid_into
from runtime.providers.cpu.registry import cpu_kernel


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, interleaved: bool, dim: int
           ) -> np.ndarray:
    """Rotary embedding of ``x`` [batch, seq, heads, head] with cos/sin [batch, seq, dim/2]."""
    head = x.shape[3]
    dim = dim or head
    if dim > head or dim % 2 or cos.shape[-1] != dim // 2 or sin.shape[-1] != dim // 2:
        raise ShapeError(f"RotaryEmbedding: rotary dim {dim} with head size {head} needs cos/sin "
                         f"caches of width {dim // 2}, got {list(cos.shape)} and "
                         f"{list(sin.shape)}")
    rotated, kept = x[..., :dim], x[..., dim:]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    if interleaved:
        x1, x2 = rotated[..., 0::2], rotated[..., 1::2]
    else:
        x1, x2 = rotated[..., :dim // 2], rotated[..., dim // 2:]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if interleaved:
        rotated = np.stack([real, imag], axis=-1).reshape(rotated.shape)
    else:
        rotated = np.concatenate([real, imag], axis=-1)
    return np.concatenate([rotated, kept], axis=-1)


@cpu_kernel("RotaryEmbedding", since=23)
def rotary_embedding(ctx: KernelContext) -> Kernel:
    interleaved = bool(ctx.attr("interleaved"))
    num_heads = int(ctx.attr("num_heads"))
    dim = int(ctx.attr("rotary_embedding_dim"))

    def rotary_embedding_(x, cos_cache, sin_cache, position_ids=None):
        if position_ids is not None:
            limit = cos_cache.shape[0]
            if position_ids.size and (position_ids.min() < 0 or position_ids.max() >= limit):
                raise ShapeError(f"RotaryEmbedding position_ids must be in [0, {limit})")
            cos_cache, sin_cache = cos_cache[position_ids], sin_cache[position_ids]
        if x.ndim == 4:  # [batch, heads, seq, head] -> [batch, seq, heads, head] and back
            y = rotate(x.transpose(0, 2, 1, 3), cos_cache, sin_cache, interleaved, dim)
            return np.ascontiguousarray(y.transpose(0, 2, 1, 3)).astype(x.dtype, copy=False)
        batch, seq, hidden = x.shape
        if hidden % num_heads:
            raise ShapeError(f"RotaryEmbedding hidden size {hidden} is not divisible by "
                             f"num_heads {num_heads}")
        y = rotate(x.reshape(batch, seq, num_heads, hidden // num_heads), cos_cache, sin_cache,
                   interleaved, dim)
        return y.reshape(x.shape).astype(x.dtype, copy=False)

    return rotary_embedding_


@cpu_kernel("SwiGLU", since=28)
def swiglu(ctx: KernelContext) -> Kernel:
    alpha = ctx.output_dtype().type(ctx.attr("alpha"))

    def swiglu_(a, b):
        if a.shape != b.shape:
            raise ShapeError(f"SwiGLU inputs differ in shape: {list(a.shape)} and "
                             f"{list(b.shape)}")
        return a * sigmoid_into(a * alpha, None) * b

    return swiglu_
