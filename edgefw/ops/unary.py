"""Elementwise math: Neg, Exp, Log, Sqrt, Abs, Tanh, Sigmoid, Cast."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefw.ir.dtypes import to_onnx
from edgefw.ops.function import Function, SameOpLowering, register


@register
class Neg(SameOpLowering, Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        return -x

    def backward(self, g: np.ndarray) -> np.ndarray:
        return -g


@register
class Exp(SameOpLowering, Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.exp(x)
        return self.out

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * self.out


@register
class Log(SameOpLowering, Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.log(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g / self.x


@register
class Sqrt(SameOpLowering, Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.sqrt(x)
        return self.out

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g / (2 * self.out)


@register
class Abs(SameOpLowering, Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.abs(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * np.sign(self.x)


@register
class Tanh(SameOpLowering, Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.tanh(x)
        return self.out

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * (1 - self.out * self.out)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow for large |x|."""
    return 0.5 * (np.tanh(0.5 * x) + 1)


@register
class Sigmoid(SameOpLowering, Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = sigmoid(x)
        return self.out

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * self.out * (1 - self.out)


@register
class Cast(Function):
    def forward(self, x: np.ndarray, dtype: Any) -> np.ndarray:
        self.src = x.dtype
        return x.astype(dtype)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g.astype(self.src)

    def lower(self, e, x, dtype):
        return e.node("Cast", [x], {"to": to_onnx(np.dtype(dtype).name)})
