"""Float16 conversion: half the weight bytes, with or without float16 arithmetic.

- ``compute="float32"`` (weights only, TFLite's float16 quantization): each float32 weight
  with more than one element is stored as float16 and read through ``Cast`` to float32, so
  the file halves and the arithmetic (and accuracy) stays float32;
- ``compute="float16"``: the whole graph computes in float16. With ``keep_io_float32`` the
  graph still takes and returns float32 (``Cast`` at the boundary), so callers are unchanged.

    >>> import numpy as np, edgefw
    >>> from edgefw import models
    >>> g = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    >>> half = convert_float16(g)
    >>> half.value("1.weight").dtype, half.value("1.weight_float32").producer.op_type
    ('float16', 'Cast')
    >>> full = convert_float16(g, compute="float16")
    >>> full.inputs[0].dtype, full.value("1").dtype, full.outputs[0].dtype
    ('float32', 'float16', 'float32')
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from edgefw.errors import QuantizationError
from edgefw.ir import Graph
from edgefw.ir.dtypes import to_onnx
from edgefw.ir.graph import Value

FLOAT16_MAX = float(np.finfo(np.float16).max)
COMPUTE_MODES = ("float32", "float16")
_FLOAT32, _FLOAT16 = to_onnx("float32"), to_onnx("float16")


def convert_float16(graph: Graph, keep_io_float32: bool = True,
                    compute: str = "float32") -> Graph:
    """A float16 copy of float ``graph`` (see the module docstring); ``graph`` is unchanged.

    Weights beyond float16's range (65504) stay float32 in weights-only mode and are an
    error in float16 compute, where they would become infinite.
    """
    if not isinstance(graph, Graph):
        raise QuantizationError(f"expected an edgefw.ir.Graph, got {type(graph).__name__}")
    if compute not in COMPUTE_MODES:
        raise QuantizationError(f"compute must be one of {', '.join(COMPUTE_MODES)}, got "
                                f"{compute!r}")
    if not isinstance(keep_io_float32, bool):
        raise QuantizationError(f"keep_io_float32 must be True or False, got "
                                f"{keep_io_float32!r}")
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.nodes):
        raise QuantizationError(f"graph '{graph.name}' is quantized; convert the float graph")
    graph.check()
    if compute == "float32":
        result, kept = _weights_only(graph)
    else:
        result, kept = _full_float16(graph, keep_io_float32), []
    info: dict[str, Any] = {"mode": "float16", "compute": compute,
                            "keep_io_float32": keep_io_float32 or compute == "float32"}
    if kept:
        info["kept_float32"] = kept
    result.metadata["quantization"] = json.dumps(info, sort_keys=True)
    result.check()
    return result


def _out_of_range(data: np.ndarray) -> bool:
    return bool(np.any(np.abs(data[np.isfinite(data)]) > FLOAT16_MAX))


def _weights_only(graph: Graph) -> tuple[Graph, list[str]]:
    g = graph.copy()
    uses = g.uses()
    kept = []
    for value in list(g.constants.values()):
        readers = uses.get(id(value), [])
        if value.dtype != "float32" or value.data.size <= 1 or not readers \
                or g.is_output(value):
            continue
        if _out_of_range(value.data):
            kept.append(value.name)
            continue
        name = value.name
        half = g.add_constant(name + ".float16", value.data.astype(np.float16), copy=False)
        first = min(g.nodes.index(n) for n, _ in readers)
        cast = g.add_node("Cast", [half], {"to": _FLOAT32}, name=g.unique_node_name(name + "_Cast"),
                          output_names=[g.unique_value_name(name + "_float32")],
                          before=g.nodes[first]).output
        for node, i in readers:
            node.inputs[i] = cast
        g.remove_constant(value)
        g.rename_value(half, name)
    return g, kept


def _full_float16(graph: Graph, keep_io_float32: bool) -> Graph:
    g = Graph(graph.name, graph.opset)
    g.metadata = dict(graph.metadata)
    mapped: dict[int, Value] = {}
    for v in graph.inputs:
        if v.dtype != "float32":
            mapped[id(v)] = g.add_input(v.name, v.dtype, v.shape)
        elif keep_io_float32:
            x = g.add_input(v.name, "float32", v.shape)
            mapped[id(v)] = g.add_node("Cast", [x], {"to": _FLOAT16}, name=f"{v.name}_Cast",
                                       output_names=[f"{v.name}.float16"]).output
        else:
            mapped[id(v)] = g.add_input(v.name, "float16", v.shape)

    def constant(v: Value) -> Value:
        data = v.data
        if v.dtype == "float32":
            if _out_of_range(data):
                raise QuantizationError(f"constant {v.name!r} holds values beyond float16's "
                                        f"range ({np.abs(data).max():.4g} > 65504); use "
                                        "compute='float32'")
            data = data.astype(np.float16)
        return g.add_constant(v.name, data, copy=False)

    for node in graph.nodes:
        inputs = []
        for v in node.inputs:
            if v is not None and id(v) not in mapped:
                mapped[id(v)] = constant(v)
            inputs.append(None if v is None else mapped[id(v)])
        attrs = {k: _half_attr(node.op_type, k, a) for k, a in node.attrs.items()}
        new = g.add_node(node.op_type, inputs, attrs, name=node.name,
                         num_outputs=len(node.outputs), module_path=node.module_path,
                         output_names=[o.name for o in node.outputs], domain=node.domain,
                         meta=dict(node.meta))
        for old, out in zip(node.outputs, new.outputs, strict=True):
            mapped[id(old)] = out
    outputs = []
    for v in graph.outputs:
        out = mapped.get(id(v)) or constant(v)
        if keep_io_float32 and out.dtype == "float16":
            name = out.name
            g.rename_value(out, g.unique_value_name(name + "_float16"))
            out = g.add_node("Cast", [out], {"to": _FLOAT32},
                             name=g.unique_node_name(name + "_Cast"), output_names=[name]).output
        outputs.append(out)
    g.set_outputs(outputs)
    return g


def _half_attr(op_type: str, name: str, value: Any) -> Any:
    """Attributes that name float32 (Cast's target, float32 tensor attributes) in float16."""
    if op_type == "Cast" and name == "to" and value == _FLOAT32:
        return _FLOAT16
    if isinstance(value, np.ndarray) and value.dtype == np.float32:
        return value.astype(np.float16)
    return value


__all__ = ["COMPUTE_MODES", "convert_float16"]
