"""Embedding lookup: rows of ``weight`` picked by integer indices (ONNX Gather, axis 0)."""

from __future__ import annotations

import numpy as np

from edgefw.errors import DTypeError, ShapeError
from edgefw.ops.function import Function, register


@register
class Embedding(Function):
    def forward(self, weight: np.ndarray, indices: np.ndarray) -> np.ndarray:
        if indices.dtype.kind not in "iu":
            raise DTypeError(f"embedding: indices must be integers, got {indices.dtype}")
        n = weight.shape[0]
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            bad = indices.min() if indices.min() < 0 else indices.max()
            raise ShapeError(f"embedding: index {bad} is out of range for {n} embeddings")
        self.indices, self.shape = indices, weight.shape
        return weight[indices]

    def backward(self, g: np.ndarray):
        grad = np.zeros(self.shape, dtype=g.dtype)
        np.add.at(grad, self.indices.reshape(-1), g.reshape(-1, self.shape[1]))
        return grad, None

    def lower(self, e, weight, indices):
        return e.node("Gather", [weight, indices], {"axis": 0})
