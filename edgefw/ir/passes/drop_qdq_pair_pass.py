"""DropQDQPairPass: data movement between a DequantizeLinear and a QuantizeLinear with the
same parameters runs on the integers.

Matches ``DQ(x_q) -> op -> Q`` where ``op`` moves or selects values without computing new
ones — MaxPool (int8/uint8, one output), Reshape, Flatten, Transpose, Squeeze, Unsqueeze —
or ``Concat(DQ(a_q), DQ(b_q), ...) -> Q``, and every DequantizeLinear and the
QuantizeLinear share one per-tensor scale, zero point and dtype. Then
``Q(op(DQ(x_q))) == op(x_q)`` exactly: dequantization is monotonic and one-to-one on the
integers, and requantizing a value that came from the same grid gives it back. The op is
rewired to ``x_q``, takes over the Q's output (and name), and the pair disappears.

Why: one float round trip less per op, and 1-byte tensors instead of 4-byte ones between
the integer kernels that :class:`~edgefw.ir.passes.FuseQDQPass` creates.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "int8", ("batch", 2, 3))
    >>> s, z = np.float32(0.1), np.int8(3)
    >>> xd = g.add_node("DequantizeLinear", [x, s, z]).output
    >>> f = g.add_node("Flatten", [xd], name="flatten").output
    >>> g.set_outputs([g.add_node("QuantizeLinear", [f, s, z]).output])
    >>> DropQDQPairPass().run(g).changed, [n.op_type for n in g.nodes], g.outputs[0].dtype
    (True, ['Flatten'], 'int8')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult
from edgefw.ir.passes.qdq_patterns import (
    dequantized_activation,
    quantize_reader,
    remove_unused,
    take_over_output,
)
from edgefw.ir.schema import infer_types

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node

#: Ops whose only quantized operand is input 0 (the others are shapes/axes).
SINGLE_INPUT_OPS = ("MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze")
# MaxPool has ONNX kernels for int8/uint8 only.
_MAXPOOL_DTYPES = ("int8", "uint8")


class DropQDQPairPass(Pass):
    """Run MaxPool/Reshape/Flatten/Transpose/Squeeze/Unsqueeze/Concat on integers when the
    DequantizeLinear before and the QuantizeLinear after share their parameters."""

    name = "drop_qdq_pair"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for node in list(graph.nodes):
            if node.domain != "" or len(node.outputs) != 1 or node not in graph.nodes:
                continue
            if node.op_type in SINGLE_INPUT_OPS:
                indices = [0]
            elif node.op_type == "Concat":
                indices = list(range(len(node.inputs)))
            else:
                continue
            if _drop_pair(graph, node, indices):
                notes.append(f"{node.describe()} now moves integers")
        return PassResult.from_notes(notes)


def _drop_pair(graph: Graph, node: Node, indices: list[int]) -> bool:
    chain = quantize_reader(graph, node.output)
    if chain is None:
        return False
    q_node, out = chain
    found = [dequantized_activation(graph, node.inputs[i]) for i in indices]
    if any(f is None or not f[2].same_as(out) for f in found):
        return False
    if node.op_type == "MaxPool" and out.dtype not in _MAXPOOL_DTYPES:
        return False
    inputs = list(node.inputs)
    for i, (_, x_q, _) in zip(indices, found, strict=True):
        inputs[i] = x_q
    types = infer_types(node.op_type, [None if v is None else v.type for v in inputs],
                        [None if v is None else constant_data(v) for v in inputs], node.attrs,
                        len(node.outputs), node.domain)
    old_inputs = node.inputs
    node.inputs = inputs
    node.output.dtype, node.output.shape = types[0].dtype, types[0].shape
    take_over_output(graph, node, q_node)
    remove_unused(graph, [graph.producer(old_inputs[i]) for i in indices])
    return True


__all__ = ["DropQDQPairPass", "SINGLE_INPUT_OPS"]
