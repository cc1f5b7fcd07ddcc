"""What a ``.tflite`` FlatBuffer holds, written down once from TFLite's ``schema.fbs``
(schema version 3): the file identifier, enum values, and for each table the fields in
slot order with their types and defaults.

The exporter (``exporter.tflite``) writes files from these tables and the runtime's loader
(``runtime.loaders.tflite_schema``) reads them with the same ones; they live in the IR
package because both may import it and neither may import the other. Only the standard
library is used, so a device loads it with the runtime. ``tests/ir/test_tflite_schema.py``
checks every value here against the generated code that ai-edge-litert ships
(``ai_edge_litert.schema_py_generated``).

    >>> BUILTIN_OPERATORS["FULLY_CONNECTED"], builtin_operator_name(150)
    (9, 'GELU')
    >>> builtin_operator_name(4000), BUILTIN_OPERATOR_NAMES[3]
    ('builtin code 4000', 'CONV_2D')
    >>> field_slot("Tensor", "shape_signature"), TENSOR_TYPES["int8"], TENSOR_TYPE_NAMES[9]
    (7, 9, 'int8')
    >>> OPERATOR_OPTIONS["CONV_2D"], BUILTIN_OPTIONS["Conv2DOptions"]
    ('Conv2DOptions', 1)
    >>> ACTIVATION_NAMES[ACTIVATIONS["RELU6"]], PADDING_NAMES[1]
    ('RELU6', 'VALID')
"""

from __future__ import annotations

#: ``file_identifier``: bytes 4..8 of every ``.tflite`` file.
FILE_IDENTIFIER = b"TFL3"
#: The schema version in ``Model.version`` (written, and the one the loader reads).
SCHEMA_VERSION = 3
#: ``OperatorCode.deprecated_builtin_code`` (an int8) holds codes below this; larger codes
#: store this placeholder there and the real code in ``builtin_code``.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127

