"""Rewrite a float graph into QDQ form (the contract the runtime's integer kernels match):

- a quantized activation ``t`` becomes ``t -> QuantizeLinear -> DequantizeLinear`` and its
  readers (and the graph outputs) read the DequantizeLinear output; a graph output keeps its
  name, now on the dequantized value;
- a weight becomes an int8 constant ``<param>.quantized`` with a float32 scale (per output
  channel: axis 0 for Conv and Gemm with transB=1, the last axis for Gemm with transB=0 and
  for MatMul) and an int8 zero point, through DequantizeLinear;
- a bias becomes an int32 constant at scale ``input_scale * weight_scale``, zero point 0.

Every Q/DQ value records its parameters in ``Value.quant``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgefw.ir import Graph, QuantParams
from edgefw.ir.graph import Node, Value, constant_data
from quantize.planning import QuantizationPlan
from quantize.qparams import (
    QParams,
    compute_qparams,
    is_symmetric_dtype,
    quantize_array,
    quantize_bias,
    weight_qparams,
    weight_scale_for_bias,
)

#: ``(tensor name, dtype) -> (lo, hi)``: the calibrated range of a tensor.
RangeFn = Callable[[str, str], tuple[float, float]]


def weight_axis(node: Node) -> int:
    """The output-channel axis of ``node``'s weight (input 1)."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        return 0 if node.attr("transB") else 1
    return (node.inputs[1].rank or 2) - 1  # MatMul: (..., K, N)


def normalize_gemm(graph: Graph, node: Node) -> None:
    """Fold Gemm's ``alpha`` into B and ``beta`` into a constant C, so that the int32 bias
    scale is ``input_scale * weight_scale`` (onnxruntime does the same)."""
    alpha, beta = float(node.attr("alpha")), float(node.attr("beta"))
    if alpha != 1.0:
        w = node.inputs[1]
        node.inputs[1] = graph.add_constant(w.name + ".scaled",
                                            constant_data(w).astype(np.float32) * alpha)
        node.attrs.pop("alpha", None)
    if len(node.inputs) > 2 and node.inputs[2] is not None and beta != 1.0:
        c = node.inputs[2]
        node.inputs[2] = graph.add_constant(c.name + ".scaled",
                                            constant_data(c).astype(np.float32) * beta)
    node.attrs.pop("beta", None)


def _quant(params: QParams) -> QuantParams:
    return QuantParams(params.scale, params.zero_point, params.axis)


def _first_reader_index(graph: Graph, value: Value) -> int | None:
    for i, node in enumerate(graph.nodes):
        if any(v is value for v in node.inputs):
            return i
    return None


def insert_qdq(graph: Graph, value: Value, params: QParams) -> Value:
    """Put ``QuantizeLinear -> DequantizeLinear`` after activation ``value``; every reader and
    graph output of ``value`` then reads the returned DequantizeLinear output."""
    readers = [(n, i) for n in graph.nodes for i, v in enumerate(n.inputs) if v is value]
    position = _first_reader_index(graph, value)
    before = graph.nodes[position] if position is not None else None
    module_path = value.producer.module_path if value.producer is not None else None
    base = value.name
    scale = graph.add_constant(f"{base}.scale", params.scale)
    zero_point = graph.add_constant(f"{base}.zero_point", params.zero_point)
    q = graph.add_node("QuantizeLinear", [value, scale, zero_point],
                       name=graph.unique_node_name(f"{base}_QuantizeLinear"),
                       output_names=[graph.unique_value_name(f"{base}_quantized")],
                       module_path=module_path, before=before).output
    dq = graph.add_node("DequantizeLinear", [q, scale, zero_point],
                        name=graph.unique_node_name(f"{base}_DequantizeLinear"),
                        output_names=[graph.unique_value_name(f"{base}_dequantized")],
                        module_path=module_path, before=before).output
    q.quant = dq.quant = _quant(params)
    for node, i in readers:
        node.inputs[i] = dq
    if graph.is_output(value):
        graph.set_outputs([dq if v is value else v for v in graph.outputs])
        graph.rename_value(value, graph.unique_value_name(f"{base}_float"))
        graph.rename_value(dq, base)
    return dq


