"""Batch-parallel execution: may a graph run as independent slices of its batch?

With two or more threads, a session runs a big batch as one slice per thread, each slice
through its own plan on its own thread (numpy releases the GIL inside BLAS calls, copies
and big ufunc loops), and writes the outputs into place. Every kernel then runs on one
thread with no hand-offs inside it. What it gains is bounded by the GIL: the Python
between numpy calls runs on one thread at a time, and a numpy call that releases the GIL
may have to wait for it back (see :meth:`BatchSplit.tiles`).

That is only correct when no op mixes samples. :func:`analyze` proves it op by op: it
follows the batch axis (the symbolic dim that every graph input has at axis 0) through
the graph — it may move (Transpose), but no op may reduce, normalize, contract, slice,
pad, concatenate or reshape across it — and refuses (returns None) anything it does not
know, e.g. DynamicQuantizeLinear, whose scale depends on the whole batch. Values computed
from the batch *size* (Shape -> Gather -> Concat chains feeding a Reshape) are allowed
where the Reshape is shown by its symbolic shapes to keep samples apart.

>>> import numpy as np
>>> from edgefw.ir import Graph
>>> g = Graph()
>>> x = g.add_input("x", "float32", ("batch", 8))
>>> fc = g.add_node("Gemm", [x, np.ones((4, 8), np.float32)], {"transB": 1})
>>> g.set_outputs([g.add_node("Softmax", [fc.output], {"axis": -1}).output])
>>> analyze(g) is not None
True
>>> g2 = Graph()
>>> x2 = g2.add_input("x", "float32", ("batch", 8))
>>> g2.set_outputs([g2.add_node("Softmax", [x2], {"axis": 0}).output])
>>> analyze(g2) is None
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgefw.ir import Graph, Node
from edgefw.ir.graph import constant_data

__all__ = ["BatchSplit", "MIN_TILE", "SPLIT_MIN_WORK", "analyze"]

#: Split a run only when batch x per-sample work (multiply-adds, or values written by ops
#: without a reduction) is at least this: below ~0.5 ms a hand-off is not worth it.
SPLIT_MIN_WORK = 1 << 22
#: Tiles hold at least this many samples each.
MIN_TILE = 8

_ELEMENTWISE = frozenset({
    "Abs", "Acos", "Acosh", "Add", "And", "Asin", "Asinh", "Atan", "Atanh", "BitShift",
    "Cast", "CastLike", "Ceil", "Celu", "Clip", "Cos", "Cosh", "Div", "Dropout", "Elu",
    "Equal", "Erf", "Exp", "Floor", "Gelu", "Greater", "GreaterOrEqual", "HardSigmoid",
    "HardSwish", "Identity", "IsInf", "IsNaN", "LeakyRelu", "Less", "LessOrEqual", "Log",
    "Max", "Mean", "Min", "Mish", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "PRelu",
    "QAdd", "Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid", "Sign", "Sin",
    "Sinh", "Softplus", "Softsign", "Sqrt", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu",
    "Where", "Xor",
})
# Ops over (N, C, spatial...) that treat each sample alone: input 0 batched at axis 0,
# every other input independent of the batch.
_PER_SAMPLE = frozenset({
    "AveragePool", "BatchNormalization", "Conv", "ConvInteger", "ConvTranspose",
    "DepthToSpace", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool",
    "InstanceNormalization", "LpPool", "LRN", "MaxPool", "QAveragePool", "QConv",
    "QDynamicConv",  # quantizes each image on its own
    "QGlobalAveragePool", "QLinearConv", "SpaceToDepth",
})
# Products whose second operand is a weight: the batch must not be the contracted axis.
# (QDynamicGemm quantizes each row of its input on its own, TFLite's dynamic range.)
_MATMUL = frozenset({"Dense", "MatMul", "MatMulInteger", "QBatchMatMul", "QDynamicGemm",
                     "QGemm", "QLinearMatMul"})
_REDUCE = frozenset({
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
})
# Ops through which a value computed from the batch size may flow on its way to Reshape.
_SHAPE_ARITHMETIC = frozenset({
    "Add", "Cast", "Concat", "Div", "Gather", "Identity", "Mul", "Slice", "Squeeze", "Sub",
    "Unsqueeze",
})
_FREE, _META = "free", "meta"  # independent of the batch / computed from its size


class _Refused(Exception):
    """The graph cannot be split (the message says where and why)."""


@dataclass(frozen=True)
class BatchSplit:
    """How to split runs of one graph: its inputs and outputs all carry the batch at
    axis 0; ``work_per_sample`` estimates multiply-adds per sample (None if unknown)."""

    work_per_sample: int | None

    def tiles(self, batch: int, workers: int) -> list[tuple[int, int]] | None:
        """``(start, stop)``: one tile of the batch per worker, in sizes that differ by at
        most one, or None when this run is too small to split.

        One big tile each, not many cache-sized ones: every numpy call a tile makes may
        hand the GIL to the other thread, and on the 2-core machine tiles of 8-16 images
        (MobileNet, LeNet) ran 1.3-1.4x *slower* than no split at all, small in-cache
        ufuncs on two threads 2x slower than on one.
        """
        if workers < 2 or batch < workers * MIN_TILE:
            return None
        if batch * (self.work_per_sample or 0) < SPLIT_MIN_WORK:
            return None
        bounds = [batch * k // workers for k in range(workers + 1)]
        return list(zip(bounds, bounds[1:]))


def analyze(graph: Graph) -> BatchSplit | None:
    """A :class:`BatchSplit` when ``graph`` provably computes every sample of its batch on
    its own (see the module docs), else None."""
    try:
        return _Analysis(graph).run()
    except _Refused:
        return None


class _Analysis:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.symbol = None
        self.state: dict[int, object] = {}  # value id -> batch axis (int), _FREE or _META
        self.work = 0
        self.work_known = True

    # -------------------------------------------------------------------- driver
    def run(self) -> BatchSplit:
        g = self.graph
        if not g.inputs or not g.outputs:
            raise _Refused("no inputs or outputs")
        first = g.inputs[0].shape
        if not first or not isinstance(first[0], str):
            raise _Refused("the first input has no symbolic batch dim at axis 0")
        self.symbol = first[0]
        for v in g.inputs:
            self.state[id(v)] = self._axis_of(v, expect=0)
        for node in g.nodes:
            self._visit(node)
        for v in g.outputs:
            if self.state.get(id(v), _FREE) != 0:
                raise _Refused(f"output {v.name} does not carry the batch at axis 0")
        return BatchSplit(self.work if self.work_known else None)

    def _axis_of(self, value, expect: int | None = None) -> int:
        """Where the batch symbol sits in ``value``'s shape (exactly once)."""
        shape = value.shape
        if shape is None:
            raise _Refused(f"{value.name}: unknown rank")
        places = [i for i, d in enumerate(shape) if d == self.symbol]
        if len(places) != 1 or (expect is not None and places[0] != expect):
            raise _Refused(f"{value.name}: batch symbol not found once in {shape}")
        return places[0]

    def _kind(self, value) -> object:
        if value is None or constant_data(value) is not None:
            return _FREE
        return self.state.get(id(value), _FREE)

    def _visit(self, node: Node) -> None:
        kinds = [self._kind(v) for v in node.inputs]
        batched = [k for k in kinds if isinstance(k, int)]
        if not batched:
            meta = any(k == _META for k in kinds)
            if meta and node.op_type not in _SHAPE_ARITHMETIC:
                raise _Refused(f"{node.name}: {node.op_type} of a batch-size value")
            for out in node.outputs:
                if out is not None:
                    self.state[id(out)] = _META if meta else _FREE
            return
        if any(k == _META for k in kinds) and node.op_type != "Reshape":
            raise _Refused(f"{node.name}: batch-size value in {node.op_type}")
        if node.op_type in ("Shape", "Size"):
            self.state[id(node.outputs[0])] = _META
            return
        check = _RULES.get(node.op_type)
        if check is None:
            if node.op_type in _ELEMENTWISE:
                check = _elementwise
            elif node.op_type in _PER_SAMPLE:
                check = _per_sample
            elif node.op_type in _MATMUL:
                check = _matmul
            elif node.op_type in _REDUCE:
                check = _reduce
            else:
                raise _Refused(f"{node.name}: {node.op_type} is not known to keep samples apart")
        check(self, node, kinds)
        for out in node.outputs:
            if out is not None:
                self.state[id(out)] = self._axis_of(out)
        self._count_work(node, kinds)

    def _count_work(self, node: Node, kinds: list) -> None:
        out = node.outputs[0]
        shape = out.shape or ()
        per_sample = [d for d in shape if d != self.symbol]
        if not all(isinstance(d, int) for d in per_sample):
            self.work_known = False
            return
        values = math.prod(per_sample)
        depth = 1
        if node.op_type in ("Conv", "QConv", "ConvInteger", "QLinearConv"):
            w = node.inputs[3 if node.op_type == "QLinearConv" else 1]
            depth = math.prod(w.shape[1:]) if w.shape and all(
                isinstance(d, int) for d in w.shape[1:]) else 1
        elif node.op_type in _MATMUL or node.op_type == "Gemm":
            a = node.inputs[0].shape
            if a and isinstance(a[-1], int):
                depth = a[-1]
        self.work += values * depth


