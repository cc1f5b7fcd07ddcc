"""FuseQDQPass: QDQ groups -> edgefw integer ops with TFLite semantics (domain "edgefw").

Matches, with every activation quantized per tensor (int8, uint8, or int16 = 16x8):

=====================================================  =====================================
pattern                                                becomes
=====================================================  =====================================
``DQ(x), DQ(w)[, DQ(b) | b] -> Conv[+act] -> Q``       ``QConv`` (any group: depthwise too)
``DQ(x), DQ(w)[, DQ(b) | b] -> Gemm[+act] -> Q``       ``QGemm`` (transA=0, alpha=beta=1)
``DQ(x), DQ(w) -> MatMul[+act] -> Q``                  ``QGemm`` (constant 2-D weight)
``DQ(a), DQ(b) -> MatMul -> Q`` (8-bit activations)    ``QBatchMatMul`` (BATCH_MATMUL)
``DQ(a), DQ(b) -> Add[+act] -> Q``                     ``QAdd``
``DQ(x) -> AveragePool -> Q`` (same parameters)        ``QAveragePool``
``DQ(x) -> GlobalAveragePool -> Q``                    ``QGlobalAveragePool``
=====================================================  =====================================

``w`` is a constant int8 weight with zero point 0, per tensor or per output channel (axis
0 for Conv and Gemm with transB=1, the N axis for Gemm with transB=0 and MatMul); ``+act``
is Relu or a constant Clip, as ``meta["fused_activation"]`` or as a node read only by the
Q. The fused node reads the integer tensor behind ``DQ(x)`` and writes the integer tensor
of ``Q`` (taking its name), with precomputed per-channel ``multiplier``/``shift`` (TFLite's
``QuantizeMultiplier`` of ``x_scale * w_scale / y_scale``), an int32 bias (int64 for 16x8)
and the activation as a clamp range. DQ nodes nothing reads any more are removed; the Q at
a float graph input and the DQ before a float graph output stay, so I/O stays float.

Not matched (the group stays float, simulated QDQ): per-axis activation parameters,
weights with non-zero zero points or per-channel along another axis, an op output read by
anything but its Q, activations other than Relu/Clip, AveragePool whose input and output
parameters differ or that counts padding, biases that do not fit int32.

Why: the integer kernels are what a device runs (TFLite's), and on this CPU provider they
also run at least as fast as the float path on the int8-valued data.

This pass rewrites the session's copy of a graph; exporters write the QDQ graph.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 4))
    >>> s, z = np.float32(0.1), np.int8(0)
    >>> xq = g.add_node("QuantizeLinear", [x, s, z]).output
    >>> xd = g.add_node("DequantizeLinear", [xq, s, z]).output
    >>> w = g.add_node("DequantizeLinear", [np.ones((3, 4), np.int8), np.float32(0.5), z]).output
    >>> y = g.add_node("Gemm", [xd, w], {"transB": 1}, name="fc").output
    >>> yq = g.add_node("QuantizeLinear", [y, np.float32(0.2), z]).output
    >>> g.set_outputs([g.add_node("DequantizeLinear", [yq, np.float32(0.2), z]).output])
    >>> FuseQDQPass().run(g).rewrites, [n.op_type for n in g.nodes]
    (1, ['QuantizeLinear', 'QGemm', 'DequantizeLinear'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgefw.errors import EdgeFWError
from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult
from edgefw.ir.passes.qdq_patterns import (
    QuantizedWeight,
    TensorQuant,
    clamp_range,
    dequantized_activation,
    dequantized_constant,
    dequantized_weight,
    output_chain,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp,
    quantize_reader,
    quantized_constant,
    remove_unused,
    take_over_output,
)
from edgefw.ir.schema import infer_types

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value

DOMAIN = "edgefw"
_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
_POOL_ATTRS = ("auto_pad", "ceil_mode", "kernel_shape", "pads", "strides")
_INT32 = np.iinfo(np.int32)
# Relative mismatch of a DequantizeLinear'd bias scale and x_scale * w_scale up to which its
# int32 values are used as they are (the quantizer multiplies the same float32 scales).
_BIAS_SCALE_RTOL = 1e-5


class FuseQDQPass(Pass):
    """Replace QDQ groups around Conv/Gemm/MatMul/Add/average pooling by integer ops."""

    name = "fuse_qdq"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for node in list(graph.nodes):
            fuse = _FUSIONS.get(node.op_type) if node.domain == "" else None
            if fuse is None or node not in graph.nodes:
                continue
            try:
                done = fuse(graph, node)
            except EdgeFWError:
                done = False  # parameters TFLite cannot express: the group stays float
            if done:
                notes.append(f"{node.describe()} now runs on integers")
        return PassResult.from_notes(notes)


# ------------------------------------------------------------------------ weighted ops
def _weight_rows(node: Node, weight: QuantizedWeight) -> tuple[np.ndarray, bool] | None:
    """The weight as the fused op stores it (Conv: OIHW; Gemm/MatMul: [N, K]) and whether
    that is a transpose of the constant; None when its per-channel axis is not the output
    channel axis."""
    data, axis = weight.data, weight.axis
    if node.op_type == "Conv":  # 1-D and 2-D convolutions: what the kernel runs
        return (data, False) if axis in (None, 0) and data.ndim in (3, 4) else None
    if data.ndim != 2:
        return None
    if node.op_type == "Gemm" and node.attr("transB"):
        return (data, False) if axis in (None, 0) else None
    return (np.ascontiguousarray(data.T), True) if axis in (None, 1) else None


def _channel_vector(data: np.ndarray, channels: int) -> np.ndarray | None:
    """``data`` as a (channels,) vector when it is a scalar or varies along its last axis
    only (a Gemm C of shape (1, N)); None otherwise."""
    if data.size == 1:
        return np.broadcast_to(data.reshape(-1), (channels,))
    if data.ndim >= 1 and data.shape[-1] == channels and data.size == channels:
        return data.reshape(-1)
    return None


def _bias(graph: Graph, node: Node, channels: int, expected_scale: np.ndarray,
          wide: bool) -> np.ndarray | None | bool:
    """The int32 (16x8: int64) bias at ``x_scale * w_scale``; None when there is none;
    False when it cannot be expressed (not a per-channel vector, or out of int32 range)."""
    value = node.inputs[2] if len(node.inputs) > 2 else None
    if value is None:
        return None
    dtype = np.int64 if wide else np.int32
    stored = quantized_constant(graph, value)
    if stored is not None and stored[0].dtype == np.int32:
        ints = _channel_vector(stored[0], channels)
        scale = _channel_vector(stored[1], channels)
        if ints is not None and scale is not None and np.allclose(
                scale, expected_scale, rtol=_BIAS_SCALE_RTOL, atol=0.0):
            return ints.astype(dtype)
    real = dequantized_constant(graph, value)
    vector = None if real is None else _channel_vector(real, channels)
    if vector is None:
        return False
    ints = np.rint(vector.astype(np.float64) / expected_scale)
    if not wide and (ints.min(initial=0) < _INT32.min or ints.max(initial=0) > _INT32.max):
        return False
    return ints.astype(dtype)


def _fuse_weighted(graph: Graph, node: Node) -> bool:
    found = dequantized_activation(graph, node.inputs[0])
    weight = dequantized_weight(graph, node.inputs[1])
    chain = output_chain(graph, node)
    if found is None or weight is None or chain is None:
        return False
    x_dq, x_q, x_params = found
    activation, q_node, y_params, mark = chain
    if node.op_type == "Gemm" and (node.attr("transA") or float(node.attr("alpha")) != 1.0
                                   or (len(node.inputs) > 2 and node.inputs[2] is not None
                                       and float(node.attr("beta")) != 1.0)):
        return False
    if node.op_type == "MatMul" and (x_q.rank is None or x_q.rank < 1):
        return False
    rows = _weight_rows(node, weight)
    clamp = clamp_range(mark, y_params)
    if rows is None or clamp is None:
        return False
    w_rows, transposed = rows
    channels = w_rows.shape[0]
    w_scale = np.broadcast_to(weight.scale.astype(np.float64), (channels,))
    wide = x_params.dtype == "int16"
    bias = _bias(graph, node, channels, x_params.scale * w_scale, wide)
    if bias is False:
        return False
    multipliers = [quantize_multiplier(x_params.scale * float(s) / y_params.scale)
                   for s in w_scale]
    name = node.name
    if transposed:
        w_value = graph.add_constant(f"{weight.value.name}.transposed", w_rows)
    else:
        w_value = weight.value
    inputs: list[Value] = [
        x_q,
        w_value,
        graph.add_constant(f"{name}.multiplier", np.array([m for m, _ in multipliers], np.int32)),
        graph.add_constant(f"{name}.shift", np.array([s for _, s in multipliers], np.int32)),
    ]
    if bias is not None:
        inputs.append(graph.add_constant(f"{name}.bias_quantized", bias))
    attrs = _requant_attrs(x_params, y_params, clamp)
    if node.op_type == "Conv":
        attrs.update({k: v for k, v in node.attrs.items() if k in _CONV_ATTRS})
    old_inputs = list(node.inputs)
    _become(graph, node, "QConv" if node.op_type == "Conv" else "QGemm", inputs, attrs)
    _finish(graph, node, activation, q_node, old_inputs, x_dq)
    return True


def _requant_attrs(x: TensorQuant, y: TensorQuant, clamp: tuple[int, int]) -> dict:
    attrs = {"x_zero_point": x.zero_point, "y_zero_point": y.zero_point,
             "act_min": clamp[0], "act_max": clamp[1]}
    if y.dtype != x.dtype:
        attrs["output_dtype"] = y.dtype
    return attrs


def _become(graph: Graph, node: Node, op_type: str, inputs: list[Value], attrs: dict) -> None:
    """Turn ``node`` into the integer op in place (it keeps its name and module path)."""
    types = infer_types(op_type, [v.type for v in inputs], [constant_data(v) for v in inputs],
                        attrs, domain=DOMAIN)
    node.op_type, node.domain = op_type, DOMAIN
    node.inputs, node.attrs = list(inputs), attrs
    node.meta.pop("fused_activation", None)  # now the clamp range
    node.output.dtype, node.output.shape = types[0].dtype, types[0].shape


def _finish(graph: Graph, node: Node, activation: Node | None, q_node: Node,
            old_inputs: list[Value | None], *dq_nodes: Node) -> None:
    """Hand ``q_node``'s output to ``node``; drop the activation and orphaned DQs."""
    take_over_output(graph, node, q_node)
    if activation is not None:
        graph.remove_node(activation)
    producers = [graph.producer(v) for v in old_inputs if v is not None]
    remove_unused(graph, [*dq_nodes, *(p for p in producers if p is not None)])


