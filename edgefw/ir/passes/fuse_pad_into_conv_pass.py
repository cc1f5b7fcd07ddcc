"""FusePadIntoConvPass: a zero ``Pad`` of the spatial dims before a ``Conv`` becomes the
Conv's own ``pads``.

Matches ``Conv(Pad(x, pads, [0], [axes]))`` where the Pad is in ``constant`` mode with a
zero (or absent) constant value, its pads (and axes, if given) are constants, it pads only
spatial axes (nothing on N and C) by non-negative amounts, its output is read by the Conv
only and is not a graph output, and the Conv uses explicit padding (``auto_pad`` NOTSET).
The Conv then reads ``x`` with ``pads`` increased by the Pad's, and the Pad goes.

Why: models converted from TensorFlow/Keras pad explicitly before strided convolutions
(``ZeroPadding2D``, asymmetric "same" padding); as a separate op that is a full copy of the
activation, whereas the Conv kernel pads while it gathers its windows.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 3, 8, 8))
    >>> padded = g.add_node("Pad", [x, np.array([0, 0, 0, 0, 0, 0, 1, 1])]).output
    >>> conv = g.add_node("Conv", [padded, np.ones((4, 3, 3, 3), np.float32)],
    ...                   {"strides": [2, 2]}, name="conv")
    >>> g.set_outputs([conv.output])
    >>> FusePadIntoConvPass().run(g).changed, [n.op_type for n in g.nodes], conv.attrs["pads"]
    (True, ['Conv'], [0, 0, 1, 1])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult, single_consumer
from edgefw.ir.schema.dims import normalize_axis

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node


class FusePadIntoConvPass(Pass):
    """Move zero padding of spatial dims from a Pad into the following Conv."""

    name = "fuse_pad_into_conv"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for conv in list(graph.nodes):
            if conv.op_type != "Conv" or conv.domain != "" or conv.inputs[0] is None:
                continue
            pad = conv.inputs[0].producer
            if pad is None or pad.op_type != "Pad" or pad.domain != "":
                continue
            if single_consumer(graph, pad.output) is not conv:
                continue
            if conv.attr("auto_pad") not in ("NOTSET", ""):
                continue
            spatial = _spatial_pads(pad)
            if spatial is None:
                continue
            n = len(spatial) // 2
            current = list(conv.attr("pads") or [0] * (2 * n))
            if len(current) != 2 * n:
                continue
            conv.attrs["pads"] = [a + b for a, b in zip(current, spatial, strict=True)]
            conv.inputs[0] = pad.inputs[0]
            graph.remove_node(pad)
            notes.append(f"fused {pad.describe()} into {conv.describe()}")
        return PassResult.from_notes(notes)


def _spatial_pads(pad: Node) -> list[int] | None:
    """The Pad's amounts as Conv ``pads`` ([begin..., end...] over spatial axes), or None
    when it is not a zero pad of spatial axes only."""
    x = pad.inputs[0]
    if x is None or x.shape is None or len(x.shape) < 3 or pad.attr("mode") != "constant":
        return None
    rank = len(x.shape)
    amounts = constant_data(pad.inputs[1])
    if amounts is None:
        return None
    if len(pad.inputs) > 2 and pad.inputs[2] is not None:
        value = constant_data(pad.inputs[2])
        if value is None or value.size != 1 or float(value.reshape(())) != 0.0:
            return None
    axes = list(range(rank))
    if len(pad.inputs) > 3 and pad.inputs[3] is not None:
        given = constant_data(pad.inputs[3])
        if given is None:
            return None
        axes = [normalize_axis(int(a), rank, "Pad axis") for a in given.reshape(-1)]
        if len(set(axes)) != len(axes):
            return None
    amounts = [int(a) for a in amounts.reshape(-1)]
    if len(amounts) != 2 * len(axes) or any(a < 0 for a in amounts):
        return None
    begin, end = [0] * rank, [0] * rank
    for j, axis in enumerate(axes):
        begin[axis] = amounts[j]
        end[axis] = amounts[j + len(axes)]
    if begin[0] or begin[1] or end[0] or end[1]:
        return None
    return begin[2:] + end[2:]


__all__ = ["FusePadIntoConvPass"]
