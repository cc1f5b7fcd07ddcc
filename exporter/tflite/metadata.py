"""Metadata in ``.tflite`` files: what a deployment needs besides the graph.

TFLite keeps named byte buffers in ``Model.metadata``. edgefw writes one, ``"edgefw"``, a
UTF-8 JSON object: the producer, how each input and output is laid out and typed, the
quantization, and the caller's own keys (conventionally ``normalization``, e.g.
``{"scale": 1/255}``, and ``class_labels``). :data:`GOLDEN_METADATA` names the entry
reserved for verification data (inputs with their expected outputs).

:func:`read_metadata` reads that entry back from a file or its bytes, checking every offset
it follows, without TensorFlow or LiteRT.

    >>> import exporter
    >>> read_metadata("mlp.tflite")["inputs"][0]["layout"]  # doctest: +SKIP
    'NHWC'
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgefw.errors import ExportError, ModelFormatError
from edgefw.ir.tflite_schema import field_slot

#: The Model.metadata entry edgefw writes (JSON).
EDGEFW_METADATA = "edgefw"
#: Reserved for golden verification data (inputs and expected outputs).
GOLDEN_METADATA = "edgefw.golden"
_RESERVED = ("producer", "inputs", "outputs", "input_layout")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def metadata_json(facts: Mapping[str, Any], user: Mapping[str, Any] | None) -> bytes:
    """The ``"edgefw"`` entry: ``facts`` the exporter knows, then the caller's keys (which
    may not replace the producer, the inputs, outputs or input layout)."""
    if user is not None and not isinstance(user, Mapping):
        raise ExportError(f"metadata must be a dict with str keys, got {type(user).__name__}")
    merged = dict(facts)
    for key, value in (user or {}).items():
        if not isinstance(key, str) or not key:
            raise ExportError(f"metadata keys must be non-empty strings, got {key!r}")
        if key in _RESERVED:
            raise ExportError(f"metadata key {key!r} is written by the exporter; choose "
                              "another name")
        merged[key] = value
    try:
        return json.dumps(merged, default=_json_default, allow_nan=False,
                          sort_keys=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ExportError(f"metadata cannot be stored as JSON: {exc}") from None


# ---------------------------------------------------------------------- reading
class _Reader:
    """Bounds-checked reads of FlatBuffer tables in ``data``."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.where = data, where

    def _fail(self, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.where}: not a valid .tflite file ({what})")

    def u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > len(self.data):
            raise self._fail(f"offset {pos} is outside the {len(self.data)}-byte file")
        return struct.unpack_from("<I", self.data, pos)[0]

    def field(self, table: int, table_name: str, field: str) -> int | None:
        """The position of ``field`` in the table at ``table``, or None when absent."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0] \
            if 0 <= table <= len(self.data) - 4 else -1
        if vtable < 0 or vtable + 4 > len(self.data):
            raise self._fail(f"bad vtable for {table_name}")
        vt_size = struct.unpack_from("<H", self.data, vtable)[0]
        entry = 4 + 2 * field_slot(table_name, field)
        if entry + 2 > vt_size or vtable + entry + 2 > len(self.data):
            return None
        offset = struct.unpack_from("<H", self.data, vtable + entry)[0]
        return table + offset if offset else None

    def indirect(self, pos: int) -> int:
        return pos + self.u32(pos)

    def vector(self, pos: int, element_size: int) -> tuple[int, int]:
        start = self.indirect(pos)
        length = self.u32(start)
        if start + 4 + length * element_size > len(self.data):
            raise self._fail(f"a vector of {length} elements runs past the end")
        return start + 4, length

    def string(self, pos: int) -> str:
        start, length = self.vector(pos, 1)
        return self.data[start:start + length].decode("utf-8", errors="replace")


def read_metadata(source: bytes | str | os.PathLike) -> dict[str, Any]:
    """The ``"edgefw"`` metadata of a ``.tflite`` file (a path or the file's bytes); an
    empty dict when the file has none."""
    where = "the given bytes" if isinstance(source, (bytes, bytearray)) else os.fspath(source)
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ModelFormatError(f"{where}: cannot read ({exc})") from None
    entries = read_metadata_buffers(data, where)
    raw = entries.get(EDGEFW_METADATA)
    if raw is None:
        return {}
    try:
        decoded = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{where}: edgefw metadata is not JSON ({exc})") from None
    return decoded if isinstance(decoded, dict) else {}


def read_metadata_buffers(data: bytes, where: str = "model") -> dict[str, bytes]:
    """Every ``Model.metadata`` entry of a ``.tflite`` file: name -> bytes."""
    r = _Reader(data, where)
    model = r.indirect(0)
    metadata = r.field(model, "Model", "metadata")
    buffers = r.field(model, "Model", "buffers")
    if metadata is None:
        return {}
    if buffers is None:
        raise r._fail("metadata without buffers")
    buffer_start, buffer_count = r.vector(buffers, 4)
    start, count = r.vector(metadata, 4)
    out = {}
    for i in range(count):
        entry = r.indirect(start + 4 * i)
        name_pos = r.field(entry, "Metadata", "name")
        index_pos = r.field(entry, "Metadata", "buffer")
        name = r.string(name_pos) if name_pos is not None else ""
        index = r.u32(index_pos) if index_pos is not None else 0
        if index >= buffer_count:
            raise r._fail(f"metadata {name!r} names buffer {index} of {buffer_count}")
        buffer = r.indirect(buffer_start + 4 * index)
        data_pos = r.field(buffer, "Buffer", "data")
        if data_pos is None:
            out[name] = b""
            continue
        begin, length = r.vector(data_pos, 1)
        out[name] = data[begin:begin + length]
    return out


__all__ = ["EDGEFW_METADATA", "GOLDEN_METADATA", "metadata_json", "read_metadata",
           "read_metadata_buffers"]
