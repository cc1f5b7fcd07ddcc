"""A bounds-checked reader for ``.tflite`` FlatBuffers and the parts of TFLite's
``schema.fbs`` (schema version 3) the loader needs: table slots, enums, op names.

A ``.tflite`` file is untrusted input. Every offset the reader follows — the root offset,
each table's vtable, each field, each vector and string — is checked against the file
size (and each table's own size) *before* it is used, so a truncated or corrupt file
raises :class:`~edgefw.errors.ModelFormatError` naming the field, never an IndexError, a
crash or a huge allocation. Vectors of numbers come back as read-only numpy views of the
file (nothing is copied); counts are limited before any list is built.

Only the standard library and numpy are used (no ``flatbuffers`` object API, no
TensorFlow), so a device reads models with the runtime alone. The tables here are checked
against ``ai_edge_litert.schema_py_generated`` by ``tests/runtime/tflite/test_tflite_schema.py``.

    >>> data = open("tests/fixtures/tflite/mlp_float32.tflite", "rb").read()
    >>> model = FlatBufferFile(data, "mlp.tflite").root()
    >>> model.get("version"), len(model.tables("subgraphs"))
    (3, 1)
    >>> BUILTIN_OPERATOR_NAMES[9], TENSOR_TYPE_NAMES[9]
    ('FULLY_CONNECTED', 'int8')
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from edgefw.errors import ModelFormatError

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
#: ``OperatorCode.deprecated_builtin_code`` holds this for codes that need ``builtin_code``.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127
#: Longest vector (elements) the reader accepts: more is a corrupt length, not a model.
MAX_VECTOR_ELEMENTS = 1 << 31

_NAMES = (  # BuiltinOperator, code = position
    "ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE "
    "EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D "
    "LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU "
    "RELU_N1_TO_1 RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH "
    "CONCAT_EMBEDDINGS SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD "
    "UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN "
    "SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN "
    "EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM "
    "ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN "
    "TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT "
    "SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND "
    "LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD "
    "RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V "
    "UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG "
    "QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE NON_MAX_SUPPRESSION_V4 "
    "NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM BATCH_MATMUL "
    "PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL "
    "COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL "
    "CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS "
    "RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE "
    "RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2 "
    "UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT"
).split()
#: ``BuiltinOperator`` code -> name (StableHLO codes from 162 on are left out).
BUILTIN_OPERATOR_NAMES: dict[int, str] = dict(enumerate(_NAMES))


def builtin_operator_name(code: int) -> str:
    """``"CONV_2D"`` for 3; ``"builtin code 999"`` for a code this table does not know."""
    return BUILTIN_OPERATOR_NAMES.get(code, f"builtin code {code}")


#: ``TensorType`` code -> dtype name (edgefw's where the IR has the type).
TENSOR_TYPE_NAMES: dict[int, str] = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
    7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
    13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}  # fmt: skip
#: ``ActivationFunctionType`` code -> name.
ACTIVATION_NAMES: dict[int, str] = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6",
                                    4: "TANH", 5: "SIGN_BIT"}
#: ``Padding`` code -> name.
PADDING_NAMES: dict[int, str] = {0: "SAME", 1: "VALID"}

# Field kinds: a struct code for scalars ("b", "B", "i", "I", "q", "Q", "f", "?"),
# "str", "T:<Table>" (a table), "[T:<Table>]" (vector of tables), "[<code>]" (vector of
# scalars) and "union" (its type is the preceding "<name>_type" field).
_FIELDS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "Model": (("version", "I", 0), ("operator_codes", "[T:OperatorCode]", None),
              ("subgraphs", "[T:SubGraph]", None), ("description", "str", None),
              ("buffers", "[T:Buffer]", None), ("metadata_buffer", "[i]", None),
              ("metadata", "[T:Metadata]", None), ("signature_defs", "[T:SignatureDef]", None)),
    "SubGraph": (("tensors", "[T:Tensor]", None), ("inputs", "[i]", None),
                 ("outputs", "[i]", None), ("operators", "[T:Operator]", None),
                 ("name", "str", None)),
    "Tensor": (("shape", "[i]", None), ("type", "b", 0), ("buffer", "I", 0), ("name", "str", None),
               ("quantization", "T:QuantizationParameters", None), ("is_variable", "?", False),
               ("sparsity", "T:SparsityParameters", None), ("shape_signature", "[i]", None),
               ("has_rank", "?", False), ("variant_tensors", "[T:VariantSubType]", None),
               ("external_buffer", "I", 0)),
    "QuantizationParameters": (("min", "[f]", None), ("max", "[f]", None),
                               ("scale", "[f]", None), ("zero_point", "[q]", None),
                               ("details_type", "B", 0), ("details", "union", None),
                               ("quantized_dimension", "i", 0)),
    "SparsityParameters": (),
    "VariantSubType": (),
    "Buffer": (("data", "[B]", None), ("offset", "Q", 0), ("size", "Q", 0)),
    "OperatorCode": (("deprecated_builtin_code", "b", 0), ("custom_code", "str", None),
                     ("version", "i", 1), ("builtin_code", "i", 0)),
    "Operator": (("opcode_index", "I", 0), ("inputs", "[i]", None), ("outputs", "[i]", None),
                 ("builtin_options_type", "B", 0), ("builtin_options", "union", None),
                 ("custom_options", "[B]", None), ("custom_options_format", "b", 0),
                 ("mutating_variable_inputs", "[?]", None), ("intermediates", "[i]", None)),
    "SignatureDef": (("inputs", "[T:TensorMap]", None), ("outputs", "[T:TensorMap]", None),
                     ("signature_key", "str", None), ("deprecated_tag", "str", None),
                     ("subgraph_index", "I", 0)),
    "TensorMap": (("name", "str", None), ("tensor_index", "I", 0)),
    "Metadata": (("name", "str", None), ("buffer", "I", 0)),
    # BuiltinOptions tables the loader reads (the union's type -> table name below).
    "Conv2DOptions": (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0),
                      ("fused_activation_function", "b", 0), ("dilation_w_factor", "i", 1),
                      ("dilation_h_factor", "i", 1)),
    "DepthwiseConv2DOptions": (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0),
                               ("depth_multiplier", "i", 0),
                               ("fused_activation_function", "b", 0),
                               ("dilation_w_factor", "i", 1), ("dilation_h_factor", "i", 1)),
    "Pool2DOptions": (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0),
                      ("filter_width", "i", 0), ("filter_height", "i", 0),
                      ("fused_activation_function", "b", 0)),
    "FullyConnectedOptions": (("fused_activation_function", "b", 0),
                              ("weights_format", "b", 0), ("keep_num_dims", "?", False),
                              ("asymmetric_quantize_inputs", "?", False)),
    "SoftmaxOptions": (("beta", "f", 0.0),),
    "ConcatenationOptions": (("axis", "i", 0), ("fused_activation_function", "b", 0)),
    "AddOptions": (("fused_activation_function", "b", 0),),
    "SubOptions": (("fused_activation_function", "b", 0),),
    "MulOptions": (("fused_activation_function", "b", 0),),
    "DivOptions": (("fused_activation_function", "b", 0),),
    "ReshapeOptions": (("new_shape", "[i]", None),),
    "ReducerOptions": (("keep_dims", "?", False),),
    "StridedSliceOptions": (("begin_mask", "i", 0), ("end_mask", "i", 0),
                            ("ellipsis_mask", "i", 0), ("new_axis_mask", "i", 0),
                            ("shrink_axis_mask", "i", 0), ("offset", "?", False)),
    "SqueezeOptions": (("squeeze_dims", "[i]", None),),
    "GatherOptions": (("axis", "i", 0), ("batch_dims", "i", 0)),
    "SplitOptions": (("num_splits", "i", 0),),
    "SplitVOptions": (("num_splits", "i", 0),),
    "CastOptions": (("in_data_type", "b", 0), ("out_data_type", "b", 0)),
    "BatchMatMulOptions": (("adj_x", "?", False), ("adj_y", "?", False),
                           ("asymmetric_quantize_inputs", "?", False)),
    "GeluOptions": (("approximate", "?", False),),
    "LeakyReluOptions": (("alpha", "f", 0.0),),
    "MirrorPadOptions": (("mode", "b", 0),),
    "PackOptions": (("values_count", "i", 0), ("axis", "i", 0)),
    "UnpackOptions": (("num", "i", 0), ("axis", "i", 0)),
    "ShapeOptions": (("out_type", "b", 0),),
    "ArgMaxOptions": (("output_type", "b", 0),),
    "ArgMinOptions": (("output_type", "b", 0),),
}  # fmt: skip

#: ``BuiltinOptions`` union type -> options table name (those the loader reads).
BUILTIN_OPTIONS: dict[int, str] = {
    1: "Conv2DOptions", 2: "DepthwiseConv2DOptions", 5: "Pool2DOptions",
    8: "FullyConnectedOptions", 9: "SoftmaxOptions", 10: "ConcatenationOptions",
    11: "AddOptions", 17: "ReshapeOptions", 21: "MulOptions", 23: "GatherOptions",
    27: "ReducerOptions", 28: "SubOptions", 29: "DivOptions", 30: "SqueezeOptions",
    32: "StridedSliceOptions", 35: "SplitOptions", 37: "CastOptions", 40: "ArgMaxOptions",
    55: "ShapeOptions", 57: "ArgMinOptions", 59: "PackOptions", 64: "UnpackOptions",
    75: "LeakyReluOptions", 77: "MirrorPadOptions", 79: "SplitVOptions",
    101: "BatchMatMulOptions", 116: "GeluOptions",
}  # fmt: skip

#: Table name -> {field: (slot, kind, default)}.
SLOTS: dict[str, dict[str, tuple[int, str, Any]]] = {
    table: {name: (slot, kind, default) for slot, (name, kind, default) in enumerate(fields)}
    for table, fields in _FIELDS.items()
}

_SCALAR_SIZES = {code: struct.calcsize("<" + code) for code in "bBhHiIqQf?"}
_NUMPY_TYPES = {"b": "<i1", "B": "<u1", "i": "<i4", "I": "<u4", "q": "<i8", "Q": "<u8",
                "f": "<f4", "?": "<u1"}


class FlatBufferFile:
    """The bytes of one FlatBuffer and the checked primitives every read goes through."""

    def __init__(self, data: bytes, label: str) -> None:
        self.data = data
        self.size = len(data)
        self.label = label

    def fail(self, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.label}: {message}")

    def scalar(self, code: str, pos: int, what: str) -> Any:
        size = _SCALAR_SIZES[code]
        if pos < 0 or pos + size > self.size:
            raise self.fail(f"{what} at byte {pos} lies outside the file ({self.size} bytes): "
                            "the file is truncated or corrupt")
        return struct.unpack_from("<" + code, self.data, pos)[0]

    def root(self) -> Table:
        """The ``Model`` table; ModelFormatError when the file is too short to hold one or
        does not carry TFLite's ``TFL3`` identifier."""
        if self.size < 8:
            raise self.fail(f"has {self.size} bytes; a .tflite file has at least 8 (root "
                            "offset and the 'TFL3' identifier)")
        if self.data[4:8] != FILE_IDENTIFIER:
            raise self.fail(f"is not a TFLite model: bytes 4..8 are {bytes(self.data[4:8])!r}, "
                            f"not {FILE_IDENTIFIER!r}")
        return self.table(self.scalar("I", 0, "root offset"), "Model", "Model")

    def table(self, pos: int, kind: str, where: str) -> Table:
        """The ``kind`` table starting at ``pos``, its vtable and size checked."""
        vtable = pos - self.scalar("i", pos, f"{where} (table)")
        vtable_size = self.scalar("H", vtable, f"{where} vtable")
        table_size = self.scalar("H", vtable + 2, f"{where} vtable")
        if vtable_size < 4 or vtable_size % 2 or vtable + vtable_size > self.size:
            raise self.fail(f"{where}: corrupt vtable (size {vtable_size} at byte {vtable})")
        if table_size < 4 or pos + table_size > self.size:
            raise self.fail(f"{where}: table of {table_size} bytes at byte {pos} does not fit "
                            f"in the file ({self.size} bytes)")
        return Table(self, pos, vtable, vtable_size, table_size, kind, where)


