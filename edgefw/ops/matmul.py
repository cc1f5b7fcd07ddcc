"""Matrix products: MatMul (numpy/ONNX broadcasting semantics) and the fused Linear
(``x @ W.T + b``, recorded as ONNX Gemm for 2-D inputs)."""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.primitives.blas import matmul
from edgefw.ops.function import Function, SameOpLowering, register, unbroadcast


@register
class MatMul(SameOpLowering, Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        try:
            return matmul(a, b)
        except ValueError:
            raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} do not align") from None

    def backward(self, g: np.ndarray):
        a, b = self.a, self.b
        ga, gb = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # dot product
            return (g * b if ga else None), (g * a if gb else None)
        # Promote 1-D operands the way matmul did, then undo it.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        grad_a = grad_b = None
        if ga:
            grad_a = unbroadcast(matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape)
            grad_a = grad_a.reshape(a.shape)
        if gb:
            grad_b = unbroadcast(matmul(np.swapaxes(a2, -1, -2), g2), b2.shape)
            grad_b = grad_b.reshape(b.shape)
        return grad_a, grad_b


@register
class Linear(Function):
    """``y = x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features)."""

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None):
        if x.shape[-1] != weight.shape[1]:
            raise ShapeError(
                f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the weight "
                f"expects {weight.shape[1]} (weight shape {weight.shape})"
            )
        self.x, self.weight = x, weight
        # BLAS is faster on (W @ x.T) than on x @ W.T for a row-major W (no transposed
        # operand to pack); the result is returned as a transposed view.
        y = matmul(weight, x.T).T if x.ndim == 2 else matmul(x, weight.T)
        if bias is not None:
            y += bias
        return y

    def backward(self, g: np.ndarray):
        needs = self.needs_input_grad
        grad_x = matmul(g, self.weight) if needs[0] else None
        grad_w = grad_b = None
        if needs[1]:
            g2 = g.reshape(-1, g.shape[-1])
            grad_w = matmul(g2.T, self.x.reshape(-1, self.x.shape[-1]))
        if len(needs) > 2 and needs[2]:
            grad_b = g.reshape(-1, g.shape[-1]).sum(axis=0)
        return grad_x, grad_w, grad_b

    def lower(self, e, x, weight, bias=None):
        if len(e.in_shapes[0]) == 2:
            return e.node("Gemm", [x, weight] + ([bias] if bias is not None else []),
                          {"transB": 1})
        # Higher ranks: MatMul with the transposed weight (constant folding makes it one
        # constant; the parameter keeps its name until then).
        y = e.node("MatMul", [x, e.node("Transpose", [weight], {"perm": [1, 0]})])
        return y if bias is None else e.node("Add", [y, bias])
