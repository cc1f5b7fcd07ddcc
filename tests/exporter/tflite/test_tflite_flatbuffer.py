"""The FlatBuffer writer and the metadata reader round-trip through the generated code that
ai-edge-litert ships (TFLite's own schema.fbs). The schema tables they use are checked in
``tests/ir/test_tflite_schema.py``."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import ModelFormatError
from exporter.tflite import read_metadata, read_metadata_buffers
from exporter.tflite.flatbuffer_writer import serialize
from exporter.tflite.model import TensorQuantization, TFLiteModel

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")


def test_model_roundtrips_through_generated_reader():
    m = TFLiteModel()
    w = m.add_constant("w", np.arange(6, dtype=np.int8).reshape(3, 2),
                       quantization=TensorQuantization(np.float32([0.5, 0.25, 0.125]),
                                                       np.zeros(3), 0))
    x = m.add_tensor("x", "float32", (1, 2), signature=(-1, 2))
    y = m.add_tensor("y", "float32", (1, 3), signature=(-1, 3))
    m.add_operator("FULLY_CONNECTED", [x, w, -1], [y], {"asymmetric_quantize_inputs": True})
    m.inputs, m.outputs = [x], [y]
    m.metadata["edgefw"] = b'{"producer": "test"}'
    data = m.to_flatbuffer()
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    sub = model.subgraphs[0]
    assert [t.name.decode() for t in sub.tensors] == ["w", "x", "y"]
    assert list(sub.tensors[1].shapeSignature) == [-1, 2]
    assert sub.tensors[0].quantization.scale.tolist() == [0.5, 0.25, 0.125]
    assert bytes(model.buffers[sub.tensors[0].buffer].data) == bytes(range(6))
    (op,) = sub.operators
    assert list(op.inputs) == [x, w, -1]
    assert op.builtinOptionsType == schema.BuiltinOptions.FullyConnectedOptions
    assert op.builtinOptions.asymmetricQuantizeInputs
    assert model.operatorCodes[0].version == 12  # hybrid, per-channel weights
    assert read_metadata_buffers(data) == {"edgefw": b'{"producer": "test"}'}
    assert read_metadata(data) == {"producer": "test"}


def test_byte_vectors_are_16_byte_aligned():
    for size in (1, 3, 17, 100):
        m = TFLiteModel()
        a = m.add_constant("a", np.ones(size, np.uint8))
        b = m.add_constant("b", np.full(5, 2, np.uint8))
        out = m.add_tensor("out", "uint8", (size,))
        m.add_operator("ADD", [a, b], [out])
        m.inputs, m.outputs = [], [out]
        data = m.to_flatbuffer()
        table = schema.Model.GetRootAs(data, 0)
        for i in range(1, table.BuffersLength()):
            buffer = table.Buffers(i)
            start = buffer._tab.Vector(buffer._tab.Offset(4))
            assert start % 16 == 0


def test_metadata_reader_rejects_corrupt_files():
    m = TFLiteModel()
    x = m.add_tensor("x", "float32", (2,))
    y = m.add_tensor("y", "float32", (2,))
    m.add_operator("RELU", [x], [y])
    m.inputs, m.outputs = [x], [y]
    m.metadata["edgefw"] = b'{"a": 1}'
    data = bytearray(m.to_flatbuffer())
    assert read_metadata(bytes(data)) == {"a": 1}
    with pytest.raises(ModelFormatError, match="not a valid .tflite"):
        read_metadata(bytes(data[:12]))
    data[0:4] = (len(data) + 100).to_bytes(4, "little")  # root offset past the end
    with pytest.raises(ModelFormatError):
        read_metadata(bytes(data))


def test_unknown_table_field_is_an_export_error():
    from edgefw.errors import ExportError

    with pytest.raises(ExportError, match="has no field"):
        serialize("Metadata", {"nmae": "typo"})
