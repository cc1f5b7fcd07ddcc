"""numpy evaluation of the ops that constant folding meets: shape arithmetic, casts, data
movement and cheap elementwise math, with ONNX semantics.

The IR package may not import the runtime (the runtime imports the IR), so
:class:`~edgefw.ir.passes.FoldConstantsPass` evaluates with these few-line functions instead
of the CPU kernels. Each takes the node and its input arrays (None for an omitted optional
input) and returns the output arrays.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> node = g.add_node("Unsqueeze", [np.array(3), np.array([0])])
    >>> evaluate(node, [np.array(3), np.array([0])])
    [array([3])]

An op without an evaluator is simply not folded (:func:`can_evaluate`); quantization ops
are deliberately absent, so folding never dequantizes the weights of a QDQ graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from edgefw.errors import UnsupportedOpError
from edgefw.ir.dtypes import from_onnx, to_numpy
from edgefw.ir.primitives.special import erf
from edgefw.ir.schema.dims import normalize_axis
from edgefw.ir.schema.reduce import reduced_axes
from edgefw.ir.schema.tensor import constant_value, shape_op_range, slice_bounds

if TYPE_CHECKING:
    from edgefw.ir.graph import Node

Arrays = list[np.ndarray | None]
Evaluator = Callable[["Node", Arrays], list[np.ndarray]]

_EVALUATORS: dict[str, Evaluator] = {}


def _evaluates(*op_types: str) -> Callable[[Evaluator], Evaluator]:
    def register(fn: Evaluator) -> Evaluator:
        for op in op_types:
            _EVALUATORS[op] = fn
        return fn

    return register


def can_evaluate(node: Node) -> bool:
    """True when ``node``'s op has an evaluator here."""
    return node.domain == "" and node.op_type in _EVALUATORS


def evaluated_ops() -> list[str]:
    """Sorted op types constant folding can evaluate."""
    return sorted(_EVALUATORS)


