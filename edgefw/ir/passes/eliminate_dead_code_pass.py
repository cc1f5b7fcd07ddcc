"""EliminateDeadCodePass: remove nodes whose outputs nothing needs, then unused constants.

Matches nodes from which no graph output can be reached (ONNX ops have no side effects),
e.g. the BatchNormalization parameters left behind by BatchNorm folding, a Shape chain
whose Reshape was folded, a traced branch whose result the model never returned; then
constants no node and no graph output reads. Graph inputs stay even when unused: they
are the interface users feed.

Why: the runtime would otherwise execute dead nodes and keep dead weights in memory, and
exporters would write them into the model file.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", (2,))
    >>> unused = g.add_node("Mul", [x, np.ones(2, np.float32)])
    >>> g.set_outputs([g.add_node("Relu", [x]).output])
    >>> result = EliminateDeadCodePass().run(g)
    >>> [n.op_type for n in g.nodes], len(g.constants)
    (['Relu'], 0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.ir.passes.base import Pass, PassResult

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph


class EliminateDeadCodePass(Pass):
    """Drop nodes that cannot reach a graph output, and constants nothing reads."""

    name = "eliminate_dead_code"

    def run(self, graph: Graph) -> PassResult:
        live_values = {id(v) for v in graph.outputs}
        dead = []
        # Reverse topological order: a node's readers are decided before the node.
        for node in reversed(graph.nodes):
            if any(id(v) in live_values for v in node.outputs):
                live_values.update(id(v) for v in node.inputs if v is not None)
            else:
                dead.append(node)
        notes = []
        for node in dead:  # readers first, so each removal finds its outputs unread
            graph.remove_node(node)
            notes.append(f"removed {node.describe()}")
        removed_constants = graph.remove_unused_constants()
        if removed_constants:
            notes.append(f"removed {removed_constants} unused constant"
                         f"{'s' if removed_constants != 1 else ''}")
        return PassResult(bool(notes), len(dead) + removed_constants, notes)


__all__ = ["EliminateDeadCodePass"]
