"""2-D convolution (ONNX Conv: NCHW input, OIHW weight, grouped and depthwise)."""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives.conv import conv2d, conv2d_backward, conv2d_with_columns
from edgefw.ops.function import Function, register


@register
class Conv2d(Function):
    def forward(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None = None,
        strides: tuple[int, int] = (1, 1),
        pads: tuple[int, int, int, int] = (0, 0, 0, 0),
        dilations: tuple[int, int] = (1, 1),
        group: int = 1,
    ) -> np.ndarray:
        self.x, self.weight, self.columns = x, weight, None
        self.conf = dict(strides=strides, pads=pads, dilations=dilations, group=group)
        if not self.needs_input_grad[1]:
            return conv2d(x, weight, bias, **self.conf)
        # Keep the im2col columns: the weight gradient reuses them instead of redoing im2col.
        y, self.columns = conv2d_with_columns(x, weight, bias, **self.conf)
        return y

    def backward(self, g: np.ndarray):
        needs = self.needs_input_grad
        dx, dw, db = conv2d_backward(
            g, self.x, self.weight, need_dx=needs[0], need_dw=needs[1], need_db=True,
            columns=self.columns, **self.conf
        )
        self.columns = None
        return dx, dw, (db if len(needs) > 2 and needs[2] else None)

    def lower(self, e, x, weight, bias=None, strides=(1, 1), pads=(0, 0, 0, 0),
              dilations=(1, 1), group=1):
        attrs = {"kernel_shape": list(e.in_shapes[1][2:]), "strides": list(strides),
                 "pads": list(pads), "dilations": list(dilations), "group": int(group)}
        return e.node("Conv", [x, weight] + ([bias] if bias is not None else []), attrs)
