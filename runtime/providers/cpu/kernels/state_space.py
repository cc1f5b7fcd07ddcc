"""The stateful blocks of linear-attention language models: CausalConvWithState (a depthwise
causal Conv1d that carries its last k-1 inputs) and LinearAttention (a per-head [d_k, d_v]
state updated token by token: linear, gated, delta or gated-delta rule)."""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.activations import sigmoid_into
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("CausalConvWithState", since=27)
def causal_conv_with_state(ctx: KernelContext) -> Kernel:
    silu = ctx.attr("activation") in ("silu", "swish")
    n_outputs = len(ctx.node.outputs)

    def causal_conv(x, weight, bias=None, past_state=None):
        batch, channels, _ = x.shape
        k = weight.shape[2]
        if weight.shape[:2] != (channels, 1):
            raise ShapeError(f"CausalConvWithState weight {list(weight.shape)} must be "
                             f"[{channels}, 1, k]")
        pad = np.zeros((batch, channels, k - 1), x.dtype) if past_state is None else past_state
        if pad.shape != (batch, channels, k - 1):
            raise ShapeError(f"CausalConvWithState past_state {list(pad.shape)} must be "
                             f"[{batch}, {channels}, {k - 1}]")
        padded = np.concatenate([pad, x], axis=2)
        windows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=2)  # [B, C, L, k]
        y = np.einsum("bclk,ck->bcl", windows, weight[:, 0, :])
        if bias is not None:
            y = y + bias[None, :, None]
        y = y.astype(x.dtype, copy=False)
        if silu:
            wide = y.astype(np.float32)
            y = (wide * sigmoid_into(wide, None)).astype(x.dtype)
        state = np.ascontiguousarray(padded[:, :, padded.shape[2] - (k - 1):])
        return y if n_outputs == 1 else (y, state)

    return causal_conv


def _heads(x: np.ndarray, heads: int, what: str) -> np.ndarray:
    """[B, T, heads * D] -> [B, heads, T, D] in float32 (the recurrence's precision)."""
    b, t, hidden = x.shape
    if hidden % heads:
        raise ShapeError(f"LinearAttention {what} width {hidden} is not divisible by {heads} "
                         "heads")
    return x.reshape(b, t, heads, hidden // heads).transpose(0, 2, 1, 3).astype(np.float32)


@cpu_kernel("LinearAttention", since=27)
def linear_attention(ctx: KernelContext) -> Kernel:
    q_heads, kv_heads = int(ctx.attr("q_num_heads")), int(ctx.attr("kv_num_heads"))
    rule = ctx.attr("update_rule")
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    scale_attr = ctx.attr("scale")
    n_outputs = len(ctx.node.outputs)

    def linear_attention_(query, key, value, past_state=None, decay=None, beta=None):
        if gated != (decay is not None) or delta != (beta is not None):
            raise ShapeError(f"LinearAttention update_rule {rule!r} takes decay: {gated}, "
                             f"beta: {delta}")
        b, t, _ = query.shape
        q, k, v = _heads(query, q_heads, "query"), _heads(key, kv_heads, "key"), \
            _heads(value, kv_heads, "value")
        d_k, d_v = q.shape[3], v.shape[3]
        if decay is not None:
            per_key = decay.shape[-1] == kv_heads * d_k
            if decay.shape[-1] not in (kv_heads, kv_heads * d_k):
                raise ShapeError(f"LinearAttention decay width {decay.shape[-1]} must be "
                                 f"{kv_heads} or {kv_heads * d_k}")
            g = _heads(decay, kv_heads, "decay") if per_key else \
                decay.reshape(b, t, kv_heads, 1).transpose(0, 2, 1, 3).astype(np.float32)
        if beta is not None:
            heads = beta.shape[-1]
            if heads not in (kv_heads, 1):
                raise ShapeError(f"LinearAttention beta width {heads} must be {kv_heads} or 1")
            beta4 = beta.reshape(b, t, heads, 1).transpose(0, 2, 1, 3).astype(np.float32)
        if past_state is not None:
            if past_state.shape != (b, kv_heads, d_k, d_v):
                raise ShapeError(f"LinearAttention past_state {list(past_state.shape)} must be "
                                 f"{[b, kv_heads, d_k, d_v]}")
            state = past_state.astype(np.float32)
        else:
            state = np.zeros((b, kv_heads, d_k, d_v), np.float32)
        scale = np.float32(scale_attr if scale_attr else 1.0 / np.sqrt(d_k))
        group = q_heads // kv_heads
        out = np.zeros((b, q_heads, t, d_v), np.float32)
        for i in range(t):
            k_t, v_t = k[:, :, i, :], v[:, :, i, :]
            if gated:
                state = state * np.exp(g[:, :, i, :])[..., None]
            if delta:  # write only what the state does not already predict for k_t
                v_t = beta4[:, :, i, :] * (v_t - np.einsum("bhdm,bhd->bhm", state, k_t))
            state = state + k_t[..., :, None] * v_t[..., None, :]
            read = state if group == 1 else np.repeat(state, group, axis=1)
            out[:, :, i, :] = scale * np.einsum("bhd,bhdm->bhm", q[:, :, i, :], read)
        y = out.transpose(0, 2, 1, 3).reshape(b, t, q_heads * d_v).astype(query.dtype)
        present = state.astype(past_state.dtype if past_state is not None else query.dtype)
        return y if n_outputs == 1 else (y, present)

    return linear_attention_
