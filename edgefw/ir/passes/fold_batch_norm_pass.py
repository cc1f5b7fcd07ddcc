"""FoldBatchNormPass: fold inference BatchNormalization into the Conv, Gemm or MatMul that
feeds it.

Inference BatchNorm is a per-channel affine map ``y = x * s + t`` with
``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s``. When ``x`` comes from a linear
op with constant weights, scaling the weights' output channels by ``s`` and adding ``t``
to the bias gives the same result with one op fewer:

- ``Conv`` (any group count: grouped and depthwise convs have their output channels on
  weight axis 0 too), with or without a bias: ``W' = W * s[:, None...]``,
  ``b' = b * s + t``;
- ``Gemm`` (``transB`` 0 or 1, with or without C): B's output columns scaled by ``s``,
  ``C' = beta * C * s + t`` and ``beta`` reset to 1;
- ``MatMul(x, W)`` with a constant 2-D ``W`` and a 2-D output: ``W' = W * s`` and the
  BatchNormalization becomes ``Add(·, t)`` (which FuseMatMulAddPass turns into a Gemm).

Conditions: every BatchNorm parameter and the weights (and bias, if any) are constants
without quantization parameters; the producer's output is read by the BatchNorm only and is
not a graph output (otherwise the unnormalized value is still needed); the producer has no
fused activation yet (BN(Relu(conv)) is not affine in conv); neither the producer's nor the
BatchNorm's output carries quantization parameters. Scales are computed in
float64 and stored in the weight dtype. New weights are named after the originals
(``features.0.conv.weight``; a ``_1`` suffix if the original is still read elsewhere).

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 3, 8, 8))
    >>> w = g.add_constant("conv.weight", np.ones((4, 3, 3, 3), np.float32))
    >>> conv = g.add_node("Conv", [x, w], name="conv").output
    >>> p = np.ones(4, np.float32)
    >>> bn = g.add_node("BatchNormalization", [conv, p, p * 0, p * 0, p * 4], name="bn")
    >>> g.set_outputs([bn.output])
    >>> FoldBatchNormPass().run(g).changed, [n.op_type for n in g.nodes]
    (True, ['Conv'])
    >>> round(float(g.constants["conv.weight"].data[0, 0, 0, 0]), 4)  # 1 / sqrt(4 + 1e-5)
    0.5
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

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


class FoldBatchNormPass(Pass):
    """Fold BatchNormalization into a preceding Conv, Gemm or MatMul with constant weights."""

    name = "fold_batch_norm"

    def run(self, graph: Graph) -> PassResult:
        notes: list[str] = []
        for bn in list(graph.nodes):
            if bn.op_type != "BatchNormalization" or bn.domain != "":
                continue
            producer = _foldable_producer(graph, bn)
            if producer is None:
                continue
            affine = _batch_norm_affine(bn)
            if affine is None:
                continue
            scale, shift = affine
            fold = _FOLDERS[producer.op_type]
            if not fold(graph, producer, bn, scale, shift):
                continue
            # A new tuple, not an append: graph copies share meta values.
            producer.meta["folded_batch_norm"] = (*producer.meta.get("folded_batch_norm", ()),
                                                  bn.name)
            notes.append(f"folded {bn.describe()} into {producer.describe()}")
        return PassResult.from_notes(notes)


def _foldable_producer(graph: Graph, bn: Node) -> Node | None:
    x = bn.inputs[0]
    producer = x.producer if x is not None else None
    if producer is None or producer.domain != "" or producer.op_type not in _FOLDERS:
        return None
    if "fused_activation" in producer.meta or single_consumer(graph, x) is not bn \
            or carries_quant(x, *bn.outputs):
        return None
    return producer


def _batch_norm_affine(bn: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """(s, t) in float64 with BN(x) = x * s + t per channel, or None if not all constant."""
    params = [constant_data(v) if v is not None else None for v in bn.inputs[1:5]]
    if any(p is None for p in params):
        return None
    gamma, beta, mean, var = (np.asarray(p, np.float64).reshape(-1) for p in params)
    scale = gamma / np.sqrt(var + float(bn.attr("epsilon")))
    return scale, beta - mean * scale


def _weight(node: Node, index: int) -> np.ndarray | None:
    """Constant data of input ``index`` unless it is absent or carries quantization params."""
    value = node.inputs[index] if index < len(node.inputs) else None
    if value is None or value.quant is not None:
        return None
    return constant_data(value)


def _fold_into_conv(graph: Graph, conv: Node, bn: Node, scale: np.ndarray,
                    shift: np.ndarray) -> bool:
    weight = _weight(conv, 1)
    if weight is None or weight.ndim < 3 or weight.shape[0] != scale.size:
        return False
    has_bias = len(conv.inputs) > 2 and conv.inputs[2] is not None
    bias = _weight(conv, 2) if has_bias else np.zeros(weight.shape[0])
    if bias is None:  # a computed bias cannot be rewritten here
        return False
    channel_scale = scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    new_weight = (weight.astype(np.float64) * channel_scale).astype(weight.dtype)
    new_bias = (bias.astype(np.float64) * scale + shift).astype(weight.dtype)
    bias_name = _bias_name(conv)  # before the weight is replaced (and maybe renamed)
    _set_constant_input(graph, conv, 1, new_weight, conv.inputs[1].name)
    _set_constant_input(graph, conv, 2, new_bias, bias_name)
    absorb_node(graph, bn, conv.output)
    return True


def _fold_into_gemm(graph: Graph, gemm: Node, bn: Node, scale: np.ndarray,
                    shift: np.ndarray) -> bool:
    b = _weight(gemm, 1)
    trans_b = bool(gemm.attr("transB"))
    if b is None or b.ndim != 2 or b.shape[0 if trans_b else 1] != scale.size:
        return False
    has_c = len(gemm.inputs) > 2 and gemm.inputs[2] is not None
    c = _weight(gemm, 2) if has_c else np.zeros(())
    if c is None:
        return False
    columns = scale[:, None] if trans_b else scale[None, :]
    new_b = (b.astype(np.float64) * columns).astype(b.dtype)
    new_c = (float(gemm.attr("beta")) * c.astype(np.float64) * scale + shift).astype(b.dtype)
    bias_name = _bias_name(gemm)
    _set_constant_input(graph, gemm, 1, new_b, gemm.inputs[1].name)
    _set_constant_input(graph, gemm, 2, new_c, bias_name)
    gemm.attrs.pop("beta", None)  # beta is now folded into C
    absorb_node(graph, bn, gemm.output)
    return True


def _fold_into_matmul(graph: Graph, matmul: Node, bn: Node, scale: np.ndarray,
                      shift: np.ndarray) -> bool:
    weight = _weight(matmul, 1)
    out = matmul.output
    # BatchNorm's channel axis is 1; it is MatMul's output-column axis only for 2-D outputs.
    if weight is None or weight.ndim != 2 or out.rank != 2 or weight.shape[1] != scale.size:
        return False
    new_weight = (weight.astype(np.float64) * scale[None, :]).astype(weight.dtype)
    bias_name = _bias_name(matmul)
    _set_constant_input(graph, matmul, 1, new_weight, matmul.inputs[1].name)
    shift_const = graph.add_constant(bias_name, shift.astype(weight.dtype))
    # The BatchNormalization node becomes the bias Add, keeping its name and output.
    bn.op_type = "Add"
    bn.inputs = [out, shift_const]
    bn.attrs = {}
    return True


_FOLDERS = {"Conv": _fold_into_conv, "Gemm": _fold_into_gemm, "MatMul": _fold_into_matmul}


def _bias_name(node: Node) -> str:
    """``features.0.conv.bias`` next to ``features.0.conv.weight``, else ``<node>.bias``."""
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        return node.inputs[2].name
    weight = node.inputs[1].name
    if weight.endswith("weight"):
        return weight[: -len("weight")] + "bias"
    return f"{node.name}.bias"


def _set_constant_input(graph: Graph, node: Node, index: int, array: np.ndarray,
                        name: str) -> Value:
    """Make input ``index`` of ``node`` a new constant holding ``array``, called ``name`` when
    the constant it replaces was read by this node only (that one is removed)."""
    old = node.inputs[index] if index < len(node.inputs) else None
    new = graph.add_constant(name, array, copy=False)
    if index < len(node.inputs):
        node.inputs[index] = new
    else:
        node.inputs.extend([None] * (index - len(node.inputs)))
        node.inputs.append(new)
    if (old is not None and graph.constants.get(old.name) is old and not graph.is_output(old)
            and not graph.consumers(old)):
        graph.remove_constant(old)
        if new.name != name and not graph.has_value(name):
            graph.rename_value(new, name)
    return new


__all__ = ["FoldBatchNormPass"]