# ------------------------------------------------------------------------ rules
def _int_attr(node: Node, name: str, rank: int) -> int:
    axis = int(node.attr(name))
    return axis + rank if axis < 0 else axis


def _rank(node: Node, i: int = 0) -> int:
    shape = node.inputs[i].shape
    if shape is None:
        raise _Refused(f"{node.name}: input {i} has unknown rank")
    return len(shape)


def _only_first_batched(node: Node, kinds: list, axis: int | None = 0) -> int:
    """Input 0 is batched (at ``axis`` when given) and no other input is."""
    if not isinstance(kinds[0], int) or any(isinstance(k, int) for k in kinds[1:]):
        raise _Refused(f"{node.name}: batch in an operand other than the first")
    if axis is not None and kinds[0] != axis:
        raise _Refused(f"{node.name}: batch not at axis {axis}")
    return kinds[0]


def _elementwise(an: _Analysis, node: Node, kinds: list) -> None:
    rank = len(node.outputs[0].shape or ())
    places = set()
    for v, k in zip(node.inputs, kinds, strict=True):
        if v is None:
            continue
        shape = v.shape
        if shape is None:
            raise _Refused(f"{node.name}: operand of unknown rank")
        if isinstance(k, int):
            places.add(k + rank - len(shape))
    if len(places) != 1:
        raise _Refused(f"{node.name}: batch axes do not line up")
    place = places.pop()
    for v, k in zip(node.inputs, kinds, strict=True):
        if v is None or isinstance(k, int):
            continue
        at = place - (rank - len(v.shape))
        if at >= 0 and v.shape[at] != 1:
            raise _Refused(f"{node.name}: {v.name} spans the batch axis")


