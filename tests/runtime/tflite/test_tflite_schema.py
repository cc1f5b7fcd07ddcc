"""The loader's copy of TFLite's schema (``runtime/loaders/tflite_schema.py``) against the
generated code ai-edge-litert ships, and the bounds-checked reader on hand-made bytes."""

from __future__ import annotations

import functools
import inspect
import re
import struct

import numpy as np
import pytest

from edgefw.errors import ModelFormatError
from runtime.loaders import tflite_schema as ours
from tests.runtime.tflite.tflite_builder import FIXTURES, TFLiteBuilder, schema


def _enum(cls) -> dict[str, int]:
    return {k: v for k, v in vars(cls).items() if not k.startswith("_")}


def test_builtin_operator_codes_match_the_generated_schema():
    generated = _enum(schema.BuiltinOperator)
    for code, name in ours.BUILTIN_OPERATOR_NAMES.items():
        assert generated[name] == code, name
    # every generated code below the StableHLO range is known
    assert {v for v in generated.values() if v < 162} == set(ours.BUILTIN_OPERATOR_NAMES)


def test_tensor_types_and_options_match_the_generated_schema():
    generated = {k.lower(): v for k, v in _enum(schema.TensorType).items()}
    aliases = {"float32": "float32", "float16": "float16", "float64": "float64",
               "bool": "bool", "complex64": "complex64", "complex128": "complex128"}
    for code, name in ours.TENSOR_TYPE_NAMES.items():
        assert generated[aliases.get(name, name)] == code, name
    options = _enum(schema.BuiltinOptions)
    for index, table in ours.BUILTIN_OPTIONS.items():
        assert options[table] == index, table
    assert _enum(schema.ActivationFunctionType) == {v: k for k, v in
                                                    ours.ACTIVATION_NAMES.items()}
    assert _enum(schema.Padding) == {v: k for k, v in ours.PADDING_NAMES.items()}


@functools.cache
def _generated_classes() -> dict[str, str]:
    """Generated class name -> its source (the module is read once)."""
    source = inspect.getsource(schema)
    parts = re.split(r"^class (\w+)\(object\):", source, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _generated_offsets(table: str) -> dict[str, int]:
    """field (snake_case) -> vtable offset, read from the generated reader class."""
    found = {}
    for method, offset in re.findall(r"def (\w+)\(self[^)]*\):\n\s+o = flatbuffers\.number_"
                                     r"types\.UOffsetTFlags\.py_type\(self\._tab\.Offset\((\d+)",
                                     _generated_classes()[table]):
        base = re.sub(r"(AsNumpy|Length|IsNone)$", "", method)
        found[re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()] = int(offset)
    return found


@pytest.mark.parametrize("table", sorted(ours.SLOTS))
def test_field_slots_match_the_generated_schema(table):
    generated = _generated_offsets(table)
    for field, (slot, _, _) in ours.SLOTS[table].items():
        if field not in generated and field.startswith("deprecated_"):
            continue  # generated code drops accessors of deprecated fields
        assert generated[field] == 4 + 2 * slot, f"{table}.{field}"


def test_reader_reads_a_fixture():
    data = (FIXTURES / "cnn_int8.tflite").read_bytes()
    model = ours.FlatBufferFile(data, "cnn").root()
    generated = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    assert model.get("version") == generated.version == 3
    sub = model.tables("subgraphs")[0]
    tensors = sub.tables("tensors")
    assert len(tensors) == len(generated.subgraphs[0].tensors)
    for mine, theirs in zip(tensors, generated.subgraphs[0].tensors, strict=True):
        assert mine.get("name") == theirs.name.decode()
        assert mine.get("shape").tolist() == list(theirs.shape)
        assert mine.get("type") == theirs.type
        q = mine.get("quantization")
        if theirs.quantization is not None and theirs.quantization.scale is not None:
            np.testing.assert_array_equal(q.get("scale"), theirs.quantization.scale)
    op_type, opts = sub.tables("operators")[0].union("builtin_options")
    assert op_type == schema.BuiltinOptions.Conv2DOptions and opts.kind == "Conv2DOptions"
    assert opts.get("stride_w") == 1 and opts.get("fused_activation_function") == 1


def test_absent_fields_read_as_defaults_and_vectors_are_views():
    b = TFLiteBuilder()
    b.output(b.input("x", "float32", [2, 3]))
    data = b.build()
    model = ours.FlatBufferFile(data, "m").root()
    tensor = model.tables("subgraphs")[0].tables("tensors")[0]
    assert tensor.get("is_variable") is False and tensor.get("shape_signature") is None
    assert tensor.get("quantization") is None and not tensor.has("sparsity")
    shape = tensor.get("shape")
    assert shape.tolist() == [2, 3] and not shape.flags.writeable


@pytest.mark.parametrize("data, message", [
    (b"", "has 0 bytes"),
    (b"\x10\x00\x00\x00TFL3", "lies outside the file"),
    (b"\x08\x00\x00\x00XXXX\x00\x00\x00\x00", "not a TFLite model"),
    (struct.pack("<I4si", 8, b"TFL3", -100), "vtable"),
    (struct.pack("<I4siHH", 8, b"TFL3", -4, 4, 200), "does not fit in the file"),
])
def test_reader_rejects_corrupt_headers(data, message):
    with pytest.raises(ModelFormatError, match=message):
        ours.FlatBufferFile(data, "bad.tflite").root()


def test_reader_rejects_vectors_past_the_end():
    b = TFLiteBuilder()
    b.output(b.input("x", "float32", [2, 3]))
    data = bytearray(b.build())
    model = ours.FlatBufferFile(bytes(data), "m").root()
    tensor = model.tables("subgraphs")[0].tables("tensors")[0]
    pos, _, _ = tensor._field("shape")
    start = pos + struct.unpack_from("<I", data, pos)[0]
    struct.pack_into("<I", data, start, 0x7FFFFFFF)  # the shape vector's length
    tensor = ours.FlatBufferFile(bytes(data), "m").root().tables("subgraphs")[0] \
        .tables("tensors")[0]
    with pytest.raises(ModelFormatError, match="runs past the end of the file"):
        tensor.get("shape")
