"""edgefw's exporters: IR graphs (or traced models) to files other runtimes run.

- :mod:`exporter.onnx`: ``.onnx`` through the ``onnx`` package (:func:`to_onnx`);
- ``exporter.tflite`` (a later issue): ``.tflite`` FlatBuffers.

Names are imported lazily so that ``import exporter`` does not pull in ``onnx`` for a
TFLite-only export.

    >>> import numpy as np, exporter
    >>> from edgefw import models
    >>> exporter.to_onnx(models.build("mlp"), "mlp.onnx",
    ...                  example_inputs=np.zeros((1, 1, 28, 28), np.float32))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

# name -> (module, attribute)
_LAZY = {
    "to_onnx": ("exporter.onnx", "to_onnx"),
    "read_onnx_metadata": ("exporter.onnx", "read_metadata"),
    "to_tflite": ("exporter.tflite", "to_tflite"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'exporter' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
