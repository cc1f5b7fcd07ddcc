"""TFLite export: :func:`to_tflite` writes an IR graph (or a traced edgefw model) as a
``.tflite`` FlatBuffer that LiteRT's interpreter runs; :func:`read_metadata` reads back the
metadata it stored.

    >>> import numpy as np
    >>> from edgefw import models
    >>> from exporter.tflite import to_tflite, read_metadata
    >>> data = to_tflite(models.build("lenet"), "lenet.tflite",
    ...                  example_inputs=np.zeros((1, 1, 28, 28), np.float32),
    ...                  metadata={"normalization": {"scale": 1 / 255}})  # doctest: +SKIP
    >>> read_metadata("lenet.tflite")["inputs"][0]["layout"]  # doctest: +SKIP
    'NHWC'

Layout: ``writer`` (the entry point), ``lowering`` (the rule registry and the context rules
write with), rules by family in ``ops_nn``, ``ops_elementwise``, ``ops_tensor`` and
``quantized`` (QDQ -> TFLite quantized tensors), ``layout`` (NCHW -> NHWC), ``model`` (the
TFLite model before serialization), ``op_versions``, ``flatbuffer_writer`` and ``schema``
(TFLite's schema.fbs as tables, shared with the .tflite loader), ``metadata``.
"""

from __future__ import annotations

from exporter.tflite.metadata import (
    EDGEFW_METADATA,
    GOLDEN_METADATA,
    read_metadata,
    read_metadata_buffers,
)
from exporter.tflite.writer import QUANTIZE_MODES, build_model, to_tflite

__all__ = [
    "EDGEFW_METADATA",
    "GOLDEN_METADATA",
    "QUANTIZE_MODES",
    "build_model",
    "read_metadata",
    "read_metadata_buffers",
    "to_tflite",
]
