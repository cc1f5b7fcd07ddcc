"""TEMPORARY: a minimal ONNX -> IR converter used until ``runtime.loaders`` lands.

Newest-form ops only (no opset upgrades). Delete once the real loader is registered.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgefw.ir import Graph
from edgefw.ir.dtypes import from_onnx


def _attr(a: onnx.AttributeProto):
    v = helper.get_attribute_value(a)
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode() for s in v]
    return v


def convert(source) -> Graph:
    model = onnx.load(source) if isinstance(source, str) else onnx.load_from_string(source)
    g = Graph(model.graph.name or "onnx", opset=17)
    inits = {t.name for t in model.graph.initializer}
    for t in model.graph.initializer:
        g.add_constant(t.name, numpy_helper.to_array(t))
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = None
        if tt.HasField("shape"):
            shape = tuple(d.dim_value if d.HasField("dim_value") else
                          (d.dim_param or None) for d in tt.shape.dim)
        g.add_input(vi.name, from_onnx(tt.elem_type), shape)
    for i, n in enumerate(model.graph.node):
        outs = list(n.output)
        while outs and not outs[-1]:
            outs.pop()
        outs = [o or f"__unused_{i}_{k}" for k, o in enumerate(outs)]
        ins = [x if x else None for x in n.input]
        g.add_node(n.op_type, ins, {a.name: _attr(a) for a in n.attribute},
                   name=n.name or None, output_names=outs, domain=n.domain)
    g.set_outputs([o.name for o in model.graph.output])
    return g


def install() -> None:
    from runtime import register_loader

    register_loader("onnx", convert)


__all__ = ["convert", "install", "np"]
