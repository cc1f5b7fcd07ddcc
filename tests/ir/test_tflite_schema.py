"""TFLite's schema as written down in ``edgefw/ir/tflite_schema.py`` (the tables the exporter
writes and the loader reads with) against the generated code that ai-edge-litert ships
from TFLite's own ``schema.fbs``: enum values, options tables, and every table field's slot,
type and default."""

from __future__ import annotations

import doctest
import re

import pytest

from edgefw.ir import tflite_schema as ours

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
SOURCE = open(schema.__file__, encoding="utf-8").read()
# def TensorAddBuffer(builder, buffer):
#     builder.PrependUint32Slot(2, buffer, 0)
_ADDER = re.compile(r"def (\w+)Add(\w+)\(builder, \w+\):\s+"
                    r"builder\.Prepend(\w+)Slot\((\d+), (?:[^,()]+|\w+(?:\.\w+)*\(\w+\)), (.+)\)")
#: (table, CamelCaseField) -> (Prepend* method, slot, default as written)
GENERATED = {(m[0], m[1]): (m[2], int(m[3]), m[4]) for m in _ADDER.findall(SOURCE)}
_METHODS = {"bool": "Bool", "int8": "Int8", "uint8": "Uint8", "int16": "Int16",
            "uint16": "Uint16", "int32": "Int32", "uint32": "Uint32", "int64": "Int64",
            "uint64": "Uint64", "float32": "Float32", "float64": "Float64"}


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def enum(cls) -> dict[str, int]:
    return {k: v for k, v in vars(cls).items() if not k.startswith("_")}


def test_builtin_operators_match_the_generated_enum():
    generated = enum(schema.BuiltinOperator)
    for name, code in ours.BUILTIN_OPERATORS.items():
        assert generated[name] == code, name
    # every generated op but StableHLO's is known
    assert {n for n in generated if not n.startswith("STABLEHLO")} == set(ours.BUILTIN_OPERATORS)
    assert ours.BUILTIN_OPERATOR_NAMES == {v: k for k, v in ours.BUILTIN_OPERATORS.items()}
    assert generated["PLACEHOLDER_FOR_GREATER_OP_CODES"] == ours.PLACEHOLDER_FOR_GREATER_OP_CODES


def test_enums_match_the_generated_code():
    assert enum(schema.BuiltinOptions) == ours.BUILTIN_OPTIONS
    assert enum(schema.ActivationFunctionType) == ours.ACTIVATIONS
    assert enum(schema.Padding) == ours.PADDINGS
    assert enum(schema.MirrorPadMode) == ours.MIRROR_PAD_MODES
    assert ours.ACTIVATION_NAMES == {v: k for k, v in ours.ACTIVATIONS.items()}
    assert ours.PADDING_NAMES == {v: k for k, v in ours.PADDINGS.items()}
    types = enum(schema.TensorType)
    for name, code in ours.TENSOR_TYPES.items():
        assert types[name.upper()] == code, name
    assert ours.TENSOR_TYPE_NAMES == {v: k for k, v in ours.TENSOR_TYPES.items()}


def test_file_identifier_and_version_match_the_generated_code():
    assert schema.Model.ModelBufferHasIdentifier(b"\0\0\0\0" + ours.FILE_IDENTIFIER, 0)
    assert ours.SCHEMA_VERSION == 3


@pytest.mark.parametrize("table", sorted(ours.TABLES))
def test_table_fields_match_the_generated_code(table):
    assert hasattr(schema, table), f"{table} is not a TFLite table"
    for slot, (field, kind, default) in enumerate(ours.TABLES[table]):
        if field.startswith("deprecated_") and field != "deprecated_builtin_code":
            continue  # deprecated fields keep their slot but have no generated adder
        method, generated_slot, generated_default = GENERATED[(table, camel(field))]
        assert generated_slot == slot, (table, field)
        assert method == _METHODS.get(kind, "UOffsetTRelative"), (table, field, method, kind)
        if kind in _METHODS:
            assert float(generated_default) == default, (table, field, generated_default)
        else:
            assert default is None, (table, field)


def test_every_options_table_is_known():
    for op, options in ours.OPERATOR_OPTIONS.items():
        assert op in ours.BUILTIN_OPERATORS and options in ours.BUILTIN_OPTIONS
        assert options in ours.TABLES


def test_field_slot_and_names():
    assert ours.field_slot("Tensor", "shape_signature") == 7
    with pytest.raises(KeyError, match="has no field"):
        ours.field_slot("Tensor", "shapes")
    assert ours.builtin_operator_name(3) == "CONV_2D"
    assert ours.builtin_operator_name(4000) == "builtin code 4000"


def test_doctests():
    assert doctest.testmod(ours).failed == 0
