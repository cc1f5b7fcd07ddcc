"""Comparisons: Less, LessOrEqual, Greater, GreaterOrEqual, Equal (boolean, no gradient)."""

from __future__ import annotations

import numpy as np

from edgefw.ops.function import Function, register


class _Compare(Function):
    differentiable = False
    onnx = ""

    def backward(self, g: np.ndarray):
        return None, None

    def lower(self, e, a, b):
        return e.node(self.onnx, [a, b])


@register
class Less(_Compare):
    onnx = "Less"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.less(a, b)


@register
class Greater(_Compare):
    onnx = "Greater"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.greater(a, b)


@register
class Equal(_Compare):
    onnx = "Equal"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.equal(a, b)


@register
class LessOrEqual(_Compare):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.less_equal(a, b)

    def lower(self, e, a, b):  # not(a > b), with ops every opset has
        return e.node("Not", [e.node("Greater", [a, b])])


@register
class GreaterOrEqual(_Compare):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.greater_equal(a, b)

    def lower(self, e, a, b):
        return e.node("Not", [e.node("Less", [a, b])])