#: ``BuiltinOperator`` name -> code (StableHLO ops left out).
BUILTIN_OPERATORS: dict[str, int] = {
    "ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4,
    "DEPTH_TO_SPACE": 5, "DEQUANTIZE": 6, "EMBEDDING_LOOKUP": 7, "FLOOR": 8, "FULLY_CONNECTED": 9,
    "HASHTABLE_LOOKUP": 10, "L2_NORMALIZATION": 11, "L2_POOL_2D": 12,
    "LOCAL_RESPONSE_NORMALIZATION": 13, "LOGISTIC": 14, "LSH_PROJECTION": 15, "LSTM": 16,
    "MAX_POOL_2D": 17, "MUL": 18, "RELU": 19, "RELU_N1_TO_1": 20, "RELU6": 21, "RESHAPE": 22,
    "RESIZE_BILINEAR": 23, "RNN": 24, "SOFTMAX": 25, "SPACE_TO_DEPTH": 26, "SVDF": 27, "TANH": 28,
    "CONCAT_EMBEDDINGS": 29, "SKIP_GRAM": 30, "CALL": 31, "CUSTOM": 32,
    "EMBEDDING_LOOKUP_SPARSE": 33, "PAD": 34, "UNIDIRECTIONAL_SEQUENCE_RNN": 35, "GATHER": 36,
    "BATCH_TO_SPACE_ND": 37, "SPACE_TO_BATCH_ND": 38, "TRANSPOSE": 39, "MEAN": 40, "SUB": 41,
    "DIV": 42, "SQUEEZE": 43, "UNIDIRECTIONAL_SEQUENCE_LSTM": 44, "STRIDED_SLICE": 45,
    "BIDIRECTIONAL_SEQUENCE_RNN": 46, "EXP": 47, "TOPK_V2": 48, "SPLIT": 49, "LOG_SOFTMAX": 50,
    "DELEGATE": 51, "BIDIRECTIONAL_SEQUENCE_LSTM": 52, "CAST": 53, "PRELU": 54, "MAXIMUM": 55,
    "ARG_MAX": 56, "MINIMUM": 57, "LESS": 58, "NEG": 59, "PADV2": 60, "GREATER": 61,
    "GREATER_EQUAL": 62, "LESS_EQUAL": 63, "SELECT": 64, "SLICE": 65, "SIN": 66,
    "TRANSPOSE_CONV": 67, "SPARSE_TO_DENSE": 68, "TILE": 69, "EXPAND_DIMS": 70, "EQUAL": 71,
    "NOT_EQUAL": 72, "LOG": 73, "SUM": 74, "SQRT": 75, "RSQRT": 76, "SHAPE": 77, "POW": 78,
    "ARG_MIN": 79, "FAKE_QUANT": 80, "REDUCE_PROD": 81, "REDUCE_MAX": 82, "PACK": 83,
    "LOGICAL_OR": 84, "ONE_HOT": 85, "LOGICAL_AND": 86, "LOGICAL_NOT": 87, "UNPACK": 88,
    "REDUCE_MIN": 89, "FLOOR_DIV": 90, "REDUCE_ANY": 91, "SQUARE": 92, "ZEROS_LIKE": 93,
    "FILL": 94, "FLOOR_MOD": 95, "RANGE": 96, "RESIZE_NEAREST_NEIGHBOR": 97, "LEAKY_RELU": 98,
    "SQUARED_DIFFERENCE": 99, "MIRROR_PAD": 100, "ABS": 101, "SPLIT_V": 102, "UNIQUE": 103,
    "CEIL": 104, "REVERSE_V2": 105, "ADD_N": 106, "GATHER_ND": 107, "COS": 108, "WHERE": 109,
    "RANK": 110, "ELU": 111, "REVERSE_SEQUENCE": 112, "MATRIX_DIAG": 113, "QUANTIZE": 114,
    "MATRIX_SET_DIAG": 115, "ROUND": 116, "HARD_SWISH": 117, "IF": 118, "WHILE": 119,
    "NON_MAX_SUPPRESSION_V4": 120, "NON_MAX_SUPPRESSION_V5": 121, "SCATTER_ND": 122,
    "SELECT_V2": 123, "DENSIFY": 124, "SEGMENT_SUM": 125, "BATCH_MATMUL": 126,
    "PLACEHOLDER_FOR_GREATER_OP_CODES": 127, "CUMSUM": 128, "CALL_ONCE": 129, "BROADCAST_TO": 130,
    "RFFT2D": 131, "CONV_3D": 132, "IMAG": 133, "REAL": 134, "COMPLEX_ABS": 135, "HASHTABLE": 136,
    "HASHTABLE_FIND": 137, "HASHTABLE_IMPORT": 138, "HASHTABLE_SIZE": 139, "REDUCE_ALL": 140,
    "CONV_3D_TRANSPOSE": 141, "VAR_HANDLE": 142, "READ_VARIABLE": 143, "ASSIGN_VARIABLE": 144,
    "BROADCAST_ARGS": 145, "RANDOM_STANDARD_NORMAL": 146, "BUCKETIZE": 147, "RANDOM_UNIFORM": 148,
    "MULTINOMIAL": 149, "GELU": 150, "DYNAMIC_UPDATE_SLICE": 151, "RELU_0_TO_1": 152,
    "UNSORTED_SEGMENT_PROD": 153, "UNSORTED_SEGMENT_MAX": 154, "UNSORTED_SEGMENT_SUM": 155,
    "ATAN2": 156, "UNSORTED_SEGMENT_MIN": 157, "SIGN": 158, "BITCAST": 159, "BITWISE_XOR": 160,
    "RIGHT_SHIFT": 161, "DILATE": 203, "REDUCE_WINDOW": 205,
}  # fmt: skip

#: ``BuiltinOperator`` code -> name.
BUILTIN_OPERATOR_NAMES: dict[int, str] = {code: name for name, code in BUILTIN_OPERATORS.items()}

