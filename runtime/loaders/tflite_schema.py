"""A bounds-checked reader for ``.tflite`` FlatBuffers, driven by the tables of TFLite's
``schema.fbs`` in :mod:`edgefw.ir.tflite_schema` (field slots, types and defaults).

A ``.tflite`` file is untrusted input. Every offset the reader follows — the root offset,
each table's vtable, each field, each vector and string — is checked against the file
size (and each table's own size) *before* it is used, so a truncated or corrupt file
raises :class:`~edgefw.errors.ModelFormatError` naming the field, never an IndexError, a
crash or a huge allocation. Vectors of numbers come back as read-only numpy views of the
file (nothing is copied); counts are limited before any list is built.

Only the standard library and numpy are used (no ``flatbuffers`` object API, no
TensorFlow), so a device reads models with the runtime alone.

    >>> data = open("tests/fixtures/tflite/mlp_float32.tflite", "rb").read()
    >>> model = FlatBufferFile(data, "mlp.tflite").root()
    >>> model.get("version"), len(model.tables("subgraphs"))
    (3, 1)
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from edgefw.errors import ModelFormatError
from edgefw.ir.tflite_schema import BUILTIN_OPTIONS, FILE_IDENTIFIER, TABLES

#: Longest vector (elements) the reader accepts: more is a corrupt length, not a model.
MAX_VECTOR_ELEMENTS = 1 << 31

#: Table name -> {field: (slot, type, default)}; types are spelled as in ``TABLES``.
SLOTS: dict[str, dict[str, tuple[int, str, Any]]] = {
    table: {name: (slot, kind, default) for slot, (name, kind, default) in enumerate(fields)}
    for table, fields in TABLES.items()
}
#: ``BuiltinOptions`` union type -> the options table it holds.
_OPTIONS_TABLES: dict[int, str] = {
    code: name for name, code in BUILTIN_OPTIONS.items() if name in TABLES
}

#: Scalar field type -> its ``struct`` code.
_STRUCT_CODES = {"int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i",
                 "uint32": "I", "int64": "q", "uint64": "Q", "float32": "f", "bool": "?"}
_SCALAR_SIZES = {code: struct.calcsize("<" + code) for code in _STRUCT_CODES.values()}
#: Element type -> numpy dtype of a vector of numbers (bools as their bytes).
_NUMPY_TYPES = {"int8": "<i1", "uint8": "<u1", "int32": "<i4", "uint32": "<u4",
                "int64": "<i8", "uint64": "<u8", "float32": "<f4", "bool": "<u1"}


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
        code = _STRUCT_CODES.get(kind)
        size = 4 if code is None else _SCALAR_SIZES[code]  # others are 4-byte offsets
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
        if kind in _STRUCT_CODES:
            return self.buf.scalar(_STRUCT_CODES[kind], pos, where)
        if kind == "string":
            start, count = self._vector(pos, 1, where)
            try:
                return bytes(self.buf.data[start:start + count]).decode("utf-8")
            except UnicodeDecodeError:
                raise self.buf.fail(f"{where} is not valid UTF-8 text") from None
        if kind in TABLES:
            return self.buf.table(self._target(pos, where), kind, where)
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
        return [self.buf.table(self._target(start + 4 * i, f"{where}[{i}]"), kind[1:-1],
                               f"{where}[{i}]") for i in range(count)]

    def union(self, name: str) -> tuple[int, Table | None]:
        """(union type, its table or None) of a union field; the table's kind comes from
        ``BuiltinOptions`` (None for a type whose table ``TABLES`` does not list)."""
        type_code = self.get(f"{name}_type")
        pos, _, _ = self._field(name)
        kind = _OPTIONS_TABLES.get(type_code)
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
    "MAX_VECTOR_ELEMENTS",
    "SLOTS",
    "FlatBufferFile",
    "Table",
]
