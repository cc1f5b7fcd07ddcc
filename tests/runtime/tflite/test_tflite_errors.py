"""Bad ``.tflite`` input raises a clear edgefw error naming the file, operator, tensor or
field, and what is supported — never an IndexError, a crash or a huge allocation."""

from __future__ import annotations

import numpy as np
import pytest

import runtime
from edgefw.errors import GraphError, ModelFormatError, UnsupportedOpError
from runtime.loaders.tflite_loader import supported_builtin_ops
from tests.runtime.tflite.tflite_builder import (
    FIXTURES,
    TFLiteBuilder,
    options,
    pack,
    schema,
    unpack,
)


def relu_model() -> TFLiteBuilder:
    b = TFLiteBuilder()
    x = b.input("x", "float32", [2, 3])
    y = b.tensor("y", "float32", [2, 3])
    b.op("RELU", [x], [y])
    b.output(y)
    return b


def test_missing_file_and_wrong_argument(tmp_path):
    with pytest.raises(ModelFormatError, match="not found"):
        runtime.load_tflite(tmp_path / "nope.tflite")
    with pytest.raises(ModelFormatError, match="needs a path or the file's bytes"):
        runtime.load_tflite(12)


def test_other_files_are_not_tflite(tmp_path):
    onnx_bytes = (FIXTURES.parent / "onnx" / "mlp_ts17.onnx").read_bytes()
    with pytest.raises(ModelFormatError, match="not a TFLite model"):
        runtime.load_tflite(onnx_bytes)
    path = tmp_path / "empty.tflite"
    path.write_bytes(b"")
    with pytest.raises(ModelFormatError, match=f"{path}.*0 bytes"):
        runtime.InferenceSession(path)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.9, 0.99])
def test_truncated_files_name_what_is_missing(fraction):
    data = (FIXTURES / "cnn_int8.tflite").read_bytes()
    with pytest.raises(ModelFormatError, match="<tflite bytes>: .*(outside|past the end|"
                                               "does not fit)"):
        runtime.load_tflite(data[: int(len(data) * fraction)])


def test_schema_version():
    model = unpack(relu_model().build())
    model.version = 2
    with pytest.raises(ModelFormatError, match="schema version 2; edgefw reads version 3"):
        runtime.load_tflite(pack(model))


def test_unsupported_op_lists_the_supported_builtins():
    b = TFLiteBuilder()
    x = b.input("x", "float32", [1, 4, 4, 2])
    y = b.tensor("y", "float32", [1, 8, 8, 2])
    b.op("RESIZE_BILINEAR", [x, b.const("size", np.int32([8, 8]))], [y])
    b.output(y)
    with pytest.raises(UnsupportedOpError, match=r"operator #0 \(RESIZE_BILINEAR v1\) is not "
                                                 r"supported.*CONV_2D.*FULLY_CONNECTED"):
        runtime.load_tflite(b.build())
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SHAPE", "STRIDED_SLICE",
            "PACK", "RESHAPE", "QUANTIZE", "DEQUANTIZE"} <= set(supported_builtin_ops())


def test_custom_ops_and_unknown_codes():
    model = unpack(relu_model().build())
    model.operatorCodes[0].builtinCode = model.operatorCodes[0].deprecatedBuiltinCode = 32
    model.operatorCodes[0].customCode = "MyFancyOp"
    with pytest.raises(UnsupportedOpError, match="custom op 'MyFancyOp'"):
        runtime.load_tflite(pack(model))
    model.operatorCodes[0].builtinCode = 4000
    model.operatorCodes[0].deprecatedBuiltinCode = 127
    with pytest.raises(UnsupportedOpError, match="builtin code 4000"):
        runtime.load_tflite(pack(model))


def test_tensor_indices_out_of_range():
    model = unpack(relu_model().build())
    model.subgraphs[0].operators[0].inputs = [7]
    with pytest.raises(ModelFormatError, match="operator #0 .RELU. inputs name tensor 7; the "
                                               "subgraph has 2 tensors"):
        runtime.load_tflite(pack(model))
    model = unpack(relu_model().build())
    model.subgraphs[0].outputs = [-3]
    with pytest.raises(ModelFormatError, match="outputs name tensor -3"):
        runtime.load_tflite(pack(model))


def test_buffer_size_must_match_the_shape():
    b = TFLiteBuilder()
    x = b.input("x", "float32", [2, 3])
    k = b.const("k", np.ones(3, np.float32))
    b.tensors[k].shape = [4]
    y = b.tensor("y", "float32", [2, 3])
    b.op("ADD", [x, k], [y])
    b.output(y)
    with pytest.raises(ModelFormatError, match="tensor 1 'k': buffer 1 has 12 bytes but shape "
                                               r"\[4\] of float32 needs 16"):
        runtime.load_tflite(b.build())