#: ``BuiltinOptions`` union: options table name -> union type index.
BUILTIN_OPTIONS: dict[str, int] = {
    "NONE": 0, "Conv2DOptions": 1, "DepthwiseConv2DOptions": 2, "ConcatEmbeddingsOptions": 3,
    "LSHProjectionOptions": 4, "Pool2DOptions": 5, "SVDFOptions": 6, "RNNOptions": 7,
    "FullyConnectedOptions": 8, "SoftmaxOptions": 9, "ConcatenationOptions": 10, "AddOptions": 11,
    "L2NormOptions": 12, "LocalResponseNormalizationOptions": 13, "LSTMOptions": 14,
    "ResizeBilinearOptions": 15, "CallOptions": 16, "ReshapeOptions": 17, "SkipGramOptions": 18,
    "SpaceToDepthOptions": 19, "EmbeddingLookupSparseOptions": 20, "MulOptions": 21,
    "PadOptions": 22, "GatherOptions": 23, "BatchToSpaceNDOptions": 24,
    "SpaceToBatchNDOptions": 25, "TransposeOptions": 26, "ReducerOptions": 27, "SubOptions": 28,
    "DivOptions": 29, "SqueezeOptions": 30, "SequenceRNNOptions": 31, "StridedSliceOptions": 32,
    "ExpOptions": 33, "TopKV2Options": 34, "SplitOptions": 35, "LogSoftmaxOptions": 36,
    "CastOptions": 37, "DequantizeOptions": 38, "MaximumMinimumOptions": 39, "ArgMaxOptions": 40,
    "LessOptions": 41, "NegOptions": 42, "PadV2Options": 43, "GreaterOptions": 44,
    "GreaterEqualOptions": 45, "LessEqualOptions": 46, "SelectOptions": 47, "SliceOptions": 48,
    "TransposeConvOptions": 49, "SparseToDenseOptions": 50, "TileOptions": 51,
    "ExpandDimsOptions": 52, "EqualOptions": 53, "NotEqualOptions": 54, "ShapeOptions": 55,
    "PowOptions": 56, "ArgMinOptions": 57, "FakeQuantOptions": 58, "PackOptions": 59,
    "LogicalOrOptions": 60, "OneHotOptions": 61, "LogicalAndOptions": 62,
    "LogicalNotOptions": 63, "UnpackOptions": 64, "FloorDivOptions": 65, "SquareOptions": 66,
    "ZerosLikeOptions": 67, "FillOptions": 68, "BidirectionalSequenceLSTMOptions": 69,
    "BidirectionalSequenceRNNOptions": 70, "UnidirectionalSequenceLSTMOptions": 71,
    "FloorModOptions": 72, "RangeOptions": 73, "ResizeNearestNeighborOptions": 74,
    "LeakyReluOptions": 75, "SquaredDifferenceOptions": 76, "MirrorPadOptions": 77,
    "AbsOptions": 78, "SplitVOptions": 79, "UniqueOptions": 80, "ReverseV2Options": 81,
    "AddNOptions": 82, "GatherNdOptions": 83, "CosOptions": 84, "WhereOptions": 85,
    "RankOptions": 86, "ReverseSequenceOptions": 87, "MatrixDiagOptions": 88,
    "QuantizeOptions": 89, "MatrixSetDiagOptions": 90, "HardSwishOptions": 91, "IfOptions": 92,
    "WhileOptions": 93, "DepthToSpaceOptions": 94, "NonMaxSuppressionV4Options": 95,
    "NonMaxSuppressionV5Options": 96, "ScatterNdOptions": 97, "SelectV2Options": 98,
    "DensifyOptions": 99, "SegmentSumOptions": 100, "BatchMatMulOptions": 101,
    "CumsumOptions": 102, "CallOnceOptions": 103, "BroadcastToOptions": 104,
    "Rfft2dOptions": 105, "Conv3DOptions": 106, "HashtableOptions": 107,
    "HashtableFindOptions": 108, "HashtableImportOptions": 109, "HashtableSizeOptions": 110,
    "VarHandleOptions": 111, "ReadVariableOptions": 112, "AssignVariableOptions": 113,
    "RandomOptions": 114, "BucketizeOptions": 115, "GeluOptions": 116,
    "DynamicUpdateSliceOptions": 117, "UnsortedSegmentProdOptions": 118,
    "UnsortedSegmentMaxOptions": 119, "UnsortedSegmentMinOptions": 120,
    "UnsortedSegmentSumOptions": 121, "ATan2Options": 122, "SignOptions": 123,
    "BitcastOptions": 124, "BitwiseXorOptions": 125, "RightShiftOptions": 126,
}  # fmt: skip

