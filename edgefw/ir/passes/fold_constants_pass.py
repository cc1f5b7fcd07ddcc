"""FoldConstantsPass: evaluate nodes whose inputs are all known and replace them by constants.

Matches:

- any node whose inputs are all constants (initializers or ``Constant`` node outputs) and
  whose op :mod:`~edgefw.ir.passes.constant_evaluator` can evaluate: the shape arithmetic
  exporters and traced ``view`` calls leave (``Shape -> Gather -> Unsqueeze -> Concat ->
  Reshape``), casts, weight transposes, ``Sqrt(var + eps)``...;
- ``Constant`` nodes, which become graph constants (initializers);
- ``Shape(x)`` when the dims it returns are static, and ``Gather``/``Slice`` of a ``Shape``
  whose selected dims are static, even when others are symbolic: ``Shape(x)[1]`` folds
  for ``x: [batch, 16, 5, 5]``, while ``Shape(x)[0]`` stays computed at run time so one
  graph serves every batch size.

Why: folded graphs run fewer kernels, and the patterns later passes look for (a Reshape to a
constant shape, a constant Gemm weight) appear only once the arithmetic around them is gone.

Not folded: nodes producing a graph output (outputs stay computed by nodes, with their
names), quantization ops (folding DequantizeLinear would dequantize a QDQ graph's weights),
ops without an evaluator, results larger than both their largest input and
``max_elements`` (an Expand to a huge shape would bloat the model), and nodes whose
evaluation fails (the runtime then reports the error naming the node).

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 3))
    >>> scale = g.add_node("Sqrt", [np.full(3, 4.0, np.float32)]).output
    >>> g.set_outputs([g.add_node("Mul", [x, scale]).output])
    >>> FoldConstantsPass().run(g).changed, [n.op_type for n in g.nodes]
    (True, ['Mul'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgefw.errors import EdgeFWError
from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult
from edgefw.ir.passes.constant_evaluator import can_evaluate, evaluate
from edgefw.ir.schema.dims import is_static
from edgefw.ir.schema.tensor import shape_op_range

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value

#: Folded results may always grow to this many elements (4 MiB of float32).
DEFAULT_MAX_ELEMENTS = 1 << 20

# What a failed evaluation may raise: the node is then left for the runtime.
_EVALUATION_ERRORS = (EdgeFWError, ValueError, IndexError, TypeError, ArithmeticError)


class FoldConstantsPass(Pass):
    """Replace nodes computable from constants (and static shapes) by constants."""

    name = "fold_constants"

    def __init__(self, max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        self.max_elements = max_elements

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        # One sweep in topological order suffices: a folded node's outputs are constants
        # by the time its readers are visited.
        for node in list(graph.nodes):
            if any(graph.is_output(v) for v in node.outputs):
                continue
            results = self._fold(node)
            if results is None:
                continue
            self._replace_with_constants(graph, node, results)
            notes.append(f"folded {node.describe()}")
        return PassResult.from_notes(notes)

    # ------------------------------------------------------------------ matching
    def _fold(self, node: Node) -> list[np.ndarray] | None:
        """The outputs of ``node`` if they are known now and small enough, else None."""
        if not can_evaluate(node):
            return None
        if node.op_type == "Shape":
            return _static_shape(node)
        inputs = [None if v is None else constant_data(v) for v in node.inputs]
        if any(a is None and v is not None for a, v in zip(inputs, node.inputs, strict=True)):
            if node.op_type in ("Gather", "Slice"):
                return _index_into_shape(node, inputs)
            return None
        if not self._small_enough(node, inputs):
            return None
        try:
            results = evaluate(node, inputs)
        except _EVALUATION_ERRORS:
            return None
        if not all(_fits(v, a) for v, a in zip(node.outputs, results, strict=True)):
            return None
        return results

    def _small_enough(self, node: Node, inputs: list[np.ndarray | None]) -> bool:
        largest_input = max((a.size for a in inputs if a is not None), default=0)
        limit = max(largest_input, self.max_elements)
        for out in node.outputs:
            if not is_static(out.shape):
                return False
            if int(np.prod(out.shape, dtype=np.int64)) > limit:
                return False
        return True

    # ----------------------------------------------------------------- rewriting
    @staticmethod
    def _replace_with_constants(graph: Graph, node: Node, results: list[np.ndarray]) -> None:
        replaced: list[tuple[str, Value]] = []
        for out, array in zip(node.outputs, results, strict=True):
            # Not np.ascontiguousarray: it would turn 0-d results into 1-d ones.
            contiguous = array if array.flags.c_contiguous else array.copy(order="C")
            const = graph.add_constant(out.name + "_folded", contiguous, copy=False,
                                       quant=out.quant)
            const.meta.update(out.meta)
            graph.replace_all_uses(out, const)
            replaced.append((out.name, const))
        graph.remove_node(node)
        for name, const in replaced:
            if not graph.has_value(name):
                graph.rename_value(const, name)


def _fits(value: Value, array: np.ndarray) -> bool:
    """True when ``array`` agrees with what inference stored for ``value``."""
    if value.dtype is not None and array.dtype.name != value.dtype:
        return False
    if value.shape is None:
        return True
    return len(value.shape) == array.ndim and all(
        not isinstance(d, int) or d == n for d, n in zip(value.shape, array.shape, strict=True)
    )


def _static_shape(node: Node) -> list[np.ndarray] | None:
    """``Shape(x)`` as a constant when the dims it returns are all static."""
    dims = _shape_dims(node)
    if dims is None or not all(isinstance(d, int) for d in dims):
        return None
    return [np.array(dims, dtype=np.int64)]


def _shape_dims(shape_node: Node) -> list | None:
    """The dims (ints, symbols, None) a Shape node returns, or None if the rank is unknown."""
    x = shape_node.inputs[0]
    if x is None or x.shape is None:
        return None
    start, end = shape_op_range(len(x.shape), shape_node.attr("start"), shape_node.attr("end"))
    return list(x.shape[start:end])


def _index_into_shape(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray] | None:
    """``Gather``/``Slice`` of a ``Shape`` output: fold when the dims picked are static.

    The node is evaluated on the dims' positions (0, 1, 2...) instead of their values, which
    tells which dims it picks without knowing the symbolic ones.
    """
    source = node.inputs[0]
    producer = source.producer if source is not None else None
    if producer is None or producer.op_type != "Shape" or producer.domain != "":
        return None
    if any(a is None and v is not None for a, v in zip(inputs[1:], node.inputs[1:], strict=True)):
        return None
    dims = _shape_dims(producer)
    if dims is None:
        return None
    positions = np.arange(len(dims), dtype=np.int64)
    try:
        (picked,) = evaluate(node, [positions, *inputs[1:]])
    except _EVALUATION_ERRORS:
        return None
    values = [dims[int(p)] for p in picked.reshape(-1)]
    if not all(isinstance(d, int) for d in values):
        return None
    return [np.array(values, dtype=np.int64).reshape(picked.shape)]


__all__ = ["DEFAULT_MAX_ELEMENTS", "FoldConstantsPass"]
