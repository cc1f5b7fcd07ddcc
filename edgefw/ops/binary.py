"""Broadcasting arithmetic: Add, Sub, Mul, Div, Pow (ONNX op types of the same names)."""

from __future__ import annotations

import numpy as np

from edgefw.ops.function import Function, SameOpLowering, register, unbroadcast


@register
class Add(SameOpLowering, Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, g: np.ndarray):
        ga, gb = self.needs_input_grad
        return (
            unbroadcast(g, self.shapes[0]) if ga else None,
            unbroadcast(g, self.shapes[1]) if gb else None,
        )


@register
class Sub(SameOpLowering, Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, g: np.ndarray):
        ga, gb = self.needs_input_grad
        return (
            unbroadcast(g, self.shapes[0]) if ga else None,
            unbroadcast(-g, self.shapes[1]) if gb else None,
        )


@register
class Mul(SameOpLowering, Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a * b

    def backward(self, g: np.ndarray):
        ga, gb = self.needs_input_grad
        return (
            unbroadcast(g * self.b, self.a.shape) if ga else None,
            unbroadcast(g * self.a, self.b.shape) if gb else None,
        )


@register
class Div(SameOpLowering, Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a / b

    def backward(self, g: np.ndarray):
        ga, gb = self.needs_input_grad
        g_over_b = g / self.b
        return (
            unbroadcast(g_over_b, self.a.shape) if ga else None,
            unbroadcast(-g_over_b * self.a / self.b, self.b.shape) if gb else None,
        )


@register
class Pow(SameOpLowering, Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        self.out = np.power(a, b)
        return self.out

    def backward(self, g: np.ndarray):
        ga, gb = self.needs_input_grad
        grad_a = grad_b = None
        if ga:
            grad_a = unbroadcast(g * self.b * np.power(self.a, self.b - 1), self.a.shape)
        if gb:
            # d(a^b)/db = a^b log a, defined for a > 0 (0 elsewhere, as PyTorch does at a == 0)
            safe = np.where(self.a > 0, self.a, 1)
            grad_b = unbroadcast(g * self.out * np.log(safe), self.b.shape)
        return grad_a, grad_b
