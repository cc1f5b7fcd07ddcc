"""The TFLite model being built: tensors, operators, buffers, the signature and metadata,
before they become a FlatBuffer.

Lowering rules add to a :class:`TFLiteModel`; :meth:`TFLiteModel.to_flatbuffer` writes it.
Tensors hold shapes as stored in the file (NHWC for feature maps); a dynamic dim is 1 in
``shape`` and -1 in ``shape_signature``, as TFLite's converter writes a dynamic batch.

    >>> import numpy as np
    >>> m = TFLiteModel()
    >>> x = m.add_tensor("x", "float32", (1, 3), signature=(-1, 3))
    >>> y = m.add_tensor("y", "float32", (1, 3), signature=(-1, 3))
    >>> m.add_operator("RELU", [x], [y])
    >>> m.inputs, m.outputs = [x], [y]
    >>> m.to_flatbuffer()[4:8]
    b'TFL3'
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefw.errors import ExportError
from edgefw.ir.tflite_schema import (
    BUILTIN_OPERATORS,
    FILE_IDENTIFIER,
    OPERATOR_OPTIONS,
    PLACEHOLDER_FOR_GREATER_OP_CODES,
    SCHEMA_VERSION,
    TENSOR_TYPES,
)
from exporter.tflite.flatbuffer_writer import serialize
from exporter.tflite.op_versions import operator_version

#: A FlatBuffer addresses with 32-bit unsigned offsets: files stay below 2 GiB.
MAX_FLATBUFFER_BYTES = 2**31 - 1
SIGNATURE_KEY = "serving_default"


@dataclass
class TensorQuantization:
    """Affine quantization of a tensor: ``real = scale * (q - zero_point)``, per tensor
    (one scale) or per channel along ``quantized_dimension``."""

    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int = 0

    def __post_init__(self) -> None:
        self.scale = np.asarray(self.scale, np.float32).reshape(-1)
        self.zero_point = np.asarray(self.zero_point, np.int64).reshape(-1)
        if self.zero_point.size == 1 and self.scale.size > 1:
            self.zero_point = np.repeat(self.zero_point, self.scale.size)

    def same_as(self, other: TensorQuantization | None) -> bool:
        return (other is not None and self.scale.shape == other.scale.shape
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point)
                and self.quantized_dimension == other.quantized_dimension)


@dataclass
class TFLiteTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    signature: tuple[int, ...] | None = None
    data: np.ndarray | None = None
    quantization: TensorQuantization | None = None


@dataclass
class TFLiteOperator:
    op: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    #: Facts the op version depends on that tensors do not show (e.g. per-channel hybrid).
    version_hints: dict[str, Any] = field(default_factory=dict)


class TFLiteModel:
    """Tensors and operators of one subgraph, plus the model-level signature and metadata."""

    def __init__(self) -> None:
        self.tensors: list[TFLiteTensor] = []
        self.operators: list[TFLiteOperator] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        #: Signature names of ``inputs`` / ``outputs`` (default: the tensor names).
        self.input_names: list[str] | None = None
        self.output_names: list[str] | None = None
        #: Model.metadata entries: name -> bytes (one buffer each).
        self.metadata: dict[str, bytes] = {}
        self.description = "edgefw"
        self._names: set[str] = set()
        self._constants: dict[tuple, int] = {}

    # ------------------------------------------------------------------ building
    def add_tensor(self, name: str, dtype: str, shape: Sequence[int], *,
                   signature: Sequence[int] | None = None, data: np.ndarray | None = None,
                   quantization: TensorQuantization | None = None) -> int:
        """Add a tensor (a unique variant of ``name``); returns its index."""
        if dtype not in TENSOR_TYPES:
            raise ExportError(f"tensor {name!r}: dtype {dtype} has no TFLite tensor type")
        shape = tuple(int(d) for d in shape)
        sig = None if signature is None else tuple(int(d) for d in signature)
        if sig is not None and sig == shape:
            sig = None
        self.tensors.append(TFLiteTensor(self._unique(name), dtype, shape, sig, data,
                                         quantization))
        return len(self.tensors) - 1

    def add_constant(self, name: str, array: np.ndarray, *,
                     quantization: TensorQuantization | None = None) -> int:
        """A constant tensor holding ``array``; identical constants are written once."""
        array = np.ascontiguousarray(array)
        from edgefw.ir.dtypes import from_numpy

        dtype = from_numpy(array.dtype)
        key = (dtype, array.shape, hashlib.sha1(array.tobytes()).hexdigest(),
               None if quantization is None else (quantization.scale.tobytes(),
                                                  quantization.zero_point.tobytes(),
                                                  quantization.quantized_dimension))
        if key not in self._constants:
            self._constants[key] = self.add_tensor(name, dtype, array.shape, data=array,
                                                   quantization=quantization)
        return self._constants[key]

    def add_operator(self, op: str, inputs: Sequence[int], outputs: Sequence[int],
                     options: Mapping[str, Any] | None = None,
                     version_hints: Mapping[str, Any] | None = None) -> None:
        if op not in BUILTIN_OPERATORS:
            raise ExportError(f"{op} is not a TFLite builtin operator")
        self.operators.append(TFLiteOperator(op, list(inputs), list(outputs),
                                             dict(options or {}), dict(version_hints or {})))

    def _unique(self, name: str) -> str:
        candidate, i = name, 1
        while candidate in self._names:
            candidate = f"{name}_{i}"
            i += 1
        self._names.add(candidate)
        return candidate

    # ------------------------------------------------------------------ writing
    def versions(self) -> list[int]:
        """The version of each operator (see :mod:`exporter.tflite.op_versions`)."""
        return [operator_version(op, [self.tensors[i] if i >= 0 else None for i in op.inputs],
                                 [self.tensors[i] for i in op.outputs])
                for op in self.operators]

    def to_flatbuffer(self) -> bytes:
        """The ``.tflite`` file: schema version 3, buffer 0 empty, constant data aligned."""
        data_bytes = sum(t.data.nbytes for t in self.tensors if t.data is not None)
        if data_bytes > MAX_FLATBUFFER_BYTES:
            raise ExportError(f"the model's constants take {data_bytes / 2**30:.2f} GiB; "
                              "TFLite FlatBuffers are limited to 2 GiB")
        buffers: list[dict[str, Any]] = [{}]  # buffer 0: the empty sentinel, by convention
        tensors = []
        for t in self.tensors:
            entry: dict[str, Any] = {"shape": list(t.shape), "type": TENSOR_TYPES[t.dtype],
                                     "name": t.name}
            if t.signature is not None:
                entry["shape_signature"] = list(t.signature)
            if t.data is not None:
                buffers.append({"data": t.data.astype(t.data.dtype.newbyteorder("<"),
                                                      copy=False).tobytes()})
                entry["buffer"] = len(buffers) - 1
            if t.quantization is not None:
                q = t.quantization
                entry["quantization"] = {"scale": q.scale, "zero_point": q.zero_point,
                                         "quantized_dimension": q.quantized_dimension}
            tensors.append(entry)
        codes: dict[tuple[str, int], int] = {}
        operators = []
        for op, version in zip(self.operators, self.versions()):
            index = codes.setdefault((op.op, version), len(codes))
            entry = {"opcode_index": index, "inputs": op.inputs, "outputs": op.outputs}
            options_table = OPERATOR_OPTIONS.get(op.op)
            if options_table is not None:
                entry["builtin_options"] = (options_table, op.options)
            elif op.options:
                raise ExportError(f"{op.op} takes no options, got {op.options}")
            operators.append(entry)
        metadata = []
        for name, payload in self.metadata.items():
            buffers.append({"data": payload})
            metadata.append({"name": name, "buffer": len(buffers) - 1})
        model = {
            "version": SCHEMA_VERSION,
            "operator_codes": [_operator_code(op, version) for op, version in codes],
            "subgraphs": [{"tensors": tensors, "inputs": self.inputs, "outputs": self.outputs,
                           "operators": operators, "name": "main"}],
            "description": self.description,
            "buffers": buffers,
            "metadata": metadata or None,
            "signature_defs": [self._signature()],
        }
        out = serialize("Model", model, size_hint=data_bytes + 64 * len(self.tensors) + 4096,
                        file_identifier=FILE_IDENTIFIER)
        if len(out) > MAX_FLATBUFFER_BYTES:
            raise ExportError(f"the .tflite file would take {len(out) / 2**30:.2f} GiB; "
                              "TFLite FlatBuffers are limited to 2 GiB")
        return out

    def _signature(self) -> dict[str, Any]:
        in_names = self.input_names or [self.tensors[i].name for i in self.inputs]
        out_names = self.output_names or [self.tensors[i].name for i in self.outputs]
        return {
            "inputs": [{"name": n, "tensor_index": i} for n, i in zip(in_names, self.inputs)],
            "outputs": [{"name": n, "tensor_index": i}
                        for n, i in zip(out_names, self.outputs)],
            "signature_key": SIGNATURE_KEY,
            "subgraph_index": 0,
        }


def _operator_code(op: str, version: int) -> dict[str, Any]:
    code = BUILTIN_OPERATORS[op]
    # Readers before TF 2.4 only know deprecated_builtin_code (an int8).
    return {"deprecated_builtin_code": min(code, PLACEHOLDER_FOR_GREATER_OP_CODES),
            "builtin_code": code, "version": version}


__all__ = ["MAX_FLATBUFFER_BYTES", "SIGNATURE_KEY", "TFLiteModel", "TFLiteOperator",
           "TFLiteTensor", "TensorQuantization"]
