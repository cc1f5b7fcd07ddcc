"""Pooling: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (global pooling is its 1x1 case)."""

from __future__ import annotations

import numpy as np

from edgefw.errors import TraceError
from edgefw.ir.primitives import pool
from edgefw.ops.function import Function, register


@register
class MaxPool2d(Function):
    def forward(self, x, kernel_hw, strides, pads=(0, 0, 0, 0), dilations=(1, 1),
                ceil_mode=False) -> np.ndarray:
        self.x_shape = x.shape
        self.conf = dict(kernel_hw=kernel_hw, strides=strides, pads=pads, dilations=dilations,
                         ceil_mode=ceil_mode)
        if not self.needs_input_grad[0]:
            return pool.max_pool2d(x, **self.conf)
        y, self.indices = pool.max_pool2d(x, return_indices=True, **self.conf)
        return y

    def backward(self, g: np.ndarray) -> np.ndarray:
        return pool.max_pool2d_backward(g, self.indices, self.x_shape, **self.conf)

    def lower(self, e, x, kernel_hw, strides, pads=(0, 0, 0, 0), dilations=(1, 1),
              ceil_mode=False):
        return e.node("MaxPool", [x], {
            "kernel_shape": list(kernel_hw), "strides": list(strides), "pads": list(pads),
            "dilations": list(dilations), "ceil_mode": int(ceil_mode)})


@register
class AvgPool2d(Function):
    def forward(self, x, kernel_hw, strides, pads=(0, 0, 0, 0), ceil_mode=False,
                count_include_pad=False) -> np.ndarray:
        self.x_shape = x.shape
        self.conf = dict(kernel_hw=kernel_hw, strides=strides, pads=pads, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)
        return pool.avg_pool2d(x, **self.conf)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return pool.avg_pool2d_backward(g, self.x_shape, **self.conf)

    def lower(self, e, x, kernel_hw, strides, pads=(0, 0, 0, 0), ceil_mode=False,
              count_include_pad=False):
        return e.node("AveragePool", [x], {
            "kernel_shape": list(kernel_hw), "strides": list(strides), "pads": list(pads),
            "ceil_mode": int(ceil_mode), "count_include_pad": int(count_include_pad)})


@register
class AdaptiveAvgPool2d(Function):
    def forward(self, x: np.ndarray, output_hw: tuple[int, int]) -> np.ndarray:
        self.x_shape = x.shape
        self.global_ = tuple(output_hw) == (1, 1)
        if self.global_:
            return pool.global_avg_pool2d(x)
        return pool.adaptive_avg_pool2d(x, output_hw)

    def backward(self, g: np.ndarray) -> np.ndarray:
        if self.global_:
            h, w = self.x_shape[2:]
            return np.broadcast_to(g / g.dtype.type(h * w), self.x_shape).copy()
        return pool.adaptive_avg_pool2d_backward(g, self.x_shape)

    def lower(self, e, x, output_hw):
        if tuple(output_hw) == (1, 1):
            return e.node("GlobalAveragePool", [x])
        (h, w), (oh, ow) = e.in_shapes[0][2:], output_hw
        if h % oh or w % ow:
            raise TraceError(
                f"adaptive_avg_pool2d from {h}x{w} to {oh}x{ow} has uneven windows, which no "
                "ONNX op expresses; choose an output size that divides the input size"
            )
        k = [h // oh, w // ow]
        return e.node("AveragePool", [x], {"kernel_shape": k, "strides": k})
