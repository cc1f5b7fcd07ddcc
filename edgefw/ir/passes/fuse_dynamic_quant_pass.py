"""FuseDynamicQuantPass: dynamic-range layers -> hybrid integer ops (domain "edgefw").

Matches a Conv, Gemm or MatMul whose weight is ``DequantizeLinear`` of a constant int8
tensor (zero point 0, per tensor or per output channel) and whose activation input is a
float tensor that no DequantizeLinear produced — what ``quantize.quantize_dynamic``
writes. It becomes ``QDynamicConv`` or ``QDynamicGemm`` (weight ``[N, K]``): TFLite's
dynamic-range kernels, which quantize the activation per batch row at run time
(asymmetric int8), accumulate in int32 and scale back to float. A constant float bias
(or a DequantizeLinear'd one) is kept as a float vector; the fused float activation mark
stays on the node.

Why: the float graph would dequantize every weight on every run; the hybrid kernel keeps
int8 weights and matches what a device running the TFLite file computes.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 4))
    >>> w = g.add_node("DequantizeLinear", [np.ones((3, 4), np.int8), np.float32(0.5),
    ...                                     np.int8(0)]).output
    >>> g.set_outputs([g.add_node("Gemm", [x, w], {"transB": 1}, name="fc").output])
    >>> FuseDynamicQuantPass().run(g).changed, [n.op_type for n in g.nodes]
    (True, ['QDynamicGemm'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult
from edgefw.ir.passes.qdq_patterns import dequantized_constant, dequantized_weight, remove_unused
from edgefw.ir.schema import infer_types

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value

DOMAIN = "edgefw"
_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


class FuseDynamicQuantPass(Pass):
    """Replace float-activation Conv/Gemm/MatMul with DequantizeLinear'd int8 weights by
    TFLite's hybrid kernels."""

    name = "fuse_dynamic_quant"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for node in list(graph.nodes):
            if node.domain == "" and node.op_type in ("Conv", "Gemm", "MatMul") \
                    and _fuse(graph, node):
                notes.append(f"{node.describe()} now runs dynamic-range int8")
        return PassResult.from_notes(notes)


def _float_activation(graph: Graph, value: Value | None) -> bool:
    if value is None or value.dtype != "float32" or constant_data(value) is not None:
        return False
    producer = graph.producer(value)
    return producer is None or producer.op_type != "DequantizeLinear"


def _fuse(graph: Graph, node: Node) -> bool:
    weight = dequantized_weight(graph, node.inputs[1])
    if weight is None or not _float_activation(graph, node.inputs[0]):
        return False
    data, axis = weight.data, weight.axis
    if node.op_type == "Conv":
        if axis not in (None, 0) or data.ndim not in (3, 4):
            return False
        rows, op_type = data, "QDynamicConv"
    else:
        if data.ndim != 2:
            return False
        if node.op_type == "Gemm" and (node.attr("transA") or float(node.attr("alpha")) != 1.0):
            return False
        trans_b = node.op_type == "Gemm" and bool(node.attr("transB"))
        if (trans_b and axis not in (None, 0)) or (not trans_b and axis not in (None, 1)):
            return False
        rows, op_type = (data if trans_b else np.ascontiguousarray(data.T)), "QDynamicGemm"
    channels = rows.shape[0]
    bias = None
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        real = dequantized_constant(graph, node.inputs[2])
        beta = float(node.attr("beta")) if node.op_type == "Gemm" else 1.0
        if real is None or not (real.size == 1 or (real.size == channels
                                                   and real.shape[-1] == channels)):
            return False
        bias = np.broadcast_to(real.reshape(-1) * np.float32(beta), (channels,))
    name = node.name
    w_value = weight.value if rows is data else graph.add_constant(
        f"{weight.value.name}.transposed", rows)
    inputs = [node.inputs[0], w_value,
              graph.add_constant(f"{name}.w_scale", np.broadcast_to(
                  weight.scale, (channels,)).astype(np.float32))]
    if bias is not None:
        inputs.append(graph.add_constant(f"{name}.bias", bias.astype(np.float32)))
    attrs = {k: v for k, v in node.attrs.items() if k in _CONV_ATTRS} \
        if op_type == "QDynamicConv" else {}
    types = infer_types(op_type, [v.type for v in inputs], [constant_data(v) for v in inputs],
                        attrs, domain=DOMAIN)
    old_inputs = list(node.inputs)
    node.op_type, node.domain, node.inputs, node.attrs = op_type, DOMAIN, inputs, attrs
    node.output.dtype, node.output.shape = types[0].dtype, types[0].shape
    remove_unused(graph, [graph.producer(v) for v in old_inputs[1:] if v is not None
                          and graph.producer(v) is not None])
    return True


__all__ = ["FuseDynamicQuantPass"]
