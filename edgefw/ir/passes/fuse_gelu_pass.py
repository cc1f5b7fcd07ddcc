"""FuseGeluPass: the Erf (or Tanh) decomposition of GELU -> one ``Gelu`` node.

Matches, for a float ``x`` and scalar constants (up to float rounding):

=======================================================  ===============================
core                                                     becomes
=======================================================  ===============================
``Erf(x / sqrt 2)`` or ``Erf(x * (1 / sqrt 2))``         ``Gelu(x)``
``Tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))``            ``Gelu(x, approximate="tanh")``
=======================================================  ===============================

where ``x^3`` is ``Pow(x, 3)``, ``x * (x * x)`` or ``(x * x) * x``, followed by
``1 + core`` and the product of ``x``, ``0.5`` and ``(1 + core)`` in any association and
operand order: ``(x * 0.5) * (1 + core)`` (ONNX's function body, edgefw's exporter),
``(x * (1 + core)) * 0.5`` (PyTorch's exporter), ``x * ((1 + core) * 0.5)``. Every
intermediate value must be read only by the next op of the pattern (not be a graph output)
and carry no quantization parameters; the constants must not broadcast ``x`` to a larger
shape. The ``Gelu`` node takes the last Mul's output name; the others disappear.

Why: exported to opsets before 20 (where ONNX has no Gelu), a transformer's GELU is five
nodes -- five kernel calls and four temporaries at batch 1 -- where the CPU kernel of
``Gelu`` is one pass. ``Gelu`` is an ONNX op (opset 20) the exporters write back: the ONNX
exporter decomposes it again below opset 20, the TFLite exporter writes ``GELU``.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 8))
    >>> f32 = np.float32
    >>> erf = g.add_node("Erf", [g.add_node("Div", [x, f32(np.sqrt(2))]).output]).output
    >>> one_plus = g.add_node("Add", [erf, f32(1)]).output
    >>> half_x = g.add_node("Mul", [x, f32(0.5)]).output
    >>> g.set_outputs([g.add_node("Mul", [half_x, one_plus], name="act").output])
    >>> FuseGeluPass().run(g).rewrites, [n.op_type for n in g.nodes], g.outputs[0].name
    (1, ['Gelu'], 'act')
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult, carries_quant, single_consumer

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value

# Constants are compared with this relative tolerance: exporters write them in float32.
_RTOL = 1e-6
_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_CUBIC = 0.044715


class FuseGeluPass(Pass):
    """Replace the Erf-/Tanh-based GELU decompositions by ``Gelu``."""

    name = "fuse_gelu"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for core in list(graph.nodes):
            if core.op_type not in ("Erf", "Tanh") or core.domain != "" \
                    or core not in graph.nodes:
                continue
            uses = graph.uses()
            matched = _match_erf(graph, core, uses) if core.op_type == "Erf" \
                else _match_tanh(graph, core, uses)
            if matched is None:
                continue
            x, head = matched
            tail = _match_tail(graph, core, x, uses)
            if tail is None:
                continue
            pattern = head + [core] + tail
            if carries_quant(*(n.output for n in pattern)):
                continue
            # The last Mul becomes the Gelu: its output keeps its name, shape and readers.
            gelu = tail[-1]
            gelu.op_type = "Gelu"
            gelu.inputs = [x]
            gelu.attrs = {"approximate": "none" if core.op_type == "Erf" else "tanh"}
            for node in reversed(pattern[:-1]):
                graph.remove_node(node)
            notes.append(f"fused {len(pattern)} nodes ({core.describe()}) into "
                         f"{gelu.describe()}")
        return PassResult.from_notes(notes)


def _match_erf(graph: Graph, erf: Node, uses) -> tuple[Value, list[Node]] | None:
    """``(x, [scaling node])`` when ``erf`` reads ``x / sqrt 2`` or ``x * (1 / sqrt 2)``."""
    scale = _producer(graph, erf.inputs[0], uses)
    if scale is None:
        return None
    if scale.op_type == "Div" and _is_const(scale.inputs[1], _SQRT2) \
            and _keeps_shape(scale.inputs[0], scale.inputs[1]):
        x = scale.inputs[0]
    elif scale.op_type == "Mul":
        x = _other_operand(scale, 1.0 / _SQRT2)
    else:
        return None
    if not _is_float(x) or _only_reader(graph, scale.output, uses) is not erf:
        return None
    return x, [scale]


def _match_tanh(graph: Graph, tanh: Node, uses) -> tuple[Value, list[Node]] | None:
    """``(x, nodes)`` when ``tanh`` reads ``sqrt(2 / pi) * (x + 0.044715 * x^3)``."""
    scale = _producer(graph, tanh.inputs[0], uses)
    if scale is None or scale.op_type != "Mul":
        return None
    inner = _producer(graph, _other_operand(scale, _SQRT_2_OVER_PI), uses)
    if inner is None or inner.op_type != "Add":
        return None
    for i in (0, 1):
        x, cubic_term = inner.inputs[i], inner.inputs[1 - i]
        cubic = _producer(graph, cubic_term, uses)
        if cubic is None or cubic.op_type != "Mul" or not _is_float(x):
            continue
        cube = _producer(graph, _other_operand(cubic, _CUBIC), uses)
        cube_nodes = _cube_nodes(graph, cube, x, uses) if cube is not None else None
        if cube_nodes is None:
            continue
        chain = [*cube_nodes, cubic, inner, scale]
        if all(_only_reader(graph, a.output, uses) is b for a, b in zip(
                chain, [*chain[1:], tanh], strict=True)):
            return x, chain
    return None


def _cube_nodes(graph: Graph, cube: Node, x: Value, uses) -> list[Node] | None:
    """The nodes computing ``x^3`` ending at ``cube``, or None."""
    if cube.op_type == "Pow":
        return [cube] if cube.inputs[0] is x and _is_const(cube.inputs[1], 3.0) else None
    if cube.op_type != "Mul":
        return None
    for i in (0, 1):
        square = _producer(graph, cube.inputs[1 - i], uses)
        if cube.inputs[i] is x and square is not None and square.op_type == "Mul" \
                and square.inputs[0] is x and square.inputs[1] is x \
                and _only_reader(graph, square.output, uses) is cube:
            return [square, cube]
    return None


def _match_tail(graph: Graph, core: Node, x: Value, uses) -> list[Node] | None:
    """The nodes computing ``x * 0.5 * (1 + core)`` from ``core``, ending at the output."""
    add_one = _only_reader(graph, core.output, uses)
    if add_one is None or add_one.op_type != "Add" or _other_operand(add_one, 1.0) \
            is not core.output:
        return None
    first = _only_reader(graph, add_one.output, uses)
    if first is None or first.op_type != "Mul":
        return None
    other = first.inputs[1] if first.inputs[0] is add_one.output else first.inputs[0]
    if other is add_one.output:
        return None
    if other is x:  # (x * (1 + core)) * 0.5
        second = _only_reader(graph, first.output, uses)
        if second is not None and second.op_type == "Mul" \
                and _other_operand(second, 0.5) is first.output:
            return [add_one, first, second]
        return None
    if _is_const(other, 0.5) and _keeps_shape(add_one.output, other):  # x * ((1+core) * .5)
        second = _only_reader(graph, first.output, uses)
        if second is not None and second.op_type == "Mul" and x in second.inputs \
                and first.output in second.inputs and second.inputs[0] is not second.inputs[1]:
            return [add_one, first, second]
        return None
    half_x = _producer(graph, other, uses)  # (x * 0.5) * (1 + core)
    if half_x is not None and half_x.op_type == "Mul" and _other_operand(half_x, 0.5) is x \
            and _only_reader(graph, half_x.output, uses) is first:
        return [half_x, add_one, first]
    return None


# ------------------------------------------------------------------------ small queries
def _producer(graph: Graph, value: Value | None, uses) -> Node | None:
    """The default-domain, single-output, float node producing ``value``, or None."""
    if value is None or value.producer is None or value.producer.domain != "":
        return None
    node = value.producer
    if len(node.outputs) != 1 or not _is_float(node.output):
        return None
    return node


def _only_reader(graph: Graph, value: Value, uses) -> Node | None:
    node = single_consumer(graph, value, uses)
    return node if node is not None and node.domain == "" else None


def _other_operand(node: Node, constant: float) -> Value | None:
    """The operand of binary ``node`` beside a scalar constant equal to ``constant`` that
    does not broadcast it to a larger shape; None when neither operand is one."""
    if len(node.inputs) != 2:
        return None
    for i in (0, 1):
        value, other = node.inputs[1 - i], node.inputs[i]
        if value is not None and _is_const(other, constant) and _keeps_shape(value, other):
            return value
    return None


def _keeps_shape(value: Value, constant: Value) -> bool:
    """True when ``value op constant`` has ``value``'s shape (a scalar of no higher rank)."""
    rank = len(constant.shape) if constant.shape is not None else None
    return rank == 0 or (rank is not None and value.rank is not None and rank <= value.rank)


def _is_const(value: Value | None, expected: float) -> bool:
    data = constant_data(value) if value is not None else None
    if data is None or data.size != 1 or data.dtype.kind != "f":
        return False
    return math.isclose(float(data.reshape(())), expected, rel_tol=_RTOL)


def _is_float(value: Value | None) -> bool:
    return value is not None and value.dtype in FLOAT_DTYPES


__all__ = ["FuseGeluPass"]
