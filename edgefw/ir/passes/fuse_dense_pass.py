"""FuseDensePass: ``Add(MatMul(x, W), b)`` with ``x`` of rank >= 3 -> edgefw ``Dense``.

Matches a float MatMul whose first input has rank >= 3 (``[batch, seq, K]``), whose second
is a constant 2-D weight ``[K, N]``, and whose output is read only by an Add (either
operand order) with a constant bias of shape ``[N]`` or ``[1, ..., 1, N]`` (no higher rank
than the product, so it cannot enlarge it). The MatMul becomes ``Dense(x, W, b)`` (domain
``"edgefw"``, :mod:`edgefw.ir.schema.fused_ops`) and takes the Add's output name, and the
Add's fused activation if it had one; the Add disappears. Values carrying quantization
parameters are left alone; so is a MatMul that already has a fused activation.

Why: a transformer's projections are ``[batch, seq, K] @ W + b``; ONNX's Gemm is 2-D only,
so :class:`~edgefw.ir.passes.FuseMatMulAddPass` leaves them as two nodes. At batch 1 the
Add is a second kernel call for a 1-2k-value add; in one kernel the bias goes into the
product's output while it is in cache, and the stacked product is one 2-D GEMM at every
batch size. ``Dense`` is runtime-internal: this pass runs only on the session's copy of a
graph (``passes_for_level(..., integer_kernels=True)``), never on what exporters write.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 16, 8))
    >>> mm = g.add_node("MatMul", [x, np.ones((8, 4), np.float32)], name="proj").output
    >>> g.set_outputs([g.add_node("Add", [mm, np.ones(4, np.float32)], name="y").output])
    >>> FuseDensePass().run(g).changed, [n.op_type for n in g.nodes], g.outputs[0].name
    (True, ['Dense'], 'y')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult, absorb_node
from edgefw.ir.passes.fuse_matmul_add_pass import matmul_bias_add

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Value

DOMAIN = "edgefw"


class FuseDensePass(Pass):
    """Turn MatMul (rank >= 3 input, constant 2-D weight) + constant bias Add into Dense."""

    name = "fuse_dense"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for matmul in list(graph.nodes):
            found = matmul_bias_add(graph, matmul)
            if found is None:
                continue
            x, weight = matmul.inputs
            if x.rank < 3 or x.dtype not in FLOAT_DTYPES:
                continue
            add, bias = found
            bias = _dense_bias(graph, bias, matmul.output, weight)
            if bias is None:
                continue
            activation = add.meta.get("fused_activation")
            matmul.op_type = "Dense"
            matmul.domain = DOMAIN
            matmul.inputs = [x, weight, bias]
            matmul.attrs = {}
            if activation is not None:
                matmul.meta["fused_activation"] = activation
            absorb_node(graph, add, matmul.output)
            notes.append(f"fused {add.describe()} into {matmul.describe()}")
        return PassResult.from_notes(notes)


def _dense_bias(graph: Graph, bias: Value, product: Value, weight: Value) -> Value | None:
    """``bias`` as a ``[N]`` Value if it is a constant ``[N]`` (or ``[1, ..., N]``) bias
    (a reshaped constant when it had leading ones), else None."""
    data = constant_data(bias)
    if product.rank is None:
        return None
    n = weight.shape[1]
    if data.ndim == 0 or data.ndim > product.rank or data.shape[-1] != n \
            or any(d != 1 for d in data.shape[:-1]):
        return None
    if data.ndim == 1:
        return bias
    return graph.add_constant(graph.unique_value_name(f"{bias.name}.row"), data.reshape(n))


__all__ = ["FuseDensePass"]
