"""Model metadata in ``.onnx`` files: what a deployment needs besides the graph.

ONNX stores metadata as string key/value pairs (``ModelProto.metadata_props``). The
exporter writes string values as they are and everything else (the normalisation dict,
the class label list, numbers) as JSON, listing the JSON-encoded keys under
``edgefw.json_keys`` so :func:`read_metadata` gives back exactly the values it was given.
Conventional keys:

- ``input_layout``: ``"NCHW"``;
- ``normalization``: how raw input is scaled before it reaches the model, e.g.
  ``{"scale": 1/255}`` (and ``"mean"``/``"std"`` where used);
- ``class_labels``: the output classes in order, e.g. ``["0", "1", ..., "9"]``.

    >>> from exporter.onnx import read_metadata
    >>> read_metadata("mlp.onnx")["class_labels"][:3]  # doctest: +SKIP
    ['0', '1', '2']
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx

from edgefw.errors import ExportError, ModelFormatError

#: The metadata key listing which other keys hold JSON (a JSON list of key names).
JSON_KEYS = "edgefw.json_keys"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def metadata_props(graph_metadata: Mapping[str, Any],
                   metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """The ``metadata_props`` to write: the graph's plain-string metadata, then ``metadata``
    (which wins on shared keys), non-strings JSON-encoded.

    >>> props = metadata_props({"passes": "fuse_activation: 2", "epochs": 3},
    ...                        {"input_layout": "NCHW", "normalization": {"scale": 0.5}})
    >>> props["passes"], props["normalization"], props["edgefw.json_keys"]
    ('fuse_activation: 2', '{"scale": 0.5}', '["normalization"]')
    """
    props = {k: v for k, v in graph_metadata.items()
             if isinstance(k, str) and isinstance(v, str) and k != JSON_KEYS}
    # A graph loaded from an edgefw .onnx keeps its JSON values as strings: keep their marks.
    json_keys = {k for k in _decode_key_list(graph_metadata.get(JSON_KEYS)) if k in props}
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ExportError(f"metadata must be a dict of str keys, got {type(metadata).__name__}")
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not key:
            raise ExportError(f"metadata keys must be non-empty strings, got {key!r}")
        if key == JSON_KEYS:
            raise ExportError(f"metadata key {JSON_KEYS!r} is reserved by edgefw")
        if isinstance(value, str):
            props[key] = value
            json_keys.discard(key)
            continue
        try:
            props[key] = json.dumps(value, default=_json_default, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ExportError(f"metadata {key!r} cannot be stored as JSON: {exc}") from None
        json_keys.add(key)
    if json_keys:
        props[JSON_KEYS] = json.dumps(sorted(json_keys))
    return props


def _decode_key_list(text: Any) -> list[str]:
    if not isinstance(text, str):
        return []
    try:
        keys = json.loads(text)
    except json.JSONDecodeError:
        return []
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def read_metadata(source: onnx.ModelProto | str | os.PathLike | bytes) -> dict[str, Any]:
    """The metadata of an ``.onnx`` model (a path, the file's bytes or a ModelProto), with
    JSON-encoded values decoded.

    >>> read_metadata("lenet.onnx")  # doctest: +SKIP
    {'input_layout': 'NCHW', 'normalization': {'scale': 0.00392156862745098},
     'class_labels': ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], ...}
    """
    model = source if isinstance(source, onnx.ModelProto) else _load(source)
    props = {p.key: p.value for p in model.metadata_props}
    for key in _decode_key_list(props.pop(JSON_KEYS, None)):
        if key in props:
            try:
                props[key] = json.loads(props[key])
            except json.JSONDecodeError:
                pass  # edited by hand: give the text back rather than fail
    return props


def _load(source: str | os.PathLike | bytes) -> onnx.ModelProto:
    where = "the given bytes" if isinstance(source, (bytes, bytearray)) else os.fspath(source)
    try:
        if isinstance(source, (bytes, bytearray)):
            return onnx.load_model_from_string(bytes(source))
        if not os.path.isfile(source):
            raise ModelFormatError(f"{where}: no such ONNX file")
        return onnx.load(source, load_external_data=False)
    except ModelFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - protobuf raises several unrelated types
        raise ModelFormatError(f"{where}: not a readable ONNX model ({exc})") from None


__all__ = ["JSON_KEYS", "metadata_props", "read_metadata"]