# ------------------------------------------------------------------------------- Add
def _fuse_add(graph: Graph, node: Node) -> bool:
    a = dequantized_activation(graph, node.inputs[0])
    b = dequantized_activation(graph, node.inputs[1])
    chain = output_chain(graph, node)
    if a is None or b is None or chain is None or node.inputs[0] is node.inputs[1]:
        return False
    activation, q_node, y, mark = chain
    if not a[2].dtype == b[2].dtype == y.dtype:
        return False
    clamp = clamp_range(mark, y)
    if clamp is None:
        return False
    left_shift = 15 if y.dtype == "int16" else 20
    twice_max = 2.0 * max(a[2].scale, b[2].scale)
    m_a = quantize_multiplier_smaller_than_one_exp(a[2].scale / twice_max)
    m_b = quantize_multiplier_smaller_than_one_exp(b[2].scale / twice_max)
    m_y = quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << left_shift) * y.scale))
    attrs = {"a_zero_point": a[2].zero_point, "b_zero_point": b[2].zero_point,
             "y_zero_point": y.zero_point, "a_multiplier": m_a[0], "a_shift": m_a[1],
             "b_multiplier": m_b[0], "b_shift": m_b[1], "y_multiplier": m_y[0],
             "y_shift": m_y[1], "left_shift": left_shift, "act_min": clamp[0],
             "act_max": clamp[1]}
    old_inputs = list(node.inputs)
    _become(graph, node, "QAdd", [a[1], b[1]], attrs)
    _finish(graph, node, activation, q_node, old_inputs, a[0], b[0])
    return True


