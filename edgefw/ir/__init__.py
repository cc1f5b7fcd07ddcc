"""edgefw's graph IR: one graph type, ONNX op semantics, NCHW, QDQ quantization.

Everything after training works on :class:`Graph`: the tracer builds it, passes rewrite
it, the quantizer and exporters consume it, the runtime executes it. This package imports
only numpy and :mod:`edgefw.errors`, so a device can load it without the trainer.

>>> import numpy as np
>>> from edgefw.ir import Graph
>>> g = Graph("tiny")
>>> x = g.add_input("x", "float32", ("batch", 4))
>>> y = g.add_node("Relu", [x]).output
>>> g.set_outputs([y])
>>> print(g)
graph tiny(%x: float32[batch,4]) -> (%relu)  opset 17
  %relu = Relu(%x)  # float32[batch,4]
  return %relu
"""

from __future__ import annotations

from edgefw.ir import dtypes
from edgefw.ir.graph import DEFAULT_OPSET, Graph, Node, QuantParams, Value
from edgefw.ir.schema import (
    Attr,
    OpSchema,
    TensorType,
    get_schema,
    has_schema,
    infer_types,
    known_ops,
)

__all__ = [
    "DEFAULT_OPSET",
    "Attr",
    "Graph",
    "Node",
    "OpSchema",
    "QuantParams",
    "TensorType",
    "Value",
    "dtypes",
    "get_schema",
    "has_schema",
    "infer_types",
    "known_ops",
]