def evaluate(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """The outputs of ``node`` on constant ``inputs``, as arrays of the node's output dtypes.

    numpy errors (an index out of range...) propagate; the folding pass then leaves the node
    for the runtime, which reports it naming the node.
    """
    if not can_evaluate(node):
        raise UnsupportedOpError(f"cannot evaluate {node.describe()}; evaluable ops: "
                                 f"{', '.join(evaluated_ops())}")
    with np.errstate(all="ignore"):  # inf/nan follow IEEE, as the kernels' do
        results = _EVALUATORS[node.op_type](node, inputs)
    out = []
    for value, array in zip(node.outputs, results, strict=False):
        array = np.asarray(array)
        if value.dtype is not None and array.dtype != to_numpy(value.dtype):
            array = array.astype(to_numpy(value.dtype))
        out.append(array)
    return out


def _ints(array: np.ndarray | None) -> list[int]:
    return [] if array is None else [int(v) for v in np.asarray(array).reshape(-1)]


# ------------------------------------------------------------------- data movement
@_evaluates("Identity")
def _identity(node: Node, x: Arrays) -> list[np.ndarray]:
    return [x[0]]


@_evaluates("Constant")
def _constant(node: Node, x: Arrays) -> list[np.ndarray]:
    return [constant_value(dict(node.attrs))]


@_evaluates("Cast")
def _cast(node: Node, x: Arrays) -> list[np.ndarray]:
    return [x[0].astype(to_numpy(from_onnx(node.attr("to"))))]


@_evaluates("Shape")
def _shape(node: Node, x: Arrays) -> list[np.ndarray]:
    start, end = shape_op_range(x[0].ndim, node.attr("start"), node.attr("end"))
    return [np.array(x[0].shape[start:end], dtype=np.int64)]


@_evaluates("Gather")
def _gather(node: Node, x: Arrays) -> list[np.ndarray]:
    data, indices = x[0], x[1]
    axis = normalize_axis(int(node.attr("axis")), data.ndim, "Gather axis")
    size = data.shape[axis]
    if indices.size and (indices.min() < -size or indices.max() >= size):
        raise IndexError(f"Gather indices {indices.tolist()} out of range for axis size {size}")
    return [np.take(data, np.where(indices < 0, indices + size, indices), axis=axis)]


@_evaluates("Unsqueeze")
def _unsqueeze(node: Node, x: Arrays) -> list[np.ndarray]:
    rank = x[0].ndim + len(_ints(x[1]))
    axes = sorted(normalize_axis(a, rank, "Unsqueeze axis") for a in _ints(x[1]))
    return [np.expand_dims(x[0], tuple(axes))]


@_evaluates("Squeeze")
def _squeeze(node: Node, x: Arrays) -> list[np.ndarray]:
    if len(x) > 1 and x[1] is not None:
        axes = tuple(normalize_axis(a, x[0].ndim, "Squeeze axis") for a in _ints(x[1]))
        return [np.squeeze(x[0], axis=axes)]
    return [np.squeeze(x[0])]


@_evaluates("Concat")
def _concat(node: Node, x: Arrays) -> list[np.ndarray]:
    return [np.concatenate(x, axis=int(node.attr("axis")))]


@_evaluates("Reshape")
def _reshape(node: Node, x: Arrays) -> list[np.ndarray]:
    target = _ints(x[1])
    if not node.attr("allowzero"):
        target = [x[0].shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [x[0].reshape(target)]


@_evaluates("Flatten")
def _flatten(node: Node, x: Arrays) -> list[np.ndarray]:
    axis = int(node.attr("axis"))
    axis = axis + x[0].ndim if axis < 0 else axis
    outer = int(np.prod(x[0].shape[:axis], dtype=np.int64))
    inner = int(np.prod(x[0].shape[axis:], dtype=np.int64))
    return [x[0].reshape(outer, inner)]


@_evaluates("Transpose")
def _transpose(node: Node, x: Arrays) -> list[np.ndarray]:
    perm = node.attr("perm")
    return [np.transpose(x[0], None if perm is None else list(perm))]


@_evaluates("Slice")
def _slice(node: Node, x: Arrays) -> list[np.ndarray]:
    data = x[0]
    starts, ends = _ints(x[1]), _ints(x[2])
    axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
    steps = _ints(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        a = normalize_axis(axis, data.ndim, "Slice axis")
        lo, hi = slice_bounds(start, end, step, data.shape[a])
        # slice_bounds gives -1 for "before index 0" when stepping backwards; Python would
        # read -1 as the last element.
        index[a] = slice(lo, None if hi < 0 else hi, step)
    return [data[tuple(index)]]


@_evaluates("Expand")
def _expand(node: Node, x: Arrays) -> list[np.ndarray]:
    shape = np.broadcast_shapes(x[0].shape, tuple(_ints(x[1])))
    return [np.broadcast_to(x[0], shape).copy()]


@_evaluates("Where")
def _where(node: Node, x: Arrays) -> list[np.ndarray]:
    return [np.where(x[0], x[1], x[2])]


# --------------------------------------------------------------------- arithmetic
_BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Equal": np.equal,
    "Less": np.less,
    "Greater": np.greater,
}


@_evaluates(*_BINARY)
def _binary(node: Node, x: Arrays) -> list[np.ndarray]:
    return [_BINARY[node.op_type](x[0], x[1])]


@_evaluates("Div")
def _div(node: Node, x: Arrays) -> list[np.ndarray]:
    a, b = x[0], x[1]
    if a.dtype.kind in "iu":
        if np.any(b == 0):
            raise ZeroDivisionError("integer Div by zero")
        # ONNX integer division truncates toward zero; numpy's // floors.
        q = np.abs(a) // np.abs(b)
        return [np.where((a < 0) != (b < 0), -q, q).astype(a.dtype)]
    return [a / b]


@_evaluates("Pow")
def _pow(node: Node, x: Arrays) -> list[np.ndarray]:
    base, exponent = x[0], x[1]
    if base.dtype.kind in "iu" and np.any(exponent < 0):
        raise ValueError("integer Pow with a negative exponent")
    return [np.power(base, exponent.astype(base.dtype))]


@_evaluates("MatMul")
def _matmul(node: Node, x: Arrays) -> list[np.ndarray]:
    return [np.matmul(x[0], x[1])]


_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Neg": np.negative,
    "Abs": np.abs,
    "Sqrt": np.sqrt,
    "Reciprocal": np.reciprocal,
    "Exp": np.exp,
    "Log": np.log,
    "Tanh": np.tanh,
    "Not": np.logical_not,
    "Relu": lambda v: np.maximum(v, np.zeros((), v.dtype)),
    "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "Erf": erf,
}


@_evaluates(*_UNARY)
def _unary(node: Node, x: Arrays) -> list[np.ndarray]:
    return [_UNARY[node.op_type](x[0])]


@_evaluates("Clip")
def _clip(node: Node, x: Arrays) -> list[np.ndarray]:
    out = x[0]
    if len(x) > 1 and x[1] is not None:
        out = np.maximum(out, x[1].reshape(()))
    if len(x) > 2 and x[2] is not None:
        out = np.minimum(out, x[2].reshape(()))
    return [out]


_REDUCE = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max, "ReduceMin": np.min}


@_evaluates(*_REDUCE)
def _reduce(node: Node, x: Arrays) -> list[np.ndarray]:
    data = x[0]
    axes = _ints(x[1]) if len(x) > 1 else []
    reduced = reduced_axes(data.ndim, axes, int(node.attr("noop_with_empty_axes")))
    if not reduced:
        return [data]
    return [_REDUCE[node.op_type](data, axis=tuple(reduced),
                                  keepdims=bool(node.attr("keepdims")))]


__all__ = ["can_evaluate", "evaluate", "evaluated_ops"]