#: ``TensorType`` by edgefw dtype name (``edgefw.ir.dtypes``).
TENSOR_TYPES: dict[str, int] = {
    "float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "string": 5, "bool": 6,
    "int16": 7, "complex64": 8, "int8": 9, "float64": 10, "complex128": 11, "uint64": 12,
    "resource": 13, "variant": 14, "uint32": 15, "uint16": 16, "int4": 17, "bfloat16": 18,
}  # fmt: skip
#: edgefw dtype name by ``TensorType``.
TENSOR_TYPE_NAMES: dict[int, str] = {code: name for name, code in TENSOR_TYPES.items()}

#: ``ActivationFunctionType``: the activation an op applies to its own output.
ACTIVATIONS: dict[str, int] = {
    "NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4, "SIGN_BIT": 5,
}
#: ``ActivationFunctionType`` code -> name.
ACTIVATION_NAMES: dict[int, str] = {code: name for name, code in ACTIVATIONS.items()}
#: ``Padding``.
PADDINGS: dict[str, int] = {"SAME": 0, "VALID": 1}
#: ``Padding`` code -> name.
PADDING_NAMES: dict[int, str] = {code: name for name, code in PADDINGS.items()}
#: ``MirrorPadMode``.
MIRROR_PAD_MODES: dict[str, int] = {"REFLECT": 0, "SYMMETRIC": 1}

#: The options table each builtin op carries (ops absent here carry none).
OPERATOR_OPTIONS: dict[str, str] = {
    "ADD": "AddOptions", "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
    "L2_POOL_2D": "Pool2DOptions", "CONCATENATION": "ConcatenationOptions",
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions", "SOFTMAX": "SoftmaxOptions",
    "MUL": "MulOptions", "SUB": "SubOptions", "DIV": "DivOptions", "RESHAPE": "ReshapeOptions",
    "PAD": "PadOptions", "PADV2": "PadV2Options", "GATHER": "GatherOptions",
    "TRANSPOSE": "TransposeOptions", "MEAN": "ReducerOptions", "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions", "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions", "REDUCE_ANY": "ReducerOptions",
    "SQUEEZE": "SqueezeOptions", "STRIDED_SLICE": "StridedSliceOptions", "EXP": "ExpOptions",
    "SPLIT": "SplitOptions", "SPLIT_V": "SplitVOptions", "LOG_SOFTMAX": "LogSoftmaxOptions",
    "CAST": "CastOptions", "DEQUANTIZE": "DequantizeOptions", "QUANTIZE": "QuantizeOptions",
    "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions",
    "LESS": "LessOptions", "NEG": "NegOptions", "GREATER": "GreaterOptions",
    "GREATER_EQUAL": "GreaterEqualOptions", "LESS_EQUAL": "LessEqualOptions",
    "EQUAL": "EqualOptions", "NOT_EQUAL": "NotEqualOptions", "SELECT_V2": "SelectV2Options",
    "SLICE": "SliceOptions", "TILE": "TileOptions", "EXPAND_DIMS": "ExpandDimsOptions",
    "SHAPE": "ShapeOptions", "POW": "PowOptions", "PACK": "PackOptions",
    "UNPACK": "UnpackOptions", "LOGICAL_NOT": "LogicalNotOptions", "ABS": "AbsOptions",
    "LEAKY_RELU": "LeakyReluOptions", "MIRROR_PAD": "MirrorPadOptions",
    "SQUARE": "SquareOptions", "SQUARED_DIFFERENCE": "SquaredDifferenceOptions",
    "HARD_SWISH": "HardSwishOptions", "BATCH_MATMUL": "BatchMatMulOptions",
    "BROADCAST_TO": "BroadcastToOptions", "GELU": "GeluOptions", "WHERE": "WhereOptions",
    "ARG_MAX": "ArgMaxOptions", "ARG_MIN": "ArgMinOptions", "FILL": "FillOptions",
    "RANGE": "RangeOptions", "CUMSUM": "CumsumOptions",
}  # fmt: skip

