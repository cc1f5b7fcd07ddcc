"""Reductions over axes: Sum, Mean, Max, Min (ONNX ReduceSum, ReduceMean, ...)."""

from __future__ import annotations

import numpy as np

from edgefw.ops.function import Function, register


def _lower_reduce(e, op_type: str, x, axis: tuple[int, ...], keepdims: bool):
    if not axis:
        return e.node("Identity", [x])
    return e.node(op_type, [x, e.ints(list(axis), "axes")], {"keepdims": int(keepdims)})


def _expand(g: np.ndarray, shape: tuple[int, ...], axis: tuple[int, ...], keepdims: bool):
    if not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, shape)


@register
class Sum(Function):
    def forward(self, x: np.ndarray, axis: tuple[int, ...] = (), keepdims: bool = False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return np.asarray(x.sum(axis=axis, keepdims=keepdims))

    def backward(self, g: np.ndarray) -> np.ndarray:
        return _expand(g, self.shape, self.axis, self.keepdims)

    def lower(self, e, x, axis=(), keepdims=False):
        return _lower_reduce(e, "ReduceSum", x, axis, keepdims)


@register
class Mean(Function):
    def forward(self, x: np.ndarray, axis: tuple[int, ...] = (), keepdims: bool = False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        self.count = int(np.prod([x.shape[a] for a in axis])) if axis else 1
        return np.asarray(x.mean(axis=axis, keepdims=keepdims))

    def backward(self, g: np.ndarray) -> np.ndarray:
        return _expand(g / g.dtype.type(self.count), self.shape, self.axis, self.keepdims)

    def lower(self, e, x, axis=(), keepdims=False):
        return _lower_reduce(e, "ReduceMean", x, axis, keepdims)


class _Extremum(Function):
    """Max/Min: ties share the gradient equally (as numpy's amax and PyTorch's amax)."""

    reduce = staticmethod(np.max)
    onnx = "ReduceMax"

    def lower(self, e, x, axis=(), keepdims=False):
        return _lower_reduce(e, self.onnx, x, axis, keepdims)

    def forward(self, x: np.ndarray, axis: tuple[int, ...] = (), keepdims: bool = False):
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.out = np.asarray(self.reduce(x, axis=axis, keepdims=True))
        return self.out if keepdims else np.asarray(np.squeeze(self.out, axis=axis))

    def backward(self, g: np.ndarray) -> np.ndarray:
        mask = self.x == self.out
        count = mask.sum(axis=self.axis, keepdims=True)
        if not self.keepdims:
            g = np.expand_dims(g, self.axis)
        return (mask * (g / count)).astype(self.x.dtype, copy=False)


@register
class Max(_Extremum):
    reduce = staticmethod(np.max)


@register
class Min(_Extremum):
    reduce = staticmethod(np.min)
    onnx = "ReduceMin"
