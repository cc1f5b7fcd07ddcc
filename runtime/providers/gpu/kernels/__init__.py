"""GPU kernels, one module per op (or tight family); importing this package registers them."""

from __future__ import annotations

from runtime.providers.gpu.kernels import (  # noqa: F401
    batch_norm,
    binary,
    conv,
    gemm,
    layer_norm,
    pooling,
    qadd,
    qbatch_matmul,
    qconv,
    qgemm,
    qpool,
    quantize_linear,
    rearrange,
    reduce,
    softmax,
    unary,
    views,
)
