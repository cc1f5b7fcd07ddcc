"""edgefw's error hierarchy.

Every failure edgefw reports on bad input is an :class:`EdgeFWError`. The subclasses also
derive from the matching builtin (``ValueError``, ``TypeError``, ...) so that code written
against plain Python exceptions keeps working. Messages name what is wrong: the file, the
node, the parameter, the shapes given and expected.

This module imports nothing from the rest of edgefw, so the runtime can use it on a device
that has no trainer installed.
"""

from __future__ import annotations


class EdgeFWError(Exception):
    """Base class of every error edgefw raises on purpose."""


class ConfigError(EdgeFWError, ValueError):
    """An argument or setting that is not valid: an unknown activation, a negative rate."""


class ShapeError(EdgeFWError, ValueError):
    """Operands whose shapes do not fit the operation."""


class DTypeError(EdgeFWError, TypeError):
    """An operand of a dtype the operation does not support."""


class DataError(EdgeFWError, ValueError):
    """A dataset file or array that is malformed: bad magic, truncated, wrong labels."""


class CheckpointError(EdgeFWError, ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


class TrainingError(EdgeFWError, RuntimeError):
    """Training cannot go on, e.g. the loss became NaN or infinite."""


class GraphError(EdgeFWError, ValueError):
    """An IR graph that does not verify (SSA, order, shapes, unknown ops)."""


class TraceError(EdgeFWError, RuntimeError):
    """A model whose forward cannot be traced into the IR."""


class UnsupportedOpError(EdgeFWError, NotImplementedError):
    """An op that a provider, loader or exporter does not support."""


class ModelFormatError(EdgeFWError, ValueError):
    """A model file (.onnx, .tflite) that is truncated, corrupt or malformed."""


class InvalidInputError(EdgeFWError, ValueError):
    """Inputs given to a session that do not match what the model expects."""


class NodeExecutionError(EdgeFWError, RuntimeError):
    """A kernel failed while executing a node; the message names the node."""


class ExportError(EdgeFWError, ValueError):
    """A graph that cannot be written in the requested format."""


class QuantizationError(EdgeFWError, ValueError):
    """A graph or calibration setting that cannot be quantized as asked."""


class DeviceError(EdgeFWError, RuntimeError):
    """A requested execution provider or device is not available."""


__all__ = [
    "CheckpointError",
    "ConfigError",
    "DTypeError",
    "DataError",
    "DeviceError",
    "EdgeFWError",
    "ExportError",
    "GraphError",
    "InvalidInputError",
    "ModelFormatError",
    "NodeExecutionError",
    "QuantizationError",
    "ShapeError",
    "TraceError",
    "TrainingError",
    "UnsupportedOpError",
]
