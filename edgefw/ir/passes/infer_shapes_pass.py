"""InferShapesPass: re-run every node's schema inference in order and update stored types.

Matches every node. Rewrites can make a value's stored type stale or leave it less precise
than it could be (a Reshape whose shape input became a constant only after folding now has
a known output shape; a graph loaded from a file may declare unknown dims). Later passes and
the runtime planner read stored shapes, so this pass refreshes them.

Merging rule, per output dim: what inference computes now wins when it knows the dim (an
int or a symbol); when inference cannot tell (None) but the stored type knows the dim, the
stored dim is kept — rewrites preserve values, so a dim known before is still right, and a
symbolic batch (``"batch"``) is never replaced by an unknown. An unknown rank from inference
keeps the stored shape. After editing graph inputs so that dims become *less* known, use
``InferShapesPass(keep_stored_dims=False)``: stored types are then replaced outright.

    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 4))
    >>> y = g.add_node("Relu", [x]).output
    >>> g.set_outputs([y])
    >>> y.shape = None  # e.g. a loaded file without value_info
    >>> InferShapesPass().run(g).changed, y.shape
    (True, ('batch', 4))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.errors import DTypeError, GraphError, ShapeError
from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult
from edgefw.ir.schema import infer_types
from edgefw.ir.schema.dims import Shape, format_shape

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node


class InferShapesPass(Pass):
    """Refresh every node output's stored dtype and shape from schema inference."""

    name = "infer_shapes"

    def __init__(self, keep_stored_dims: bool = True) -> None:
        self.keep_stored_dims = keep_stored_dims

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for node in graph.nodes:
            inferred = _infer(node)
            for value, t in zip(node.outputs, inferred, strict=True):
                if self.keep_stored_dims:
                    dtype = t.dtype if t.dtype is not None else value.dtype
                    shape = merge_shapes(value.shape, t.shape)
                else:
                    dtype, shape = t.dtype, t.shape
                if dtype != value.dtype or shape != value.shape:
                    notes.append(f"{value.name}: {value.dtype}{format_shape(value.shape)} -> "
                                 f"{dtype}{format_shape(shape)}")
                    value.dtype, value.shape = dtype, shape
        return PassResult.from_notes(notes)


def _infer(node: Node) -> list:
    try:
        return infer_types(
            node.op_type,
            [None if v is None else v.type for v in node.inputs],
            [None if v is None else constant_data(v) for v in node.inputs],
            node.attrs,
            len(node.outputs),
            node.domain,
        )
    except (ShapeError, DTypeError, GraphError) as exc:
        shapes = ", ".join("_" if v is None else f"{v.dtype}{format_shape(v.shape)}"
                           for v in node.inputs)
        raise type(exc)(f"{node.describe()}: {exc} (inputs: {shapes})") from exc


def merge_shapes(stored: Shape | None, inferred: Shape | None) -> Shape | None:
    """``inferred``, with dims it leaves unknown filled from ``stored`` (same rank only)."""
    if inferred is None:
        return stored
    if stored is None or len(stored) != len(inferred):
        return tuple(inferred)
    return tuple(new if new is not None else old for old, new in zip(stored, inferred,
                                                                     strict=True))


__all__ = ["InferShapesPass", "merge_shapes"]
