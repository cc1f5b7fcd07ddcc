"""RemoveIdentityPass: bypass nodes that return their input unchanged, and collapse pairs of
layout ops.

Matches:

- ``Identity``;
- inference ``Dropout`` (no ``training_mode`` input, or a constant false one) whose mask
  output is unused;
- ``Cast`` to the dtype the input already has;
- ``Reshape``, ``Flatten`` and ``Expand`` whose output shape equals the input shape, all
  dims known (ints, or the same symbols: ``[batch,10] -> [batch,10]``);
- ``Transpose`` with the identity permutation;
- ``Transpose(Transpose(x, p1), p2)``: removed when the permutations cancel (the
  NHWC <-> NCHW pairs around Keras channels-last layers), otherwise merged into one
  Transpose when the first has no other reader;
- ``Reshape(Reshape-or-Flatten(x), shape)`` with a constant shape that does not copy input
  dims (no 0): the Reshape reads ``x`` directly.

Why: each of these is a kernel launch and a copy for nothing at run time, and they hide the
patterns the fusion passes look for (Conv -> Identity -> BatchNormalization).

Graph outputs keep their names: when the removed node produces a graph output, the value
that replaces it takes over its name; when that is impossible (the input is a graph input
or a constant, or is itself a graph output) the node stays.

    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 4))
    >>> r = g.add_node("Relu", [x]).output
    >>> g.set_outputs([g.add_node("Identity", [r], name="out").output])
    >>> RemoveIdentityPass().run(g).changed, [n.op_type for n in g.nodes], g.outputs[0].name
    (True, ['Relu'], 'out')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.ir.dtypes import from_onnx
from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult, single_consumer

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value

_SHAPE_PRESERVING = ("Reshape", "Flatten", "Expand")


class RemoveIdentityPass(Pass):
    """Bypass no-op nodes; cancel or merge Transpose pairs; collapse Reshape chains."""

    name = "remove_identity"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        removed: set[int] = set()
        for node in list(graph.nodes):
            if id(node) in removed or node.domain != "":
                continue
            if node.op_type == "Transpose":
                first = _merge_transposes(graph, node)
                if first is not None:
                    notes.append(f"merged {first.describe()} into {node.describe()}")
                    if not _read(graph, first):
                        graph.remove_node(first)
                        removed.add(id(first))
            elif node.op_type == "Reshape":
                first = _collapse_reshapes(graph, node)
                if first is not None:
                    notes.append(f"{node.describe()} now reads the input of {first.describe()}")
                    if not _read(graph, first):
                        graph.remove_node(first)
                        removed.add(id(first))
            source = _identity_source(graph, node)
            if source is not None and _bypass(graph, node, source):
                removed.add(id(node))
                notes.append(f"removed {node.describe()}")
        return PassResult.from_notes(notes)


def _read(graph: Graph, node: Node) -> bool:
    """True when any output of ``node`` is read by a node or is a graph output."""
    return any(graph.is_output(v) or graph.consumers(v) for v in node.outputs)


def _identity_source(graph: Graph, node: Node) -> Value | None:
    """The input ``node`` returns unchanged, or None when it is not a no-op."""
    op, x = node.op_type, node.inputs[0] if node.inputs else None
    if x is None:
        return None
    if op == "Identity":
        return x
    if op == "Dropout":
        return x if _inference_dropout(graph, node) else None
    if op == "Cast":
        return x if x.dtype is not None and x.dtype == from_onnx(node.attr("to")) else None
    if op in _SHAPE_PRESERVING:
        return x if _same_known_shape(x, node.output) and x.dtype == node.output.dtype else None
    if op == "Transpose":
        perm = _perm(node)
        return x if perm is not None and perm == list(range(len(perm))) else None
    return None


def _inference_dropout(graph: Graph, node: Node) -> bool:
    if len(node.outputs) > 1 and _mask_read(graph, node.outputs[1]):
        return False
    training = node.inputs[2] if len(node.inputs) > 2 else None
    if training is None:
        return True
    flag = constant_data(training)
    return flag is not None and not bool(flag.reshape(-1)[0])


def _mask_read(graph: Graph, mask: Value) -> bool:
    return graph.is_output(mask) or bool(graph.consumers(mask))


def _same_known_shape(a: Value, b: Value) -> bool:
    return (a.shape is not None and b.shape is not None and a.shape == b.shape
            and all(d is not None for d in a.shape))


def _perm(node: Node) -> list[int] | None:
    """The Transpose's permutation, resolving the default (reversed dims) when rank is known."""
    perm = node.attr("perm")
    if perm is not None:
        return [int(p) for p in perm]
    x = node.inputs[0]
    if x is None or x.shape is None:
        return None
    return list(range(len(x.shape)))[::-1]


def _bypass(graph: Graph, node: Node, source: Value) -> bool:
    """Point ``node``'s readers at ``source`` and remove ``node``; False when a graph
    output would lose its name."""
    out = node.outputs[0]
    if graph.is_output(out) and (source.producer is None or graph.is_output(source)):
        return False
    graph.replace_all_uses(out, source)
    graph.remove_node(node)
    return True


def _merge_transposes(graph: Graph, node: Node) -> Node | None:
    """If ``node`` transposes a Transpose's output, make it transpose that Transpose's input
    with the composed permutation; returns the first Transpose, or None."""
    first = node.inputs[0].producer if node.inputs[0] is not None else None
    if first is None or first.op_type != "Transpose" or first.domain != "":
        return None
    p1, p2 = _perm(first), _perm(node)
    if p1 is None or p2 is None or len(p1) != len(p2):
        return None
    composed = [p1[p] for p in p2]
    cancels = composed == list(range(len(composed)))
    # Merging a first Transpose that others also read would keep both kernels: only worth
    # it when the pair cancels (the second disappears).
    if not cancels and single_consumer(graph, first.output) is not node:
        return None
    node.inputs[0] = first.inputs[0]
    node.attrs["perm"] = composed
    return first


def _collapse_reshapes(graph: Graph, node: Node) -> Node | None:
    """If ``node`` reshapes a Reshape/Flatten output to a constant shape that copies no
    input dim, make it reshape that node's input directly; returns the first node."""
    first = node.inputs[0].producer if node.inputs[0] is not None else None
    if first is None or first.op_type not in ("Reshape", "Flatten") or first.domain != "":
        return None
    target = constant_data(node.inputs[1])
    if target is None or (not node.attr("allowzero") and (target == 0).any()):
        return None
    if single_consumer(graph, first.output) is not node:
        return None
    node.inputs[0] = first.inputs[0]
    return first


__all__ = ["RemoveIdentityPass"]
