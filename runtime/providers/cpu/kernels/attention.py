"""Attention (opsets 23-25): scaled dot-product attention with an optional KV cache
(past_key/past_value or a static cache with nonpad_kv_seqlen), grouped-query heads, causal
and sliding-window masks, a boolean or additive attn_mask, softcap, and the optional
qk_matmul_output.

Masks become one additive bias (0 or -inf). A query row whose bias is -inf everywhere has no
key to attend and yields 0 (not the NaN of a naive softmax), as ONNX specifies.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import from_onnx
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def _heads(x: np.ndarray, heads: int) -> np.ndarray:
    """[B, S, heads * D] -> [B, heads, S, D]."""
    b, s, hidden = x.shape
    if hidden % heads:
        raise ShapeError(f"Attention hidden size {hidden} is not divisible by {heads} heads")
    return x.reshape(b, s, heads, hidden // heads).transpose(0, 2, 1, 3)


def _band(q_len: int, kv_len: int, offset, lo: int | None, hi: int | None) -> np.ndarray:
    """Allowed (query, key) pairs: lo <= (offset + i) - j <= hi (None: unbounded); a 1-D
    ``offset`` gives one band per batch, [B, 1, q, kv]."""
    i = np.arange(q_len)[:, None]
    j = np.arange(kv_len)[None, :]
    per_batch = np.ndim(offset) > 0
    diff = (i + np.reshape(offset, (-1, 1, 1))) - j if per_batch else (i + int(offset)) - j
    allowed = np.ones(diff.shape, bool)
    if lo is not None:
        allowed &= diff >= lo
    if hi is not None:
        allowed &= diff <= hi
    return allowed[:, None] if per_batch else allowed


def attention_bias(dtype: np.dtype, q_len: int, kv_len: int, mask: np.ndarray | None,
                   causal: bool, offset, left: int, right: int,
                   nonpad: np.ndarray | None) -> np.ndarray:
    """The additive bias (0 / -inf / mask values) broadcastable to [B, H, q, kv]."""
    minus_inf = dtype.type(-np.inf)
    zero = dtype.type(0)
    bias = np.zeros((q_len, kv_len), dtype)
    if mask is not None:
        if mask.shape[-1] < kv_len:  # a short mask is padded: missing keys are masked out
            pad = [(0, 0)] * (mask.ndim - 1) + [(0, kv_len - mask.shape[-1])]
            mask = np.pad(mask, pad, constant_values=False if mask.dtype == bool else -np.inf)
        bias = bias + (np.where(mask, zero, minus_inf) if mask.dtype == bool
                       else mask.astype(dtype))
    if causal:
        bias = bias + np.where(_band(q_len, kv_len, offset, 0, None), zero, minus_inf)
    if left >= 0 or right >= 0:
        band = _band(q_len, kv_len, offset, -right if right >= 0 else None,
                     left if left >= 0 else None)
        bias = bias + np.where(band, zero, minus_inf)
    if nonpad is not None:
        keep = np.arange(kv_len)[None, :] < nonpad.reshape(-1, 1)
        bias = bias + np.where(keep, zero, minus_inf)[:, None, None, :]
    return bias


@cpu_kernel("Attention", since=23)
def attention(ctx: KernelContext) -> Kernel:
    causal = bool(ctx.attr("is_causal"))
    q_heads_attr, kv_heads_attr = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    mode = int(ctx.attr("qk_matmul_output_mode"))
    scale_attr, softcap = ctx.attr("scale"), float(ctx.attr("softcap"))
    precision = ctx.attr("softmax_precision")
    left, right = int(ctx.attr("left_window_size")), int(ctx.attr("right_window_size"))
    n_outputs = len(ctx.node.outputs)

    def attention_(q, k, v, attn_mask=None, past_key=None, past_value=None,
                   nonpad_kv_seqlen=None):
        three_d = q.ndim == 3
        if three_d:
            q, k, v = _heads(q, q_heads_attr), _heads(k, kv_heads_attr), _heads(v, kv_heads_attr)
        if (past_key is None) != (past_value is None) or (
                past_key is not None and nonpad_kv_seqlen is not None):
            raise ShapeError("Attention takes past_key and past_value together, and not with "
                             "nonpad_kv_seqlen")
        dtype = q.dtype
        scale = scale_attr if scale_attr is not None else 1 / np.sqrt(q.shape[3])
        # sqrt(scale) on both Q and K, rounded to the input type, as ONNX's function body.
        root = dtype.type(np.sqrt(scale))
        if past_key is not None:
            k = np.concatenate([past_key, k], axis=2)
            v = np.concatenate([past_value, v], axis=2)
        present_key, present_value = k, v
        q_len, kv_len = q.shape[2], k.shape[2]
        if nonpad_kv_seqlen is not None:
            offset = nonpad_kv_seqlen.reshape(-1).astype(np.int64) - q_len
        else:
            offset = 0 if past_key is None else past_key.shape[2]
        bias = attention_bias(dtype, q_len, kv_len, attn_mask, causal, offset, left, right,
                              nonpad_kv_seqlen)
        groups = q.shape[1] // k.shape[1]
        if groups > 1 and q.shape[1] % k.shape[1] == 0 and k.shape[1] == v.shape[1]:
            k, v = np.repeat(k, groups, axis=1), np.repeat(v, groups, axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            scores = np.matmul(q * root, np.swapaxes(k * root, 2, 3))
            if softcap > 0:
                scores = np.tanh(scores / dtype.type(softcap)) * dtype.type(softcap)
            qk_output = scores
            biased = scores + bias
            if mode == 2:
                qk_output = biased
            if precision is not None:
                biased = biased.astype(from_onnx(precision))
            dead = np.isneginf(np.max(bias, axis=-1, keepdims=True))  # rows with no key
            peak = np.max(biased, axis=-1, keepdims=True)
            peak = np.where(np.isneginf(peak), 0, peak)
            e = np.exp(biased - peak)
            total = np.sum(e, axis=-1, keepdims=True)
            probs = np.where(dead, 0, e / np.where(total == 0, 1, total))
        if mode == 3:
            qk_output = probs
        y = np.matmul(probs.astype(dtype), v)
        if three_d:
            y = y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)
        outputs = (y, present_key, present_value,
                   np.broadcast_to(qk_output, probs.shape).astype(dtype))
        # Copies: present_key/value may otherwise be the caller's K/V arrays themselves.
        return outputs[0] if n_outputs == 1 else tuple(np.array(o) for o in outputs[:n_outputs])

    return attention_
