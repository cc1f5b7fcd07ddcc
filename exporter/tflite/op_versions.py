"""The version written for each operator: the lowest one whose kernel supports the tensor
types and options used, as TFLite's converter chooses it (``op_version.cc``). An interpreter
loads an operator when it registers that version; the lowest version lets older interpreters
(tflite-runtime on a Raspberry Pi, TFLite Micro) load the file too.

    >>> from exporter.tflite.model import TFLiteOperator, TFLiteTensor
    >>> x = TFLiteTensor("x", "int8", (1, 8))
    >>> operator_version(TFLiteOperator("SOFTMAX", [0], [0]), [x], [x])
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.tflite.model import TFLiteOperator, TFLiteTensor

# Ops whose only distinction is an int8 kernel (version 2) beside the float one (version 1).
_INT8_IS_V2 = frozenset({
    "AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION", "SOFTMAX", "MEAN", "MIRROR_PAD",
    "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RSQRT", "SUM", "LOG_SOFTMAX", "GREATER",
    "LESS_EQUAL", "SQUARED_DIFFERENCE", "SPLIT_V", "TANH", "LOGISTIC", "EXP", "LOG", "GELU",
    "LESS", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL", "ABS", "ARG_MAX", "ARG_MIN", "PACK",
    "UNPACK", "GATHER", "ADD", "SUB", "MUL", "PAD", "PADV2", "TRANSPOSE", "STRIDED_SLICE",
    "SLICE", "MAXIMUM", "MINIMUM", "BATCH_MATMUL",
})  # fmt: skip


def _dtype(tensors: Sequence[TFLiteTensor | None], i: int) -> str | None:
    return tensors[i].dtype if i < len(tensors) and tensors[i] is not None else None


def _per_channel(tensor: TFLiteTensor | None) -> bool:
    q = None if tensor is None else tensor.quantization
    return q is not None and q.scale.size > 1


def _broadcast_above_4d(inputs: Sequence[TFLiteTensor | None]) -> bool:
    real = [t for t in inputs if t is not None]
    return (len(real) >= 2 and real[0].shape != real[1].shape
            and max(len(t.shape) for t in real) > 4)


def _hybrid(inputs: Sequence[TFLiteTensor | None], outputs: Sequence[TFLiteTensor]) -> bool:
    return (_dtype(inputs, 0) == "float32" and _dtype(inputs, 1) == "int8"
            and outputs[0].dtype == "float32")


def operator_version(op: TFLiteOperator, inputs: Sequence[TFLiteTensor | None],
                     outputs: Sequence[TFLiteTensor]) -> int:
    """The version to write for ``op`` given its input and output tensors."""
    name, options = op.op, op.options
    in0, out0 = _dtype(inputs, 0), outputs[0].dtype if outputs else None
    int8 = in0 == "int8"
    rank0 = len(inputs[0].shape) if inputs and inputs[0] is not None else 0
    if name == "CONV_2D":
        if op.version_hints.get("grouped"):
            return 6
        if int8 and _dtype(inputs, 1) == "int8" and out0 == "int8":
            return 3
        if _hybrid(inputs, outputs):
            return 5 if _per_channel(inputs[1]) else 2
        return 1
    if name == "DEPTHWISE_CONV_2D":
        if _hybrid(inputs, outputs):
            return 6 if _per_channel(inputs[1]) else 4
        if int8 and _dtype(inputs, 1) == "int8" and out0 == "int8":
            return 3
        dilated = options.get("dilation_w_factor", 1) != 1 \
            or options.get("dilation_h_factor", 1) != 1
        return 2 if dilated else 1
    if name == "FULLY_CONNECTED":
        if _hybrid(inputs, outputs) and _per_channel(inputs[1]):
            return 12
        if len(inputs) == 2:
            return 6
        if options.get("keep_num_dims"):
            return 5
        if int8 and _dtype(inputs, 1) == "int8" and out0 == "int8":
            return 4
        if _hybrid(inputs, outputs):
            return 9 if options.get("asymmetric_quantize_inputs") else 3
        return 1
    if name == "DEQUANTIZE":
        if in0 in ("int16", "float16"):
            return 3
        if int8:
            return 5 if _per_channel(inputs[0]) else 2
        return 1
    if name == "QUANTIZE":
        if _per_channel(outputs[0]):
            return 3
        return 2 if out0 == "int16" else 1
    if name == "MUL":
        if in0 == "int64":
            return 5
        scales = [t.quantization.scale[0] if t is not None and t.quantization is not None
                  else 0.0 for t in (inputs[0], inputs[1], outputs[0])]
        if all(scales) and scales[0] * scales[1] / scales[2] >= 1.0:
            return 3
        return 2 if int8 else 1
    if name == "TRANSPOSE":
        if rank0 > 5:
            return 6
        if rank0 > 4:
            return 4
        return 3 if in0 == "bool" else 2 if int8 else 1
    if name == "STRIDED_SLICE":
        if options.get("offset"):
            return 8
        if options.get("ellipsis_mask") or options.get("new_axis_mask"):
            return 6
        if rank0 > 4:
            return 4
        return 3 if in0 == "bool" else 2 if int8 else 1
    if name == "SLICE":
        return 5 if rank0 > 4 else 2 if int8 else 1
    if name in ("PAD", "PADV2"):
        return 4 if rank0 > 4 else 2 if int8 else 1
    if name == "GATHER":
        if options.get("batch_dims"):
            return 5
        return 3 if in0 == "bool" else 2 if int8 else 1
    if name in ("SUB", "MAXIMUM", "MINIMUM"):
        if name == "SUB" and in0 == "int64":
            return 4
        if _broadcast_above_4d(inputs):
            return 3
        return 2 if int8 else 1
    if name == "ADD":
        return 4 if in0 == "int64" else 2 if int8 else 1
    if name == "DIV":
        return 2 if _broadcast_above_4d(inputs) else 1
    if name == "BATCH_MATMUL":
        if int8:
            return 2
        if _hybrid(inputs, outputs) and options.get("asymmetric_quantize_inputs"):
            return 4
        return 1
    if name == "CAST":
        types = {in0, out0}
        if types & {"float64", "float16"}:
            return 5
        if "uint16" in types:
            return 4
        if "int8" in types:
            return 3
        return 2 if "uint32" in types else 1
    if name in _INT8_IS_V2:
        return 2 if int8 else 1
    return 1


__all__ = ["operator_version"]
