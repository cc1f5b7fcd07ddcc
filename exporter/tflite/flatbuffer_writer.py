"""Serialize nested dicts into a FlatBuffer, table by table, as :mod:`edgefw.ir.tflite_schema`
describes them, with the ``flatbuffers`` package.

A table is a dict of field name -> value; fields left out (or None) are not written and read
back as their defaults. A ``union`` field takes ``(table_name, dict)`` and sets its type byte
(the ``<field>_type`` field) from :data:`~edgefw.ir.tflite_schema.BUILTIN_OPTIONS`. Vectors of
``uint8`` given as ``bytes`` are aligned to :data:`DATA_ALIGNMENT` so a memory-mapped file
can use constant data in place.

    >>> from exporter.tflite.flatbuffer_writer import serialize
    >>> data = serialize("Metadata", {"name": "edgefw", "buffer": 1})
    >>> len(data) > 8
    True
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np

from edgefw.errors import ExportError
from edgefw.ir.tflite_schema import BUILTIN_OPTIONS, TABLES

#: Alignment of byte vectors (constant tensor data), as TFLite's ``(force_align: 16)``.
DATA_ALIGNMENT = 16

_SCALARS = {
    "bool": ("PrependBoolSlot", np.bool_), "int8": ("PrependInt8Slot", np.int8),
    "uint8": ("PrependUint8Slot", np.uint8), "int16": ("PrependInt16Slot", np.int16),
    "uint16": ("PrependUint16Slot", np.uint16), "int32": ("PrependInt32Slot", np.int32),
    "uint32": ("PrependUint32Slot", np.uint32), "int64": ("PrependInt64Slot", np.int64),
    "uint64": ("PrependUint64Slot", np.uint64), "float32": ("PrependFloat32Slot", np.float32),
    "float64": ("PrependFloat64Slot", np.float64),
}


def serialize(root_table: str, root: dict[str, Any], *, size_hint: int = 1024,
              file_identifier: bytes | None = None) -> bytes:
    """The FlatBuffer whose root is ``root`` (a ``root_table`` table)."""
    builder = flatbuffers.Builder(max(1024, size_hint))
    offset = _table(builder, root_table, root)
    builder.Finish(offset, file_identifier=file_identifier)
    return bytes(builder.Output())


def _table(builder: flatbuffers.Builder, table: str, values: dict[str, Any]) -> int:
    try:
        fields = TABLES[table]
    except KeyError:
        raise ExportError(f"TFLite writer: no schema for table {table!r}") from None
    known = {name for name, _, _ in fields}
    unknown = set(values) - known
    if unknown:
        raise ExportError(f"TFLite writer: table {table} has no field(s) {sorted(unknown)}; "
                          f"fields: {sorted(known)}")
    # Children (strings, vectors, tables) must be complete before the table starts.
    offsets: dict[str, int] = {}
    union_types: dict[str, int] = {}
    for name, kind, _ in fields:
        value = values.get(name)
        if value is None or kind in _SCALARS:
            continue
        if kind == "union":
            options_table, options = value
            union_types[f"{name}_type"] = BUILTIN_OPTIONS[options_table]
            offsets[name] = _table(builder, options_table, options)
        else:
            offsets[name] = _child(builder, kind, value, f"{table}.{name}")
    builder.StartObject(len(fields))
    for slot, (name, kind, default) in enumerate(fields):
        if name in offsets:
            builder.PrependUOffsetTRelativeSlot(slot, offsets[name], 0)
            continue
        value = union_types.get(name, values.get(name))
        if value is None:
            continue
        method, _ = _SCALARS[kind]
        getattr(builder, method)(slot, value, default)
    return builder.EndObject()


def _child(builder: flatbuffers.Builder, kind: str, value: Any, where: str) -> int:
    if kind == "string":
        return builder.CreateString(str(value))
    if kind in TABLES:
        return _table(builder, kind, value)
    if not (kind.startswith("[") and kind.endswith("]")):
        raise ExportError(f"TFLite writer: {where} has an unknown field type {kind!r}")
    element = kind[1:-1]
    if element in _SCALARS:
        return _scalar_vector(builder, element, value)
    children = [_child(builder, element, item, where) for item in value]
    builder.StartVector(4, len(children), 4)
    for child in reversed(children):
        builder.PrependUOffsetTRelative(child)
    return builder.EndVector()


def _scalar_vector(builder: flatbuffers.Builder, element: str, value: Any) -> int:
    if element == "uint8" and isinstance(value, (bytes, bytearray, memoryview)):
        payload = bytes(value)
        builder.StartVector(1, len(payload), DATA_ALIGNMENT)
        builder.head = builder.head - len(payload)
        builder.Bytes[builder.head:builder.head + len(payload)] = payload
        builder.vectorNumElems = len(payload)
        return builder.EndVector()
    array = np.ascontiguousarray(np.asarray(value, dtype=_SCALARS[element][1]).reshape(-1))
    return builder.CreateNumpyVector(array.astype(array.dtype.newbyteorder("<"), copy=False))


__all__ = ["DATA_ALIGNMENT", "serialize"]
