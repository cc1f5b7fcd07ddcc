"""DynamicQuantizeLinear: uint8 quantization with parameters computed from the data.

    x_min, x_max = min(0, min x), max(0, max x)
    y_scale      = (x_max - x_min) / 255          (1 when x_max == x_min, onnxruntime's rule)
    y_zero_point = round_half_even(saturate(0 - x_min / y_scale))
    y            = saturate(round_half_even(x / y_scale) + y_zero_point)

all in float32, as onnxruntime computes it.
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def dynamic_quantization_params(x: np.ndarray) -> tuple[np.float32, np.float32]:
    """(scale, zero point as float32) of DynamicQuantizeLinear for ``x``."""
    x_min = np.float32(min(0.0, float(np.min(x)))) if x.size else np.float32(0)
    x_max = np.float32(max(0.0, float(np.max(x)))) if x.size else np.float32(0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = np.float32(1.0) if x_max == x_min else \
            np.float32((x_max - x_min) / np.float32(255))
        zero_point = np.rint(np.clip(np.float32(0) - x_min / scale, 0, 255))
    return scale, np.float32(zero_point)


@cpu_kernel("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(ctx: KernelContext) -> Kernel:
    def dynamic_quantize_linear_(x):
        scale, zero_point = dynamic_quantization_params(x)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = np.asarray(np.divide(x, scale, dtype=np.float32))
            np.rint(q, out=q)
            np.add(q, zero_point, out=q)
            np.clip(q, 0, 255, out=q)
            y = q.astype(np.uint8)
        return y, np.array(scale, np.float32), np.array(zero_point, np.uint8)

    return dynamic_quantize_linear_
