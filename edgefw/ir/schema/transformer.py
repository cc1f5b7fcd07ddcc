"""Schemas of the transformer building blocks: Attention, RotaryEmbedding, SwiGLU, and the
stateful blocks of linear-attention models, LinearAttention and CausalConvWithState."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import Dim, format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


@op_schema("RotaryEmbedding", inputs=(3, 4),
           attrs=[Attr("interleaved", "int", 0), Attr("num_heads", "int", 0),
                  Attr("rotary_embedding_dim", "int", 0)], since_version=23,
           doc="rotate (pairs of) the first rotary_embedding_dim features of each head by the "
               "cos/sin caches at each position")
def _rotary_embedding(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    ctx.require_same_dtype(0, 1, 2)
    x = ctx.shape(0)
    if x is not None and len(x) not in (3, 4):
        raise ShapeError(f"RotaryEmbedding input must be [batch, seq, hidden] or "
                         f"[batch, heads, seq, head_size], got {format_shape(x)}")
    if x is not None and len(x) == 3 and not ctx.attr("num_heads"):
        raise ShapeError("RotaryEmbedding with a 3-D input needs num_heads")
    if ctx.has_input(3):
        ctx.require_dtype(3, {"int64"}, "RotaryEmbedding position_ids")
    return [ctx.input_type(0)]


@op_schema("SwiGLU", inputs=2, attrs=[Attr("alpha", "float", 1.0)], since_version=28,
           doc="a * sigmoid(alpha * a) * b (same shapes, no broadcasting)")
def _swiglu(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    dtype = ctx.require_same_dtype(0, 1)
    a, b = ctx.shape(0), ctx.shape(1)
    if a is not None and b is not None and (len(a) != len(b) or any(
            isinstance(p, int) and isinstance(q, int) and p != q for p, q in zip(a, b))):
        raise ShapeError(f"SwiGLU inputs must have one shape, got {format_shape(a)} and "
                         f"{format_shape(b)}")
    return [TensorType(dtype, a if a is not None else b)]


def _div(a: Dim, b: int | None) -> Dim:
    return a // b if isinstance(a, int) and b else None


def _add(a: Dim, b: Dim) -> Dim:
    return a + b if isinstance(a, int) and isinstance(b, int) else None


@op_schema(
    "Attention",
    inputs=(3, 7),
    outputs=(1, 4),
    attrs=[
        Attr("is_causal", "int", 0),
        Attr("kv_num_heads", "int", None),
        Attr("q_num_heads", "int", None),
        Attr("qk_matmul_output_mode", "int", 0),
        Attr("scale", "float", None),
        Attr("softcap", "float", 0.0),
        Attr("softmax_precision", "int", None),
        Attr("left_window_size", "int", -1),
        Attr("right_window_size", "int", -1),
    ],
    since_version=23,
    doc="softmax(Q K^T * scale + mask) V with optional KV cache, grouped heads, causal and "
        "sliding-window masks, softcap; Q/K/V [B, heads, seq, head] or [B, seq, hidden]",
)
def _attention(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    ctx.require_same_dtype(1, 2)
    q, k, v = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if ctx.attr("qk_matmul_output_mode") not in (0, 1, 2, 3):
        raise ShapeError(f"Attention qk_matmul_output_mode must be 0..3, got "
                         f"{ctx.attr('qk_matmul_output_mode')}")
    unknown = [TensorType(ctx.dtype(0), None), TensorType(ctx.dtype(1), None),
               TensorType(ctx.dtype(2), None), TensorType(ctx.dtype(0), None)]
    if q is None or k is None or v is None:
        return unknown
    if not len(q) == len(k) == len(v) or len(q) not in (3, 4):
        raise ShapeError(f"Attention Q {format_shape(q)}, K {format_shape(k)}, V "
                         f"{format_shape(v)} must all be 3-D or all 4-D")
    if len(q) == 3:
        q_heads, kv_heads = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
        if not q_heads or not kv_heads:
            raise ShapeError("Attention with 3-D inputs needs q_num_heads and kv_num_heads")
        batch, q_len, kv_len = q[0], q[1], k[1]
        k_head, v_head = _div(k[2], kv_heads), _div(v[2], kv_heads)
    else:
        batch, q_heads, q_len = q[0], q[1], q[2]
        kv_heads, kv_len, k_head, v_head = k[1], k[2], k[3], v[3]
    past = ctx.shape(4) if ctx.has_input(4) else None
    total = _add(kv_len, past[2]) if past is not None and len(past) == 4 else (
        None if ctx.has_input(4) else kv_len)
    if len(q) == 3:
        y = (batch, q_len, v_head * q_heads if isinstance(v_head, int) else None)
    else:
        y = (batch, q_heads, q_len, v_head)
    return [TensorType(ctx.dtype(0), y),
            TensorType(ctx.dtype(1), (batch, kv_heads, total, k_head)),
            TensorType(ctx.dtype(2), (batch, kv_heads, total, v_head)),
            TensorType(ctx.dtype(0), (batch, q_heads, q_len, total))]


@op_schema("CausalConvWithState", inputs=(2, 4), outputs=(1, 2),
           attrs=[Attr("activation", "string", "none")], since_version=27,
           doc="depthwise causal Conv1d over [past_state, input]; optional SiLU; the last k-1 "
               "inputs as present_state")
def _causal_conv_with_state(ctx: InferenceContext) -> list[TensorType]:
    if ctx.attr("activation") not in ("none", "silu", "swish"):
        raise ShapeError(f"CausalConvWithState activation must be none, silu or swish, got "
                         f"{ctx.attr('activation')!r}")
    ctx.require_dtype(0, FLOAT_DTYPES)
    x, w = ctx.shape(0), ctx.shape(1)
    if x is not None and len(x) != 3 or w is not None and len(w) != 3:
        raise ShapeError(f"CausalConvWithState input {format_shape(x)} and weight "
                         f"{format_shape(w)} must be [B, C, L] and [C, 1, k]")
    k = w[2] if w is not None else None
    state = None if x is None else (x[0], x[1], k - 1 if isinstance(k, int) else None)
    return [ctx.input_type(0), TensorType(ctx.dtype(0), state)]


LINEAR_ATTENTION_RULES = ("linear", "gated", "delta", "gated_delta")


@op_schema("LinearAttention", inputs=(3, 6), outputs=(1, 2),
           attrs=[Attr("chunk_size", "int", 64), Attr("kv_num_heads", "int"),
                  Attr("q_num_heads", "int"), Attr("scale", "float", None),
                  Attr("update_rule", "string", "gated_delta")], since_version=27,
           doc="recurrent linear attention: a [d_k, d_v] state per head, decayed (gated) and "
               "delta-corrected as update_rule says; Q/K/V [B, T, heads * d]")
def _linear_attention(ctx: InferenceContext) -> list[TensorType]:
    rule = ctx.attr("update_rule")
    if rule not in LINEAR_ATTENTION_RULES:
        raise ShapeError(f"LinearAttention update_rule must be one of "
                         f"{', '.join(LINEAR_ATTENTION_RULES)}, got {rule!r}")
    q_heads, kv_heads = int(ctx.attr("q_num_heads")), int(ctx.attr("kv_num_heads"))
    if q_heads <= 0 or kv_heads <= 0 or q_heads % kv_heads:
        raise ShapeError(f"LinearAttention q_num_heads {q_heads} must be a positive multiple of "
                         f"kv_num_heads {kv_heads}")
    ctx.require_dtype(0, FLOAT_DTYPES)
    q, v = ctx.shape(0), ctx.shape(2)
    if q is None or v is None:
        return [TensorType(ctx.dtype(0), None), TensorType(ctx.dtype(0), None)]
    d_k, d_v = _div(q[2], q_heads), _div(v[2], kv_heads)
    out = (q[0], q[1], d_v * q_heads if isinstance(d_v, int) else None)
    state_dtype = ctx.dtype(3) if ctx.has_input(3) else ctx.dtype(0)
    return [TensorType(ctx.dtype(0), out), TensorType(state_dtype, (q[0], kv_heads, d_k, d_v))]