# ---------------------------------------------------------------------------- MatMul
def _fuse_matmul(graph: Graph, node: Node) -> bool:
    """A constant weight: QGemm (FULLY_CONNECTED); two activations: QBatchMatMul."""
    if _fuse_weighted(graph, node):
        return True
    a = dequantized_activation(graph, node.inputs[0])
    b = dequantized_activation(graph, node.inputs[1])
    chain = quantize_reader(graph, node.output)
    if a is None or b is None or chain is None or node.meta.get("fused_activation"):
        return False
    q_node, y = chain
    if not a[2].dtype == b[2].dtype == y.dtype or y.dtype not in ("int8", "uint8") \
            or a[1].rank is None or b[1].rank is None or min(a[1].rank, b[1].rank) < 2:
        return False
    # BATCH_MATMUL's Prepare: QuantizeMultiplier(double(s_a) * double(s_b) / double(s_y))
    multiplier, shift = quantize_multiplier(a[2].scale * b[2].scale / y.scale)
    qmin, qmax = y.limits
    attrs = {"a_zero_point": a[2].zero_point, "b_zero_point": b[2].zero_point,
             "y_zero_point": y.zero_point, "multiplier": multiplier, "shift": shift,
             "act_min": qmin, "act_max": qmax}
    old_inputs = list(node.inputs)
    _become(graph, node, "QBatchMatMul", [a[1], b[1]], attrs)
    _finish(graph, node, None, q_node, old_inputs, a[0], b[0])
    return True


