"""FoldQDQWeightsPass: a DequantizeLinear of constants that no integer kernel took becomes
the float constant it computes.

Runs after :class:`~edgefw.ir.passes.FuseQDQPass` and
:class:`~edgefw.ir.passes.FuseDynamicQuantPass`: whatever DequantizeLinear of a constant
weight or bias is left feeds a layer that stays float (a group the fusions could not
express, a mixed-precision layer). Computing ``(q - zero_point) * scale`` once here, with
the CPU kernel's arithmetic, saves doing it on every run and gives the float kernels their
constant-weight fast paths back. Results are identical to the unfolded graph.

Constant folding leaves quantization ops alone on purpose (a QDQ graph must keep its
weights quantized for export); this pass belongs to the ``"all"`` level only, which
sessions apply to their own copy of the graph.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", (2,))
    >>> w = g.add_node("DequantizeLinear", [np.array([2, -4], np.int8), np.float32(0.5)]).output
    >>> g.set_outputs([g.add_node("Mul", [x, w]).output])
    >>> FoldQDQWeightsPass().run(g).changed, [n.op_type for n in g.nodes]
    (True, ['Mul'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.ir.passes.base import Pass, PassResult
from edgefw.ir.passes.qdq_patterns import dequantized_constant

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph


class FoldQDQWeightsPass(Pass):
    """Replace DequantizeLinear of constant inputs by its float result."""

    name = "fold_qdq_weights"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for node in list(graph.nodes):
            if node.op_type != "DequantizeLinear" or node.domain != "" \
                    or graph.is_output(node.output):
                continue
            data = dequantized_constant(graph, node.output)
            if data is None:
                continue
            out = node.output
            folded = graph.add_constant(graph.unique_value_name(f"{out.name}.folded"), data,
                                        copy=False)
            graph.replace_all_uses(out, folded)
            inputs = [v for v in node.inputs if v is not None]
            graph.remove_node(node)
            graph.rename_value(folded, out.name)
            for value in inputs:
                if graph.constants.get(value.name) is value and not graph.consumers(value):
                    graph.remove_constant(value)
            notes.append(f"folded {node.describe()}")
        return PassResult.from_notes(notes)


__all__ = ["FoldQDQWeightsPass"]
