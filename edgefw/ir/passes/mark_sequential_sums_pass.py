"""MarkSequentialSumsPass: in a quantized graph, ask for TFLite's summation order in the
float LayerNormalization and ReduceMean nodes.

Sets ``node.meta["sequential_sums"] = True`` on every ``LayerNormalization`` and
``ReduceMean`` of a graph that quantizes (it has a QuantizeLinear, or the runtime's integer
ops). The CPU kernels then sum left to right and divide by the count, as TFLite's MEAN
does, instead of numpy's pairwise sums: a float LayerNorm between int8 layers whose result
lies a hair from a rounding boundary would otherwise flip an int8 step against LiteRT and
carry it on. Float graphs keep the faster, more accurate pairwise sums.

A runtime-only mark (the session's own copy): exporters never see it, and it changes no
op, so a graph that is marked still means the same thing.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 8))
    >>> ln = g.add_node("LayerNormalization", [x, np.ones(8, np.float32)], {"axis": -1})
    >>> q = g.add_node("QuantizeLinear", [ln.output, np.float32(0.1), np.int8(0)])
    >>> g.set_outputs([q.output])
    >>> MarkSequentialSumsPass().run(g).changed, ln.meta["sequential_sums"]
    (True, True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.ir.passes.base import Pass, PassResult

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph

SEQUENTIAL_SUMS = "sequential_sums"
_MARKED = ("LayerNormalization", "ReduceMean")
_QUANTIZING = ("QuantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul")


class MarkSequentialSumsPass(Pass):
    name = "mark_sequential_sums"

    def run(self, graph: Graph) -> PassResult:
        quantized = any(n.op_type in _QUANTIZING
                        or (n.domain == "edgefw" and n.op_type.startswith("Q"))
                        for n in graph.nodes)
        if not quantized:
            return PassResult(False)
        notes = []
        for node in graph.nodes:
            if node.op_type in _MARKED and node.domain == "" \
                    and not node.meta.get(SEQUENTIAL_SUMS):
                node.meta[SEQUENTIAL_SUMS] = True
                notes.append(f"{node.name}: sums left to right")
        return PassResult.from_notes(notes)


__all__ = ["MarkSequentialSumsPass", "SEQUENTIAL_SUMS"]
