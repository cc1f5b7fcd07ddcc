"""FuseActivationPass: mark Conv/Gemm/MatMul/Add followed by an activation for fused kernels.

Matches a float ``Conv``, ``Gemm``, ``MatMul`` or ``Add`` whose output is read only by one
of these (and is not a graph output):

=============  ==========================================
activation     ``node.meta["fused_activation"]``
=============  ==========================================
Relu           ``"Relu"``
Clip           ``("Clip", lo, hi)`` — constant bounds; ReLU6 is ``("Clip", 0.0, 6.0)``;
               an omitted bound is None
LeakyRelu      ``("LeakyRelu", alpha)``
Sigmoid        ``"Sigmoid"``
Tanh           ``"Tanh"``
=============  ==========================================

The activation node is removed and the producer's output takes its name; the runtime's CPU
kernels apply the activation in place on the producer's output buffer, and the printer shows
``Gemm[+Relu]``. A producer that already has a fused activation is left alone, and so are
values carrying quantization parameters (they describe the unfused value's range).

Why: an activation after a Conv or Gemm is a full extra pass over memory for one max or
clamp; applied while the output is hot in cache it costs almost nothing. Exporters expand
the mark back into an activation node (ONNX) or a fused-activation field (TFLite).

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 8))
    >>> fc = g.add_node("Gemm", [x, np.ones((4, 8), np.float32)], {"transB": 1}, name="fc")
    >>> g.set_outputs([g.add_node("Relu", [fc.output], name="relu").output])
    >>> FuseActivationPass().run(g).changed, fc.meta["fused_activation"], g.outputs[0].name
    (True, 'Relu', 'relu')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import (
    Pass,
    PassResult,
    absorb_node,
    carries_quant,
    single_consumer,
)

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node

#: Ops whose CPU kernels honour ``meta["fused_activation"]``.
FUSABLE_PRODUCERS = ("Conv", "Gemm", "MatMul", "Add")
_NO_PARAMETERS = ("Relu", "Sigmoid", "Tanh")


class FuseActivationPass(Pass):
    """Fold Relu/Clip/LeakyRelu/Sigmoid/Tanh into the Conv/Gemm/MatMul/Add before them."""

    name = "fuse_activation"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for producer in list(graph.nodes):
            if (producer.op_type not in FUSABLE_PRODUCERS or producer.domain != ""
                    or producer.meta.get("fused_activation") is not None
                    or len(producer.outputs) != 1 or producer.output.dtype not in FLOAT_DTYPES):
                continue
            activation = single_consumer(graph, producer.output)
            if activation is None or activation.domain != "" or not activation.inputs \
                    or activation.inputs[0] is not producer.output \
                    or carries_quant(producer.output, *activation.outputs):
                continue
            spec = activation_spec(activation)
            if spec is None:
                continue
            producer.meta["fused_activation"] = spec
            absorb_node(graph, activation, producer.output)
            notes.append(f"fused {activation.describe()} into {producer.describe()}")
        return PassResult.from_notes(notes)


def activation_spec(node: Node) -> Any | None:
    """The ``fused_activation`` mark equivalent to activation ``node``, or None if it has none
    (not an activation, or a Clip with computed bounds)."""
    if node.op_type in _NO_PARAMETERS:
        return node.op_type
    if node.op_type == "LeakyRelu":
        return ("LeakyRelu", float(node.attr("alpha")))
    if node.op_type == "Clip":
        bounds: list[float | None] = []
        for i in (1, 2):
            value = node.inputs[i] if i < len(node.inputs) else None
            if value is None:
                bounds.append(None)
                continue
            data = constant_data(value)
            if data is None or data.size != 1:
                return None
            bounds.append(float(data.reshape(())))
        return ("Clip", bounds[0], bounds[1])
    return None


__all__ = ["FUSABLE_PRODUCERS", "FuseActivationPass", "activation_spec"]