class Table:
    """One table of a known kind; :meth:`get` reads a field by its schema name."""

    def __init__(self, buf: FlatBufferFile, pos: int, vtable: int, vtable_size: int,
                 table_size: int, kind: str, where: str) -> None:
        self.buf, self.pos, self.kind, self.where = buf, pos, kind, where
        self._vtable, self._vtable_size, self._table_size = vtable, vtable_size, table_size

    def _field(self, name: str) -> tuple[int | None, str, Any]:
        """(absolute position of the field or None when absent, kind, default)."""
        slot, kind, default = SLOTS[self.kind][name]
        entry = 4 + 2 * slot
        if entry + 2 > self._vtable_size:
            return None, kind, default
        offset = self.buf.scalar("H", self._vtable + entry, f"{self.where} vtable")
        if offset == 0:
            return None, kind, default
        size = 4 if kind[0] in "[Tsu" else _SCALAR_SIZES[kind]
        if offset < 4 or offset + size > self._table_size:
            raise self.buf.fail(f"{self.where}.{name}: field offset {offset} lies outside its "
                                f"table ({self._table_size} bytes)")
        return self.pos + offset, kind, default

    def has(self, name: str) -> bool:
        return self._field(name)[0] is not None

    def get(self, name: str) -> Any:
        """A scalar (its default when absent), a string, a table, or a read-only numpy
        vector of numbers (None when absent). Vectors of tables: :meth:`tables`."""
        pos, kind, default = self._field(name)
        where = f"{self.where}.{name}"
        if pos is None:
            return default
        if kind in _SCALAR_SIZES:
            return self.buf.scalar(kind, pos, where)
        if kind == "str":
            start, count = self._vector(pos, 1, where)
            try:
                return bytes(self.buf.data[start:start + count]).decode("utf-8")
            except UnicodeDecodeError:
                raise self.buf.fail(f"{where} is not valid UTF-8 text") from None
        if kind.startswith("T:"):
            return self.buf.table(self._target(pos, where), kind[2:], where)
        if kind.startswith("[") and kind[1:-1] in _NUMPY_TYPES:
            dtype = np.dtype(_NUMPY_TYPES[kind[1:-1]])
            start, count = self._vector(pos, dtype.itemsize, where)
            return np.frombuffer(self.buf.data, dtype, count, start)
        raise TypeError(f"{self.kind}.{name} is a {kind}; use tables()/union()")

    def tables(self, name: str, limit: int = MAX_VECTOR_ELEMENTS) -> list[Table]:
        """A vector of tables (empty when absent), at most ``limit`` of them."""
        pos, kind, _ = self._field(name)
        where = f"{self.where}.{name}"
        if pos is None:
            return []
        start, count = self._vector(pos, 4, where)
        if count > limit:
            raise self.buf.fail(f"{where} has {count} entries; at most {limit} are supported")
        return [self.buf.table(self._target(start + 4 * i, f"{where}[{i}]"), kind[3:-1],
                               f"{where}[{i}]") for i in range(count)]

    def union(self, name: str) -> tuple[int, Table | None]:
        """(union type, its table or None) of a union field; the table's kind comes from
        :data:`BUILTIN_OPTIONS` (None when the loader does not read that type)."""
        type_code = self.get(f"{name}_type")
        pos, _, _ = self._field(name)
        kind = BUILTIN_OPTIONS.get(type_code)
        if pos is None or kind is None:
            return type_code, None
        where = f"{self.where}.{name}"
        return type_code, self.buf.table(self._target(pos, where), kind, where)

    def _target(self, pos: int, where: str) -> int:
        """Where the unsigned offset stored at ``pos`` points."""
        target = pos + self.buf.scalar("I", pos, where)
        if target >= self.buf.size:
            raise self.buf.fail(f"{where} points to byte {target}, past the end of the file "
                                f"({self.buf.size} bytes)")
        return target

    def _vector(self, pos: int, element_size: int, where: str) -> tuple[int, int]:
        """(first element's position, element count) of the vector referenced at ``pos``."""
        start = self._target(pos, where)
        count = self.buf.scalar("I", start, f"{where} length")
        if start + 4 + count * element_size > self.buf.size:
            raise self.buf.fail(f"{where}: a vector of {count} x {element_size} bytes at byte "
                                f"{start} runs past the end of the file ({self.buf.size} bytes)")
        return start + 4, count


__all__ = [
    "ACTIVATION_NAMES",
    "BUILTIN_OPERATOR_NAMES",
    "BUILTIN_OPTIONS",
    "FILE_IDENTIFIER",
    "MAX_VECTOR_ELEMENTS",
    "PADDING_NAMES",
    "PLACEHOLDER_FOR_GREATER_OP_CODES",
    "SCHEMA_VERSION",
    "SLOTS",
    "TENSOR_TYPE_NAMES",
    "FlatBufferFile",
    "Table",
    "builtin_operator_name",
]
