"""The loader's bounds-checked FlatBuffer reader (``runtime/loaders/tflite_schema.py``) on a
fixture (against the generated reader ai-edge-litert ships) and on corrupt bytes. The schema
tables it reads with are checked in ``tests/ir/test_tflite_schema.py``."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from edgefw.errors import ModelFormatError
from runtime.loaders import tflite_schema as ours
from tests.runtime.tflite.tflite_builder import FIXTURES, TFLiteBuilder, schema


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
    assert tensor.get("external_buffer") == 0 and tensor.tables("variant_tensors") == []
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
