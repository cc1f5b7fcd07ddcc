"""ONNX export: :func:`to_onnx` writes an IR graph (or a traced edgefw model) as ``.onnx``
at opsets 13 to 21; :func:`read_metadata` reads back the metadata it stored.

    >>> import numpy as np
    >>> from edgefw import models
    >>> from exporter.onnx import to_onnx, read_metadata
    >>> to_onnx(models.build("lenet"), "lenet.onnx", opset=17,
    ...         example_inputs=np.zeros((1, 1, 28, 28), np.float32),
    ...         metadata={"input_layout": "NCHW", "class_labels": list("0123456789")})
    ... # doctest: +SKIP
    >>> read_metadata("lenet.onnx")["input_layout"]  # doctest: +SKIP
    'NCHW'

Layout: ``writer`` (the model and the file), ``opset`` (per-opset rewrites of each op),
``decompositions`` (Gelu, HardSwish, Mish, Swish, fused activations), ``normalizations``
(LayerNorm, GroupNorm, RMSNorm decompositions), ``emitter`` (names,
attributes, nodes), ``metadata``.
"""

from __future__ import annotations

from exporter.onnx.metadata import JSON_KEYS, read_metadata
from exporter.onnx.writer import (
    DEFAULT_OPSET,
    MAX_MODEL_BYTES,
    SUPPORTED_OPSETS,
    build_model,
    to_onnx,
    write_atomic,
)

__all__ = [
    "DEFAULT_OPSET",
    "JSON_KEYS",
    "MAX_MODEL_BYTES",
    "SUPPORTED_OPSETS",
    "build_model",
    "read_metadata",
    "to_onnx",
    "write_atomic",
]
