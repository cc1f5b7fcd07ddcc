"""numpy primitives for sliding-window ops, shared by the autograd ops and the CPU kernels.

Semantics are ONNX's (NCHW, OIHW, ``pads = (top, left, bottom, right)``), dtypes are kept
(float32 in, float32 out), and nothing here imports more than numpy and
:mod:`edgefw.errors`, so the runtime can use it on a device without the trainer.

>>> import numpy as np
>>> from edgefw.ir.primitives import conv2d, max_pool2d
>>> x = np.ones((1, 1, 4, 4), np.float32)
>>> max_pool2d(conv2d(x, np.ones((1, 1, 3, 3), np.float32), pads=(1, 1, 1, 1)), (2, 2), (2, 2))
array([[[[9., 9.],
         [9., 9.]]]], dtype=float32)
"""

from __future__ import annotations

from edgefw.ir.primitives.blas import get_num_threads, set_num_threads
from edgefw.ir.primitives.conv import conv2d, conv2d_backward
from edgefw.ir.primitives.pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_onnx_indices,
)
from edgefw.ir.primitives.windows import conv_output_hw, release_scratch, same_pads

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_output_hw",
    "get_num_threads",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_onnx_indices",
    "release_scratch",
    "same_pads",
    "set_num_threads",
]