def _per_sample(an: _Analysis, node: Node, kinds: list) -> None:
    _only_first_batched(node, kinds)
    if node.op_type == "BatchNormalization" and (
            len([o for o in node.outputs if o is not None]) > 1
            or int(node.attrs.get("training_mode", 0))):
        raise _Refused(f"{node.name}: BatchNormalization in training mode")


def _gemm(an: _Analysis, node: Node, kinds: list) -> None:
    _only_first_batched(node, kinds)
    if int(node.attrs.get("transA", 0)):
        raise _Refused(f"{node.name}: Gemm with transA")


def _matmul(an: _Analysis, node: Node, kinds: list) -> None:
    a_rank = _rank(node, 0)
    b_index = {"QLinearMatMul": 3}.get(node.op_type, 1)
    b_kind = kinds[b_index]
    b_rank = _rank(node, b_index)
    a_kind = kinds[0]
    others = [k for i, k in enumerate(kinds) if i not in (0, b_index)]
    if any(isinstance(k, int) for k in others):
        raise _Refused(f"{node.name}: batched quantization parameters")
    out_rank = max(a_rank, b_rank)
    if isinstance(a_kind, int):
        if a_rank < 2 or a_kind == a_rank - 1:
            raise _Refused(f"{node.name}: batch on the contracted axis")
        if a_kind == a_rank - 2:  # batch in the rows: the other operand must be shared
            if isinstance(b_kind, int):
                raise _Refused(f"{node.name}: both operands batched in rows")
            return
    if isinstance(b_kind, int):
        if b_rank < 2 or b_kind == b_rank - 2:
            raise _Refused(f"{node.name}: batch on the contracted axis")
        if b_kind == b_rank - 1 and not isinstance(a_kind, int):
            return  # batch in the columns of the second operand
    # the batch is a broadcast (stacking) axis: line the operands up
    operands = [(a_kind, node.inputs[0].shape), (b_kind, node.inputs[b_index].shape)]
    places = {k + out_rank - len(s) for k, s in operands if isinstance(k, int)}
    if len(places) != 1:
        raise _Refused(f"{node.name}: batch axes of the operands do not line up")
    place = places.pop()
    if place >= out_rank - 2:
        raise _Refused(f"{node.name}: batch axes of the operands do not line up")
    for kind, shape in operands:
        at = place - (out_rank - len(shape))
        if not isinstance(kind, int) and at >= 0 and shape[at] != 1:
            raise _Refused(f"{node.name}: a shared operand spans the batch axis")


