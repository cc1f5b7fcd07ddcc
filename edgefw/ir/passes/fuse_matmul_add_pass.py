"""FuseMatMulAddPass: ``Add(MatMul(x, W), b)`` with constant 2-D ``W`` and bias -> ``Gemm``.

Matches a MatMul whose first input is 2-D (rank known to be 2), whose second is a constant
2-D weight, and whose output is read only by an Add (either operand order) with a constant
bias that broadcasts into the product without enlarging it: shape ``[]``, ``[1]``, ``[N]``,
``[1, N]`` (or ``[M, N]`` / ``[M, 1]`` with ``M`` static). The MatMul becomes
``Gemm(x, W, b)`` and takes the Add's output name; the Add disappears. Products or sums
carrying quantization parameters are left alone.

Why: Gemm is one kernel (BLAS with the bias in the output) instead of two, and it is the
form the activation fusion, the quantizer and the TFLite FullyConnected lowering expect.
Loaders and Keras-style Dense layers produce MatMul + Add; BatchNorm folding into a MatMul
produces it too. Higher-rank MatMuls (``[batch, seq, d] @ W``) stay MatMul: Gemm is 2-D only.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 8))
    >>> mm = g.add_node("MatMul", [x, np.ones((8, 4), np.float32)], name="dense").output
    >>> g.set_outputs([g.add_node("Add", [mm, np.ones(4, np.float32)], name="y").output])
    >>> FuseMatMulAddPass().run(g).changed, [n.op_type for n in g.nodes], g.outputs[0].name
    (True, ['Gemm'], 'y')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import (
    Pass,
    PassResult,
    absorb_node,
    carries_quant,
    single_consumer,
)

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value


class FuseMatMulAddPass(Pass):
    """Turn 2-D MatMul + constant bias Add into Gemm."""

    name = "fuse_matmul_add"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for matmul in list(graph.nodes):
            found = matmul_bias_add(graph, matmul)
            if found is None or matmul.inputs[0].rank != 2:
                continue
            add, bias = found
            if not _gemm_bias(bias, matmul.output):
                continue
            matmul.op_type = "Gemm"
            matmul.inputs = [matmul.inputs[0], matmul.inputs[1], bias]
            matmul.attrs = {}
            absorb_node(graph, add, matmul.output)
            notes.append(f"fused {add.describe()} into {matmul.describe()} as Gemm")
        return PassResult.from_notes(notes)


def matmul_bias_add(graph: Graph, matmul: Node) -> tuple[Node, Value] | None:
    """``(add, bias)`` when ``matmul`` is a plain MatMul (no fused activation) of an input by
    a constant 2-D weight whose output only an Add reads, with a constant other operand of
    the same dtype (the bias; its shape is the caller's to check) and no quantization
    parameters on either output; else None. FuseMatMulAddPass and FuseDensePass share it."""
    if matmul.op_type != "MatMul" or matmul.domain != "" \
            or matmul.meta.get("fused_activation") is not None:
        return None
    x, weight = matmul.inputs
    if x is None or x.rank is None or weight is None or weight.rank != 2 \
            or constant_data(weight) is None:
        return None
    product = matmul.output
    add = single_consumer(graph, product)
    if add is None or add.op_type != "Add" or add.domain != "" \
            or carries_quant(product, add.output):
        return None
    if add.inputs[0] is product and add.inputs[1] is not product:
        bias = add.inputs[1]
    elif add.inputs[1] is product and add.inputs[0] is not product:
        bias = add.inputs[0]
    else:
        return None
    if bias is None or constant_data(bias) is None or bias.dtype != product.dtype:
        return None
    return add, bias


def _gemm_bias(bias: Value, product: Value) -> bool:
    """Whether Gemm's C can take ``bias`` for this 2-D ``product``."""
    shape = bias.shape
    if shape is None or len(shape) > 2 or product.shape is None:
        return False
    padded = (1,) * (2 - len(shape)) + tuple(shape)
    # Each bias dim must be 1 or equal the product's: C broadcasts one way only.
    return all(got == 1 or got == want for got, want in zip(padded, product.shape,
                                                             strict=True))


__all__ = ["FuseMatMulAddPass", "matmul_bias_add"]