# Field types: a scalar ("int8", "uint32", "bool", "float32", ...), "string", a table name,
# "[T]" for a vector of T, and "union" (its type byte is the field before it, "<name>_type").
_TABLE_FIELDS: dict[str, tuple[tuple[str, str, object], ...]] = {
    "Model": (
        ("version", "uint32", 0), ("operator_codes", "[OperatorCode]", None),
        ("subgraphs", "[SubGraph]", None), ("description", "string", None),
        ("buffers", "[Buffer]", None), ("metadata_buffer", "[int32]", None),
        ("metadata", "[Metadata]", None), ("signature_defs", "[SignatureDef]", None),
    ),
    "SubGraph": (
        ("tensors", "[Tensor]", None), ("inputs", "[int32]", None), ("outputs", "[int32]", None),
        ("operators", "[Operator]", None), ("name", "string", None),
        ("debug_metadata_index", "int32", -1),
    ),
    "Tensor": (
        ("shape", "[int32]", None), ("type", "int8", 0), ("buffer", "uint32", 0),
        ("name", "string", None), ("quantization", "QuantizationParameters", None),
        ("is_variable", "bool", False), ("sparsity", "SparsityParameters", None),
        ("shape_signature", "[int32]", None), ("has_rank", "bool", False),
        ("variant_tensors", "[VariantSubType]", None), ("external_buffer", "uint32", 0),
    ),
    # Fields of these two are left out: neither the exporter nor the loader uses them.
    "SparsityParameters": (),
    "VariantSubType": (),
    "QuantizationParameters": (
        ("min", "[float32]", None), ("max", "[float32]", None), ("scale", "[float32]", None),
        ("zero_point", "[int64]", None), ("details_type", "uint8", 0),
        ("details", "union", None), ("quantized_dimension", "int32", 0),
    ),
    # Buffer.data is declared (force_align: 16): constant data can be used in place from a
    # memory-mapped file. offset/size locate data stored after the FlatBuffer (> 2 GiB).
    "Buffer": (("data", "[uint8]", None), ("offset", "uint64", 0), ("size", "uint64", 0)),
    "OperatorCode": (
        ("deprecated_builtin_code", "int8", 0), ("custom_code", "string", None),
        ("version", "int32", 1), ("builtin_code", "int32", 0),
    ),
    "Operator": (
        ("opcode_index", "uint32", 0), ("inputs", "[int32]", None), ("outputs", "[int32]", None),
        ("builtin_options_type", "uint8", 0), ("builtin_options", "union", None),
        ("custom_options", "[uint8]", None), ("custom_options_format", "int8", 0),
        ("mutating_variable_inputs", "[bool]", None), ("intermediates", "[int32]", None),
    ),
    "SignatureDef": (
        ("inputs", "[TensorMap]", None), ("outputs", "[TensorMap]", None),
        ("signature_key", "string", None), ("deprecated_tag", "string", None),
        ("subgraph_index", "uint32", 0),
    ),
    "TensorMap": (("name", "string", None), ("tensor_index", "uint32", 0)),
    "Metadata": (("name", "string", None), ("buffer", "uint32", 0)),
    "Conv2DOptions": (
        ("padding", "int8", 0), ("stride_w", "int32", 0), ("stride_h", "int32", 0),
        ("fused_activation_function", "int8", 0), ("dilation_w_factor", "int32", 1),
        ("dilation_h_factor", "int32", 1), ("quantized_bias_type", "int8", 0),
    ),
    "DepthwiseConv2DOptions": (
        ("padding", "int8", 0), ("stride_w", "int32", 0), ("stride_h", "int32", 0),
        ("depth_multiplier", "int32", 0), ("fused_activation_function", "int8", 0),
        ("dilation_w_factor", "int32", 1), ("dilation_h_factor", "int32", 1),
    ),
    "Pool2DOptions": (
        ("padding", "int8", 0), ("stride_w", "int32", 0), ("stride_h", "int32", 0),
        ("filter_width", "int32", 0), ("filter_height", "int32", 0),
        ("fused_activation_function", "int8", 0),
    ),
    "FullyConnectedOptions": (
        ("fused_activation_function", "int8", 0), ("weights_format", "int8", 0),
        ("keep_num_dims", "bool", False), ("asymmetric_quantize_inputs", "bool", False),
        ("quantized_bias_type", "int8", 0),
    ),
    "SoftmaxOptions": (("beta", "float32", 0.0),),
    "ConcatenationOptions": (("axis", "int32", 0), ("fused_activation_function", "int8", 0)),
    "AddOptions": (("fused_activation_function", "int8", 0), ("pot_scale_int16", "bool", True)),
    "SubOptions": (("fused_activation_function", "int8", 0), ("pot_scale_int16", "bool", True)),
    "MulOptions": (("fused_activation_function", "int8", 0),),
    "DivOptions": (("fused_activation_function", "int8", 0),),
    "ReshapeOptions": (("new_shape", "[int32]", None),),
    "ReducerOptions": (("keep_dims", "bool", False),),
    "StridedSliceOptions": (
        ("begin_mask", "int32", 0), ("end_mask", "int32", 0), ("ellipsis_mask", "int32", 0),
        ("new_axis_mask", "int32", 0), ("shrink_axis_mask", "int32", 0),
        ("offset", "bool", False),
    ),
    "SqueezeOptions": (("squeeze_dims", "[int32]", None),),
    "GatherOptions": (("axis", "int32", 0), ("batch_dims", "int32", 0)),
    "SplitOptions": (("num_splits", "int32", 0),),
    "SplitVOptions": (("num_splits", "int32", 0),),
    "CastOptions": (("in_data_type", "int8", 0), ("out_data_type", "int8", 0)),
    "BatchMatMulOptions": (
        ("adj_x", "bool", False), ("adj_y", "bool", False),
        ("asymmetric_quantize_inputs", "bool", False),
    ),
    "GeluOptions": (("approximate", "bool", False),),
    "LeakyReluOptions": (("alpha", "float32", 0.0),),
    "MirrorPadOptions": (("mode", "int8", 0),),
    "PackOptions": (("values_count", "int32", 0), ("axis", "int32", 0)),
    "UnpackOptions": (("num", "int32", 0), ("axis", "int32", 0)),
    "ShapeOptions": (("out_type", "int8", 0),),
    "ArgMaxOptions": (("output_type", "int8", 0),),
    "ArgMinOptions": (("output_type", "int8", 0),),
    "CumsumOptions": (("exclusive", "bool", False), ("reverse", "bool", False)),
}