def _softmax(an: _Analysis, node: Node, kinds: list) -> None:
    batch = _only_first_batched(node, kinds, axis=None)
    rank = _rank(node)
    axis = _int_attr(node, "axis", rank)
    if an.graph.opset < 13 or node.op_type == "LayerNormalization":
        ok = batch < axis  # the op normalizes everything from `axis` on
    else:
        ok = batch != axis
    if not ok:
        raise _Refused(f"{node.name}: {node.op_type} over the batch axis")


def _reduce(an: _Analysis, node: Node, kinds: list) -> None:
    batch = _only_first_batched(node, kinds, axis=None)
    rank = _rank(node)
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1] is not None:
        data = constant_data(node.inputs[1])
        if data is None:
            raise _Refused(f"{node.name}: axes not constant")
        axes = data.tolist()
    if axes is None or len(axes) == 0:
        if int(node.attrs.get("noop_with_empty_axes", 0)):
            return
        raise _Refused(f"{node.name}: reduces every axis")
    if batch in {a + rank if a < 0 else a for a in axes}:
        raise _Refused(f"{node.name}: reduces the batch axis")


def _axis_attr_not_batch(an: _Analysis, node: Node, kinds: list) -> None:
    batch = _only_first_batched(node, kinds, axis=None)
    if _int_attr(node, "axis", _rank(node)) == batch:
        raise _Refused(f"{node.name}: {node.op_type} along the batch axis")


def _concat(an: _Analysis, node: Node, kinds: list) -> None:
    if not all(isinstance(k, int) for k in kinds) or len(set(kinds)) != 1:
        raise _Refused(f"{node.name}: concatenates batched and shared values")
    if _int_attr(node, "axis", _rank(node)) == kinds[0]:
        raise _Refused(f"{node.name}: concatenates along the batch axis")


def _rearrange(an: _Analysis, node: Node, kinds: list) -> None:
    """Transpose, Squeeze, Unsqueeze, Identity-like: the batch moves, never merges (the
    output's batch axis is found from its shape)."""
    _only_first_batched(node, kinds, axis=None)


def _reshape(an: _Analysis, node: Node, kinds: list) -> None:
    batch = _only_first_batched(node, kinds, axis=None)
    src, dst = node.inputs[0].shape, node.outputs[0].shape
    out_axis = an._axis_of(node.outputs[0])
    before_in, before_out = src[:batch], dst[:out_axis]
    if not all(isinstance(d, int) for d in (*before_in, *before_out)) \
            or math.prod(before_in) != math.prod(before_out):
        raise _Refused(f"{node.name}: Reshape {src} -> {dst} mixes the batch")