def _dequantized_constant(graph: Graph, node: Node, name: str, q: np.ndarray,
                          scale: np.ndarray, zero_point: np.ndarray, axis: int | None) -> Value:
    """``DequantizeLinear(<name>.quantized, scale, zero_point)`` placed before ``node``."""
    params = QParams(scale, zero_point, str(q.dtype), axis)
    q_value = graph.add_constant(f"{name}.quantized", q, quant=_quant(params))
    s_value = graph.add_constant(f"{name}.scale", scale)
    z_value = graph.add_constant(f"{name}.zero_point", zero_point)
    attrs = {"axis": axis} if axis is not None else None
    out = graph.add_node("DequantizeLinear", [q_value, s_value, z_value], attrs,
                         name=graph.unique_node_name(f"{name}_DequantizeLinear"),
                         output_names=[graph.unique_value_name(f"{name}_dequantized")],
                         module_path=node.module_path, before=node).output
    out.quant = _quant(params)
    return out


def quantize_weights(graph: Graph, node: Node, per_channel: bool,
                     input_scale: float | None) -> None:
    """Replace ``node``'s constant weight (and, when ``input_scale`` is given, its bias) by
    their DequantizeLinear'd integer forms."""
    if node.op_type == "Gemm":
        normalize_gemm(graph, node)
    weight_value = node.inputs[1]
    weight = constant_data(weight_value).astype(np.float32)
    axis = weight_axis(node) if per_channel else None
    params = weight_qparams(weight, axis)
    bias_value = node.inputs[2] if len(node.inputs) > 2 else None
    bias = None
    if input_scale is not None and bias_value is not None:
        bias = _bias_vector(node, constant_data(bias_value), weight.shape[weight_axis(node)])
    if bias is not None:
        scale = weight_scale_for_bias(params.scale, bias, input_scale)
        if axis is None:  # one weight scale: the largest any channel's bias needs
            scale = np.asarray(scale.max(), np.float32)
        params = QParams(scale, params.zero_point, "int8", params.axis)
    node.inputs[1] = _dequantized_constant(graph, node, weight_value.name,
                                           quantize_array(weight, params), params.scale,
                                           params.zero_point, axis)
    if bias is not None:
        q_bias, bias_scale = quantize_bias(bias, input_scale, params.scale)
        zero = np.zeros(bias_scale.shape, np.int32)
        node.inputs[2] = _dequantized_constant(graph, node, bias_value.name, q_bias, bias_scale,
                                               zero, 0 if bias_scale.ndim else None)


def _bias_vector(node: Node, bias: np.ndarray | None, channels: int) -> np.ndarray | None:
    """The bias as a ``(channels,)`` vector, or None when it is not one (a Gemm C of shape
    (M, N) stays a float constant)."""
    if bias is None:
        return None
    bias = np.asarray(bias, np.float64)
    if bias.size == 1:
        return np.full(channels, float(bias.reshape(())))
    if bias.size == channels and bias.reshape(-1).shape[0] == bias.shape[-1]:
        return bias.reshape(-1)
    return None


def activation_qparams(plan: QuantizationPlan, ranges: RangeFn) -> dict[str, QParams]:
    """Parameters of every quantized tensor: one set per pass-through group."""
    by_root: dict[tuple[str, str], QParams] = {}
    params: dict[str, QParams] = {}
    for name, (dtype, root) in plan.tensors.items():
        key = (root, dtype)
        if key not in by_root:
            lo, hi = ranges(root, dtype)
            by_root[key] = compute_qparams(lo, hi, dtype, symmetric=is_symmetric_dtype(dtype))
        params[name] = by_root[key]
    return params


def build_qdq(graph: Graph, plan: QuantizationPlan, ranges: RangeFn, per_channel: bool) -> Graph:
    """Rewrite ``graph`` (a prepared float graph, modified in place) per ``plan``."""
    params = activation_qparams(plan, ranges)
    nodes = list(graph.nodes)
    for node in nodes:
        decision = plan.decisions[node.name]
        if decision.kind == "weighted":
            input_params = params[node.inputs[0].name]
            quantize_weights(graph, node, per_channel, float(input_params.scale))
    order = [v for v in graph.inputs] + [o for n in nodes for o in n.outputs]
    for value in order:
        if value.name in params:
            insert_qdq(graph, value, params[value.name])
    graph.remove_unused_constants()
    graph.check()
    return graph


def quantize_weights_only(graph: Graph, plan: QuantizationPlan, per_channel: bool) -> Graph:
    """Dynamic-range form: int8 weights through DequantizeLinear, float bias and
    activations."""
    for node in list(graph.nodes):
        if plan.decisions[node.name].kind == "weighted":
            quantize_weights(graph, node, per_channel, None)
    graph.remove_unused_constants()
    graph.check()
    return graph


__all__ = [
    "activation_qparams",
    "build_qdq",
    "insert_qdq",
    "normalize_gemm",
    "quantize_weights",
    "quantize_weights_only",
    "weight_axis",
]
