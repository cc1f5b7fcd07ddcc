"""Small quantizers that write QDQ graphs by hand, in the form ``quantize/`` produces
(/tmp contract: int8 symmetric per-channel weights, int32 bias, per-tensor activations), so
the TFLite exporter's quantized paths are tested independently of the real quantizer.

- :func:`quantize_static_qdq`: every float activation (graph inputs and node outputs) gets
  QuantizeLinear -> DequantizeLinear with min/max ranges observed by running the float
  graph in the runtime on calibration data; weights of Conv/Gemm/MatMul are int8 (per
  output channel), biases int32.
- :func:`quantize_dynamic_qdq`: weights only (activations stay float).
- :func:`convert_float16_weights`: float16 weights + Cast to float32.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir import Graph, Node, Value
from edgefw.ir.graph import constant_data
from runtime import InferenceSession

_WEIGHTED = {"Conv": (1, 2), "Gemm": (1, 2), "MatMul": (1, None)}


def observe_ranges(graph: Graph, calibration: dict[str, np.ndarray]) -> dict[str, tuple]:
    """(min, max) of every float value over the calibration data, from the runtime."""
    probe = graph.copy()
    watched = [v for v in probe.inputs if v.dtype == "float32"] + [
        o for n in probe.nodes for o in n.outputs if o.dtype == "float32"
        and n.op_type not in ("Constant",)]
    probe.set_outputs(list(dict.fromkeys(watched)))
    session = InferenceSession(probe, optimization="none")
    values = session.run(None, calibration)
    return {v.name: (float(np.min(a)), float(np.max(a))) for v, a in zip(probe.outputs, values)}


def _activation_params(lo: float, hi: float) -> tuple[np.float32, np.int8]:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0)
    zero_point = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return scale, np.int8(zero_point)


def _weight_axis(node: Node) -> int:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        return 0 if node.attr("transB") else 1
    return 1  # MatMul (K, N)


def _quantize_weights(graph: Graph, node: Node, per_channel: bool) -> np.ndarray | None:
    """Replace the node's weight by DQ(int8); returns the weight scale (per channel)."""
    w_index, _ = _WEIGHTED[node.op_type]
    w = node.inputs[w_index]
    data = constant_data(w)
    if data is None or data.dtype != np.float32 or data.ndim < 2:
        return None
    axis = _weight_axis(node)
    moved = np.moveaxis(data, axis, 0).reshape(data.shape[axis], -1)
    amax = np.abs(moved).max(axis=1) if per_channel else np.abs(moved).max().reshape(1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * data.ndim
    if per_channel:
        shape[axis] = -1
    q = np.clip(np.rint(data / scale.reshape(shape)), -127, 127).astype(np.int8)
    q_const = graph.add_constant(f"{w.name}.quantized", q)
    zp = np.zeros(scale.size, np.int8)
    attrs = {"axis": axis} if per_channel else {}
    dq = graph.add_node("DequantizeLinear",
                        [q_const, scale if per_channel else scale.reshape(()),
                         zp if per_channel else zp.reshape(())], attrs,
                        name=f"{w.name}.dequantize", before=node)
    node.inputs[w_index] = dq.output
    return scale


def _insert_qdq(graph: Graph, value: Value, params: tuple, uses: dict) -> None:
    scale, zp = params
    readers = list(uses.get(id(value), []))
    q = graph.add_node("QuantizeLinear", [value, np.float32(scale), np.int8(zp)],
                       name=f"{value.name}.quantize")
    dq = graph.add_node("DequantizeLinear", [q.output, np.float32(scale), np.int8(zp)],
                        name=f"{value.name}.dequantize")
    for reader, index in readers:
        reader.inputs[index] = dq.output
    if graph.is_output(value):
        outputs = [dq.output if v is value else v for v in graph.outputs]
        name = value.name
        graph.rename_value(value, graph.unique_value_name(f"{name}.float"))
        graph.rename_value(dq.output, name)
        graph.set_outputs(outputs)


def quantize_static_qdq(graph: Graph, calibration: dict[str, np.ndarray], *,
                        per_channel: bool = True, skip: tuple[str, ...] = ()) -> Graph:
    """A QDQ copy of ``graph``: int8 activations everywhere (except outputs of ops listed
    in ``skip``), int8 weights, int32 biases."""
    g = graph.copy()
    ranges = observe_ranges(g, calibration)
    params = {name: _activation_params(*r) for name, r in ranges.items()}
    for node in list(g.nodes):
        if node.op_type not in _WEIGHTED:
            continue
        w_scale = _quantize_weights(g, node, per_channel)
        b_index = _WEIGHTED[node.op_type][1]
        bias = node.inputs[b_index] if b_index is not None and len(node.inputs) > b_index \
            else None
        x = node.inputs[0]
        if w_scale is None or bias is None or constant_data(bias) is None \
                or x.name not in params:
            continue
        b_scale = (params[x.name][0] * w_scale).astype(np.float32)
        b_scale = np.broadcast_to(b_scale, constant_data(bias).shape).astype(np.float32)
        bq = np.rint(constant_data(bias) / b_scale).astype(np.int32)
        dq = g.add_node("DequantizeLinear", [g.add_constant(f"{bias.name}.quantized", bq),
                                             b_scale, np.zeros(bq.size, np.int32)],
                        {"axis": 0}, name=f"{bias.name}.dequantize", before=node)
        node.inputs[b_index] = dq.output
    uses = g.uses()
    targets = [v for v in g.inputs if v.name in params] + [
        o for n in list(g.nodes) if n.op_type not in ("DequantizeLinear",) + skip
        for o in n.outputs if o.name in params]
    for value in targets:
        _insert_qdq(g, value, params[value.name], uses)
    g.topological_sort()
    g.check()
    return g


def quantize_dynamic_qdq(graph: Graph, *, per_channel: bool = True) -> Graph:
    """Weights of Conv/Gemm/MatMul as int8 + DequantizeLinear; activations float."""
    g = graph.copy()
    for node in list(g.nodes):
        if node.op_type in _WEIGHTED:
            _quantize_weights(g, node, per_channel)
    g.topological_sort()
    g.check()
    return g


def convert_float16_weights(graph: Graph) -> Graph:
    """Weights of Conv/Gemm/MatMul stored float16, Cast to float32 before use."""
    g = graph.copy()
    for node in list(g.nodes):
        if node.op_type not in _WEIGHTED:
            continue
        index = _WEIGHTED[node.op_type][0]
        w = node.inputs[index]
        data = constant_data(w)
        if data is None or data.dtype != np.float32:
            continue
        half = g.add_constant(f"{w.name}.float16", data.astype(np.float16))
        cast = g.add_node("Cast", [half], {"to": 1}, name=f"{w.name}.cast", before=node)
        node.inputs[index] = cast.output
    g.remove_unused_constants()
    g.check()
    return g


__all__ = ["convert_float16_weights", "observe_ranges", "quantize_dynamic_qdq",
           "quantize_static_qdq"]