# Options tables without fields: written as empty tables so readers find the union set.
_EMPTY_OPTIONS = (
    "PadOptions", "PadV2Options", "TransposeOptions", "ExpOptions", "LogSoftmaxOptions",
    "DequantizeOptions", "QuantizeOptions", "MaximumMinimumOptions", "LessOptions",
    "NegOptions", "GreaterOptions", "GreaterEqualOptions", "LessEqualOptions", "EqualOptions",
    "NotEqualOptions", "SelectV2Options", "SliceOptions", "TileOptions", "ExpandDimsOptions",
    "PowOptions", "LogicalNotOptions", "AbsOptions", "SquareOptions",
    "SquaredDifferenceOptions", "HardSwishOptions", "BroadcastToOptions", "WhereOptions",
    "FillOptions", "RangeOptions",
)

#: Table name -> ((field, type, default), ...) in slot order (slot = position).
TABLES: dict[str, tuple[tuple[str, str, object], ...]] = {
    **_TABLE_FIELDS, **{name: () for name in _EMPTY_OPTIONS},
}

def builtin_operator_name(code: int) -> str:
    """``"CONV_2D"`` for 3; ``"builtin code 999"`` for a code this table does not know."""
    return BUILTIN_OPERATOR_NAMES.get(code, f"builtin code {code}")


def field_slot(table: str, field: str) -> int:
    """The vtable slot of ``table.field`` (its vtable entry is at byte ``4 + 2 * slot``)."""
    for slot, (name, _, _) in enumerate(TABLES[table]):
        if name == field:
            return slot
    raise KeyError(f"table {table} has no field {field!r}; fields: "
                   f"{[name for name, _, _ in TABLES[table]]}")


__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "BUILTIN_OPERATORS",
    "BUILTIN_OPERATOR_NAMES",
    "BUILTIN_OPTIONS",
    "FILE_IDENTIFIER",
    "MIRROR_PAD_MODES",
    "OPERATOR_OPTIONS",
    "PADDINGS",
    "PADDING_NAMES",
    "PLACEHOLDER_FOR_GREATER_OP_CODES",
    "SCHEMA_VERSION",
    "TABLES",
    "TENSOR_TYPES",
    "TENSOR_TYPE_NAMES",
    "builtin_operator_name",
    "field_slot",
]
