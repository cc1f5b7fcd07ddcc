"""CPU kernels, one module per op (or tight family); importing this package registers them."""

from __future__ import annotations

from runtime.providers.cpu.kernels import (  # noqa: F401
    activations,
    binary,
    cast,
    concat,
    constant,
    conv,
    erf,
    gather,
    gemm,
    identity,
    matmul,
    normalization,
    pad,
    pooling,
    quantize_linear,
    reduce,
    reshape,
    shape,
    slice,
    softmax,
    transpose,
    unary,
)
