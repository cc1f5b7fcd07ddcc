"""Model loaders: files made by other tools -> :class:`edgefw.ir.Graph`.

Importing this package registers each loader with :func:`runtime.register_loader`, so
``InferenceSession("model.onnx")`` (or the file's bytes) goes through :func:`load_onnx`,
and ``InferenceSession("model.tflite")`` through :func:`load_tflite`.

>>> from runtime.loaders import load_onnx
>>> load_onnx("tests/fixtures/onnx/mlp_ts17.onnx").inputs[0].shape
('batch', 1, 8, 8)
"""

from __future__ import annotations

from runtime.loaders.onnx_loader import load_onnx, supported_ops
from runtime.loaders.tflite_loader import load_tflite, supported_builtin_ops
from runtime.session import register_loader

register_loader("onnx", load_onnx)
register_loader("tflite", load_tflite)

__all__ = ["load_onnx", "load_tflite", "supported_builtin_ops", "supported_ops"]