def test_operators_reading_undefined_or_redefined_tensors():
    b = TFLiteBuilder()
    x = b.input("x", "float32", [2, 3])
    y, z = b.tensor("y", "float32", [2, 3]), b.tensor("z", "float32", [2, 3])
    b.op("RELU", [y], [z])  # y is written only by the next operator
    b.op("RELU", [x], [y])
    b.output(z)
    with pytest.raises(GraphError, match="operator #0 .* reads tensor 1 'y', which no earlier "
                                         "operator"):
        runtime.load_tflite(b.build())
    b = relu_model()
    b.op("TANH", [0], [1])
    with pytest.raises(GraphError, match="operator #1 .* writes tensor 1 'y', which is already "
                                         "defined"):
        runtime.load_tflite(b.build())


def test_unsupported_tensor_kinds():
    model = unpack(relu_model().build())
    model.subgraphs[0].tensors[0].isVariable = True
    with pytest.raises(UnsupportedOpError, match="variable tensor"):
        runtime.load_tflite(pack(model))
    model = unpack(relu_model().build())
    model.subgraphs[0].tensors[0].type = schema.TensorType.STRING
    with pytest.raises(UnsupportedOpError, match="graph input 'x' has type string"):
        runtime.load_tflite(pack(model))


def test_absurd_shapes_are_refused_before_allocating():
    b = relu_model()
    b.tensors[0].shape = [1 << 20, 1 << 20, 1 << 20]
    with pytest.raises(ModelFormatError, match="more than"):
        runtime.load_tflite(b.build())
    b = TFLiteBuilder()
    x = b.input("x", "float32", [1, 1])
    y = b.tensor("y", "float32", [1, 1])  # what it computes is checked, not what it declares
    b.op("BROADCAST_TO", [x, b.const("shape", np.int32([1 << 20, 1 << 20]))], [y], version=2)
    b.output(y)
    with pytest.raises(ModelFormatError, match=r"output .* has shape \[1048576, 1048576\]"):
        runtime.load_tflite(b.build())


def test_quantization_parameters_must_fit():
    b = TFLiteBuilder()
    x = b.input("x", "int8", [2, 3], scale=[0.1, 0.2], zero_point=[0, 0], axis=0)
    b.tensors[x].quantization.scale = [0.1, 0.2, 0.3]
    y = b.tensor("y", "int8", [2, 3], scale=0.1)
    b.op("RESHAPE", [x, b.const("s", np.int32([2, 3]))], [y])
    b.output(y)
    with pytest.raises(ModelFormatError, match="3 quantization scales but 2 zero points"):
        runtime.load_tflite(b.build())
    b.tensors[x].quantization.zeroPoint = [0, 0, 0]
    with pytest.raises(ModelFormatError, match="3 per-channel scales along axis 0 do not fit"):
        runtime.load_tflite(b.build())


def test_options_of_the_wrong_kind_and_bad_values():
    def conv(opts):
        b = TFLiteBuilder()
        x = b.input("x", "float32", [1, 4, 4, 1])
        y = b.tensor("y", "float32", [1, 4, 4, 1])
        b.op("CONV_2D", [x, b.const("w", np.ones((1, 1, 1, 1), np.float32)), -1], [y], opts)
        b.output(y)
        return b.build()

    with pytest.raises(ModelFormatError, match="carries Pool2DOptions, not Conv2DOptions"):
        runtime.load_tflite(conv(options("Pool2DOptions")))
    with pytest.raises(ModelFormatError, match=r"strides \[0, 1\] must be positive"):
        runtime.load_tflite(conv(options("Conv2DOptions", strideW=1, strideH=0)))
    with pytest.raises(UnsupportedOpError, match="fused activation SIGN_BIT"):
        runtime.load_tflite(conv(options("Conv2DOptions", strideW=1, strideH=1,
                                         fusedActivationFunction=5)))


def test_declared_output_type_must_match_what_the_op_computes():
    b = TFLiteBuilder()
    x = b.input("x", "float32", [2, 3])
    y = b.tensor("y", "int32", [2, 3])
    b.op("RELU", [x], [y])
    b.output(y)
    with pytest.raises(ModelFormatError, match="declared int32 but the op computes float32"):
        runtime.load_tflite(b.build())


def test_errors_from_a_path_name_the_file(tmp_path):
    path = tmp_path / "broken.tflite"
    path.write_bytes((FIXTURES / "mlp_float32.tflite").read_bytes()[:100])
    with pytest.raises(ModelFormatError, match=f"^{path}: "):
        runtime.InferenceSession(path)
