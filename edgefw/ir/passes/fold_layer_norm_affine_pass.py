"""FoldLayerNormAffinePass: move a LayerNorm's scale and bias into the Dense or Gemm that
reads it.

Matches a float ``LayerNormalization`` over the last axis with constant ``scale`` (and
optional constant ``bias``) whose output is read only by an edgefw ``Dense`` (``x @ W + c``)
or a ``Gemm`` (``x @ W`` or ``x @ W.T``, ``alpha = beta = 1``, constant weight and bias).
Since ``(n * s + b) @ W + c = n @ (s[:, None] * W) + (b @ W + c)``, the weight's rows are
scaled by ``s``, the bias becomes ``b @ W + c`` (computed in float64), and the LayerNorm keeps
a scale of ones and no bias, which its CPU kernel skips: two fewer numpy calls per
LayerNorm (a pre-norm transformer block has two, ~1.5 us each at batch 1). The LayerNorm's
output is then the normalized value only, so the pass requires that nothing else reads it.

Runtime-only (it runs after :class:`~edgefw.ir.passes.FuseDensePass` on the session's copy
of a graph). Values carrying quantization parameters are left alone.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 16, 8))
    >>> ln = g.add_node("LayerNormalization", [x, np.full(8, 2, np.float32),
    ...                 np.ones(8, np.float32)], {"axis": -1}, name="norm")
    >>> d = g.add_node("Dense", [ln.output, np.ones((8, 4), np.float32),
    ...                np.zeros(4, np.float32)], domain="edgefw", name="fc")
    >>> g.set_outputs([d.output])
    >>> FoldLayerNormAffinePass().run(g).changed, len(ln.inputs), float(d.inputs[2].data[0])
    (True, 2, 8.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import Pass, PassResult, carries_quant, single_consumer

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node


class FoldLayerNormAffinePass(Pass):
    name = "fold_layer_norm_affine"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for ln in list(graph.nodes):
            if ln.op_type != "LayerNormalization" or ln.domain != "" or len(ln.outputs) != 1:
                continue
            x = ln.inputs[0]
            if x is None or x.rank is None or x.dtype not in FLOAT_DTYPES:
                continue
            if int(ln.attr("axis")) not in (-1, x.rank - 1):
                continue
            scale = constant_data(ln.inputs[1])
            bias = constant_data(ln.inputs[2]) if len(ln.inputs) > 2 and ln.inputs[2] \
                is not None else None
            if scale is None or (len(ln.inputs) > 2 and ln.inputs[2] is not None
                                 and bias is None):
                continue
            if scale.ndim != 1 or (bias is not None and bias.shape != scale.shape):
                continue
            if np.all(scale == 1) and (bias is None or not np.any(bias)):
                if len(ln.inputs) > 2 and ln.inputs[2] is not None:  # a zero bias: drop it
                    ln.inputs = [x, ln.inputs[1]]
                    notes.append(f"dropped {ln.describe()}'s zero bias")
                continue
            consumer = single_consumer(graph, ln.output)
            if consumer is None or carries_quant(ln.output):
                continue
            folded = _fold_into(graph, consumer, ln, scale, bias)
            if folded:
                ones = graph.add_constant(graph.unique_value_name(f"{ln.name}.unit_scale"),
                                          np.ones_like(scale))
                ln.inputs = [x, ones]
                notes.append(f"folded {ln.describe()}'s scale and bias into "
                             f"{consumer.describe()}")
        return PassResult.from_notes(notes)


def _fold_into(graph: Graph, node: Node, ln: Node, scale: np.ndarray,
               bias: np.ndarray | None) -> bool:
    """Rewrite ``node``'s weight and bias for the folded affine; False if it does not fit."""
    if node.op_type == "Dense" and node.domain == "edgefw":
        transposed, weight_index, bias_index = False, 1, 2
    elif node.op_type == "Gemm" and node.domain == "":
        if int(node.attrs.get("transA", 0)) or float(node.attrs.get("alpha", 1.0)) != 1.0 \
                or float(node.attrs.get("beta", 1.0)) != 1.0:
            return False
        transposed, weight_index, bias_index = bool(int(node.attrs.get("transB", 0))), 1, 2
    else:
        return False
    if node.inputs[0] is not ln.output or node.inputs[weight_index] is ln.output:
        return False
    w = constant_data(node.inputs[weight_index])
    if w is None or w.ndim != 2:
        return False
    old_bias = None
    if len(node.inputs) > bias_index and node.inputs[bias_index] is not None:
        old_bias = constant_data(node.inputs[bias_index])
        if old_bias is None:
            return False
    w_kn = w.T if transposed else w
    n = w_kn.shape[1]
    if w_kn.shape[0] != scale.shape[0] or (old_bias is not None and old_bias.size not in (1, n)):
        return False
    new_w = (w_kn.astype(np.float64) * scale.astype(np.float64)[:, None]).astype(w.dtype)
    new_bias = np.zeros(n, np.float64) if old_bias is None \
        else np.broadcast_to(old_bias.astype(np.float64).reshape(-1), (n,)).copy()
    if bias is not None:
        new_bias += bias.astype(np.float64) @ w_kn.astype(np.float64)
    inputs = list(node.inputs)
    inputs[weight_index] = graph.add_constant(
        graph.unique_value_name(f"{node.inputs[weight_index].name}.ln_scaled"),
        np.ascontiguousarray(new_w.T if transposed else new_w))
    bias_value = graph.add_constant(graph.unique_value_name(f"{node.name}.ln_bias"),
                                    new_bias.astype(w.dtype))
    if len(inputs) > bias_index:
        inputs[bias_index] = bias_value
    else:
        inputs.append(bias_value)
    node.inputs = inputs
    return True


__all__ = ["FoldLayerNormAffinePass"]