def _flatten(an: _Analysis, node: Node, kinds: list) -> None:
    batch = _only_first_batched(node, kinds, axis=None)
    rank = _rank(node)
    axis = _int_attr(node, "axis", rank) if rank else 0
    before = node.inputs[0].shape[:batch]
    if batch >= axis or not all(d == 1 for d in before):
        raise _Refused(f"{node.name}: Flatten merges the batch")


def _slice(an: _Analysis, node: Node, kinds: list) -> None:
    batch = _only_first_batched(node, kinds, axis=None)
    rank = _rank(node)
    parts = [None if i >= len(node.inputs) or node.inputs[i] is None
             else constant_data(node.inputs[i]) for i in range(1, 5)]
    if parts[0] is None or parts[1] is None:
        raise _Refused(f"{node.name}: Slice bounds not constant")
    axes = list(range(len(parts[0]))) if parts[2] is None else parts[2].tolist()
    if batch in {a + rank if a < 0 else a for a in axes}:
        raise _Refused(f"{node.name}: Slice along the batch axis")


def _gather(an: _Analysis, node: Node, kinds: list) -> None:
    if not isinstance(kinds[0], int) and isinstance(kinds[1], int):
        return  # a shared table indexed per sample (an embedding lookup)
    _axis_attr_not_batch(an, node, kinds)


def _pad(an: _Analysis, node: Node, kinds: list) -> None:
    batch = _only_first_batched(node, kinds, axis=None)
    rank = _rank(node)
    pads = node.attrs.get("pads")
    if pads is None:
        data = constant_data(node.inputs[1]) if len(node.inputs) > 1 else None
        if data is None:
            raise _Refused(f"{node.name}: pads not constant")
        pads = data.tolist()
    axes = list(range(rank))
    if len(node.inputs) > 3 and node.inputs[3] is not None:
        data = constant_data(node.inputs[3])
        if data is None:
            raise _Refused(f"{node.name}: axes not constant")
        axes = [a + rank if a < 0 else a for a in data.tolist()]
    if batch in axes:
        k = axes.index(batch)
        if pads[k] or pads[k + len(axes)]:
            raise _Refused(f"{node.name}: pads the batch axis")


def _quantize(an: _Analysis, node: Node, kinds: list) -> None:
    batch = _only_first_batched(node, kinds, axis=None)
    scale = node.inputs[1].shape if len(node.inputs) > 1 and node.inputs[1] is not None else ()
    if scale and math.prod(d if isinstance(d, int) else 2 for d in scale) != 1:
        if node.attrs.get("block_size"):
            raise _Refused(f"{node.name}: blocked quantization")
        if _int_attr(node, "axis", _rank(node)) == batch:
            raise _Refused(f"{node.name}: quantization parameters per batch element")


def _tile(an: _Analysis, node: Node, kinds: list) -> None:
    batch = _only_first_batched(node, kinds, axis=None)
    repeats = constant_data(node.inputs[1])
    if repeats is None or int(repeats.reshape(-1)[batch]) != 1:
        raise _Refused(f"{node.name}: Tile repeats the batch")


_RULES = {
    "ArgMax": _axis_attr_not_batch, "ArgMin": _axis_attr_not_batch,
    "Concat": _concat, "DequantizeLinear": _quantize, "Flatten": _flatten,
    "Gather": _gather, "Gemm": _gemm, "Hardmax": _softmax,
    "LayerNormalization": _softmax, "LogSoftmax": _softmax, "Pad": _pad,
    "QuantizeLinear": _quantize, "Reshape": _reshape, "Slice": _slice, "Softmax": _softmax,
    "Split": _axis_attr_not_batch, "Squeeze": _rearrange, "Tile": _tile,
    "Transpose": _rearrange, "Unsqueeze": _rearrange,
}
