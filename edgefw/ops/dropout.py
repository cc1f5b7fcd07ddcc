"""Dropout (inverted: kept units are scaled by 1/(1-p) at training time; identity in eval)."""

from __future__ import annotations

import numpy as np

from edgefw import random as _random
from edgefw.ops.function import Function, register


@register
class Dropout(Function):
    def forward(self, x: np.ndarray, p: float = 0.5, training: bool = True) -> np.ndarray:
        if not training or p == 0.0:
            self.mask = None
            return x
        keep = _random.generator().random(x.shape, dtype=np.float32) >= p
        self.mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
        return x * self.mask

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g if self.mask is None else g * self.mask

    def lower(self, e, x, p=0.5, training=True):
        return x  # inference: Dropout vanishes