# --------------------------------------------------------------------------- pooling
def _fuse_average_pool(graph: Graph, node: Node) -> bool:
    found = dequantized_activation(graph, node.inputs[0])
    chain = quantize_reader(graph, node.output)
    if found is None or chain is None or len(node.outputs) != 1:
        return False
    x_dq, x_q, x = found
    q_node, y = chain
    pads = node.attr("pads") or []
    dilations = node.attr("dilations") or []
    if x_q.rank not in (3, 4):  # 1-D and 2-D pooling: what the kernel runs
        return False
    if not x.same_as(y) or any(int(d) != 1 for d in dilations) or \
            (node.attr("count_include_pad") and (any(pads) or node.attr("auto_pad")
                                                 not in ("NOTSET", "VALID"))):
        return False
    attrs = {k: v for k, v in node.attrs.items() if k in _POOL_ATTRS}
    old_inputs = list(node.inputs)
    _become(graph, node, "QAveragePool", [x_q], attrs)
    _finish(graph, node, None, q_node, old_inputs, x_dq)
    return True


def _fuse_global_average_pool(graph: Graph, node: Node) -> bool:
    found = dequantized_activation(graph, node.inputs[0])
    chain = quantize_reader(graph, node.output)
    if found is None or chain is None:
        return False
    x_dq, x_q, x = found
    q_node, y = chain
    multiplier, shift = quantize_multiplier(x.scale / y.scale)
    attrs = {"x_zero_point": x.zero_point, "y_zero_point": y.zero_point,
             "multiplier": multiplier, "shift": shift}
    if y.dtype != x.dtype:
        attrs["output_dtype"] = y.dtype
    old_inputs = list(node.inputs)
    _become(graph, node, "QGlobalAveragePool", [x_q], attrs)
    _finish(graph, node, None, q_node, old_inputs, x_dq)
    return True


_FUSIONS = {
    "Conv": _fuse_weighted,
    "Gemm": _fuse_weighted,
    "MatMul": _fuse_matmul,
    "Add": _fuse_add,
    "AveragePool": _fuse_average_pool,
    "GlobalAveragePool": _fuse_global_average_pool,
}

__all__ = ["FuseQDQPass"]
