"""What ``edgefw run``, ``inspect`` and ``bench`` share: opening a model file, its metadata,
reading ``--input`` arrays and making random ones of the right shapes and dtypes.

A model file is read once into a :class:`ModelFile`: the IR graph as the runtime's loader
made it (``runtime.load_onnx``, ``runtime.load_tflite`` — a format only needs its
``runtime.load_<format>`` function and, optionally, a header reader in
``HEADER_READERS``), the format's header facts and the model's metadata. Sessions are then
built from that graph, so a file is parsed once however many sessions a command opens.

    >>> from edgefw.commands.model_io import read_model, open_session  # doctest: +SKIP
    >>> model = read_model("mlp.onnx")                                  # doctest: +SKIP
    >>> model.format, model.header["opsets"], class_labels(model.metadata)[:2]  # doctest: +SKIP
    ('onnx', {'ai.onnx': 17}, ['0', '1'])
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefw.errors import ConfigError, DataError, InvalidInputError, ModelFormatError

#: Formats the commands know, by file suffix. A file with another suffix is sniffed.
MODEL_FORMATS = ("onnx", "tflite")


@dataclass
class ModelFile:
    """A model file opened for the commands.

    ``graph``: the IR graph as loaded (before any optimization); ``header``: format facts
    for ``inspect`` (ONNX: ir_version, opsets, producer...); ``metadata``: the model's
    key/value metadata with JSON values decoded.
    """

    path: Path
    format: str
    file_bytes: int
    graph: Any  # edgefw.ir.Graph (imported lazily)
    header: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def detect_format(path: str | os.PathLike) -> str:
    """``"onnx"`` or ``"tflite"`` from the suffix, else from the first bytes (TFLite files
    carry ``TFL3`` at offset 4). ModelFormatError when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"model file not found: {path}")
    suffix = path.suffix.lower().lstrip(".")
    if suffix in MODEL_FORMATS:
        return suffix
    with open(path, "rb") as f:
        head = f.read(8)
    return "tflite" if head[4:8] == b"TFL3" else "onnx"


def read_model(path: str | os.PathLike) -> ModelFile:
    """Load ``path`` with the runtime's loader for its format, plus header and metadata."""
    path = Path(path)
    fmt = detect_format(path)
    graph = _loader(fmt)(str(path))
    header_reader = HEADER_READERS.get(fmt)
    if header_reader is not None:
        header, metadata = header_reader(path)
    else:  # no format-specific reader: what the loader kept on the graph
        header = {}
        metadata = {k: _decode_json(v) for k, v in graph.metadata.items()
                    if k != "edgefw.json_keys"}
    return ModelFile(path, fmt, path.stat().st_size, graph, header, metadata)


def _loader(fmt: str) -> Callable[[str], Any]:
    import runtime

    name = f"load_{fmt}"
    loader = getattr(runtime, name, None)
    if loader is None:
        try:  # loaders may live in runtime.loaders without a top-level name
            loader = getattr(importlib.import_module("runtime.loaders"), name, None)
        except ModuleNotFoundError as exc:
            if exc.name != "runtime.loaders":
                raise
    if loader is None:
        raise ModelFormatError(f"this edgefw cannot read .{fmt} models yet "
                               f"(runtime.{name} does not exist)")
    return loader


def open_session(model: ModelFile, providers: Sequence[str] | None = None,
                 enable_profiling: bool = False, optimization: str = "all") -> Any:
    """An ``InferenceSession`` on the model's graph (the session optimizes its own copy)."""
    from runtime import InferenceSession

    return InferenceSession(model.graph, providers=providers, optimization=optimization,
                            enable_profiling=enable_profiling)


def parse_providers(text: str | None) -> list[str] | None:
    """``"gpu,cpu"`` -> ``["gpu", "cpu"]``; None keeps the session's default."""
    if text is None:
        return None
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise ConfigError(f"--providers needs at least one provider name, got {text!r}")
    return names


# ------------------------------------------------------------------------- ONNX header
def _read_onnx_header(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several unrelated types
        raise ModelFormatError(f"{path}: not a readable ONNX model ({exc})") from None
    opsets = {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import}
    producer = " ".join(p for p in (proto.producer_name, proto.producer_version) if p)
    header = {"ir_version": int(proto.ir_version), "opsets": opsets,
              "producer": producer or None, "graph_name": proto.graph.name or None,
              "doc_string": proto.doc_string or None}
    props = {p.key: p.value for p in proto.metadata_props}
    # edgefw's exporter lists its JSON-encoded keys under "edgefw.json_keys"; other
    # producers' values are decoded when they parse as a JSON list or object.
    props.pop("edgefw.json_keys", None)
    return header, {k: _decode_json(v) for k, v in props.items()}


# ------------------------------------------------------------------------ TFLite header
def _read_tflite_header(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from runtime.loaders.tflite_loader import read_tflite_header

    header, metadata = read_tflite_header(path)
    return header, {k: _decode_json(v) for k, v in metadata.items()}


#: format -> function(path) -> (header facts, metadata).
HEADER_READERS: dict[str, Callable[[Path], tuple[dict[str, Any], dict[str, Any]]]] = {
    "onnx": _read_onnx_header,
    "tflite": _read_tflite_header,
}


def _decode_json(value: Any) -> Any:
    if not isinstance(value, str) or value[:1] not in ("[", "{"):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def class_labels(metadata: Mapping[str, Any]) -> list[str] | None:
    """The model's class names from metadata ``class_labels``: a JSON list (``["cat",
    "dog"]``), an object mapping indices to names (``{"0": "cat"}``) or a comma-separated
    string. None when absent or unusable.

    >>> class_labels({"class_labels": '["cat", "dog"]'})
    ['cat', 'dog']
    >>> class_labels({"class_labels": {"1": "dog", "0": "cat"}})
    ['cat', 'dog']
    """
    labels = _decode_json(metadata.get("class_labels"))
    if isinstance(labels, list):
        return [str(x) for x in labels]
    if isinstance(labels, dict):
        try:
            by_index = {int(k): str(v) for k, v in labels.items()}
        except (TypeError, ValueError):
            return None
        if not by_index or min(by_index) < 0:
            return None
        return [by_index.get(i, str(i)) for i in range(max(by_index) + 1)]
    if isinstance(labels, str) and labels:
        return [s.strip() for s in labels.split(",")]
    return None


# ------------------------------------------------------------------------ .npy input
def load_array(path: str | os.PathLike, what: str = "input") -> np.ndarray:
    """A ``.npy`` file, its header checked against the file size before anything is
    allocated (a corrupt header cannot ask for gigabytes). Pickled object arrays are
    refused. DataError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file not found: {path}")
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            data_offset = f.tell()
    except Exception as exc:  # noqa: BLE001 - numpy raises ValueError/EOFError/SyntaxError
        raise DataError(f"{what} file {path} is not a valid .npy file ({exc}); save arrays "
                        "with numpy.save") from None
    if dtype.hasobject:
        raise DataError(f"{what} file {path} holds Python objects ({dtype}); edgefw reads only "
                        "numeric arrays")
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if size - data_offset < needed:
        raise DataError(f"{what} file {path} is truncated: its header promises "
                        f"{dtype}{list(shape)} ({needed:,} bytes) but only "
                        f"{size - data_offset:,} bytes follow")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{what} file {path} cannot be read: {exc}") from None


def read_inputs(specs: Sequence[str], input_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Arrays from ``--input`` arguments: ``NAME=FILE.npy`` or a bare ``FILE.npy`` (taken by
    the model's inputs in order, skipping those named explicitly). A bare ``.npz`` gives
    arrays by their names in the archive.

    The session checks dtypes and shapes; here: unknown names, inputs given twice, too many
    files, unreadable files.
    """
    feed: dict[str, np.ndarray] = {}
    positional: list[str] = []
    for spec in specs:
        name, sep, file = spec.partition("=")
        if sep and name and not Path(spec).is_file():
            if name not in input_names:
                raise InvalidInputError(f"--input {spec}: the model has no input {name!r}; its "
                                        f"inputs are {', '.join(map(repr, input_names))}")
            if name in feed:
                raise InvalidInputError(f"input {name!r} is given twice")
            feed[name] = load_array(file, f"input {name!r}")
        elif spec.lower().endswith(".npz"):
            feed.update(_load_npz(spec, input_names, feed))
        else:
            positional.append(spec)
    free = [n for n in input_names if n not in feed]
    if len(positional) > len(free):
        raise InvalidInputError(f"{len(positional)} unnamed --input files for "
                                f"{len(free)} remaining model input(s) "
                                f"({', '.join(map(repr, free)) or 'none'})")
    for name, file in zip(free, positional, strict=False):
        feed[name] = load_array(file, f"input {name!r}")
    return {n: feed[n] for n in input_names if n in feed}  # the model's order


def _load_npz(path: str, input_names: Sequence[str],
              given: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not Path(path).is_file():
        raise DataError(f"input file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"input file {path} is not a valid .npz archive ({exc})") from None
    for name in arrays:
        if name not in input_names:
            raise InvalidInputError(f"{path} holds array {name!r}, but the model's inputs are "
                                    f"{', '.join(map(repr, input_names))}")
        if name in given:
            raise InvalidInputError(f"input {name!r} is given twice")
    return arrays


# --------------------------------------------------------------------- random inputs
def random_inputs(inputs: Sequence[Any], batch: int = 1, dims: Mapping[str, int] | None = None,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays for a session's ``get_inputs()``: standard normal floats, integers in
    [0, 10), random booleans. A symbolic first dim takes ``batch``; other symbols take
    their size from ``dims``.

    >>> from runtime import NodeArg
    >>> x = random_inputs([NodeArg("x", ["batch", 3], "tensor(float)", "float32")], batch=2)
    >>> x["x"].shape, x["x"].dtype
    ((2, 3), dtype('float32'))
    """
    if batch <= 0:
        raise ConfigError(f"--batch must be positive, got {batch}")
    dims = dict(dims or {})
    rng = np.random.default_rng(seed)
    feed = {}
    for arg in inputs:
        shape = concrete_shape(arg, batch, dims)
        dtype = np.dtype(arg.dtype)
        if dtype.kind == "f":
            feed[arg.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feed[arg.name] = rng.random(shape) < 0.5
        elif dtype.kind in "iu":
            feed[arg.name] = rng.integers(0, 10, size=shape).astype(dtype)
        else:
            raise InvalidInputError(f"input {arg.name!r} has dtype {dtype}; edgefw bench makes "
                                    "random numbers, booleans only: give it with --input")
    return feed


def concrete_shape(arg: Any, batch: int, dims: Mapping[str, int]) -> tuple[int, ...]:
    """``arg.shape`` with its symbols bound: the first axis to ``batch``, others by name."""
    declared = f"{arg.dtype}[{','.join('?' if d is None else str(d) for d in arg.shape or [])}]"
    if arg.shape is None:
        raise InvalidInputError(f"input {arg.name!r} has unknown rank; give it with --input")
    shape = []
    for axis, d in enumerate(arg.shape):
        if isinstance(d, int):
            shape.append(d)
        elif isinstance(d, str) and d in dims:
            shape.append(dims[d])
        elif axis == 0:
            shape.append(batch)
        else:
            what = f"symbolic dim {d!r}" if d else "an unknown dim"
            hint = f"--dim {d}=SIZE" if d else "--input NAME=FILE.npy"
            raise InvalidInputError(f"input {arg.name!r} ({declared}) has {what} at axis "
                                    f"{axis}; give its size with {hint}")
    if batch != 1 and arg.shape and isinstance(arg.shape[0], int) and arg.shape[0] != batch:
        raise InvalidInputError(f"input {arg.name!r} has a fixed batch of {arg.shape[0]} "
                                f"({declared}); --batch {batch} needs a symbolic first dim")
    return tuple(shape)


def parse_dims(specs: Sequence[str]) -> dict[str, int]:
    """``["seq=128"]`` -> ``{"seq": 128}``."""
    dims = {}
    for spec in specs:
        name, sep, size = spec.partition("=")
        if not sep or not name or not size.isdigit() or int(size) <= 0:
            raise ConfigError(f"--dim expects SYMBOL=SIZE with a positive size, got {spec!r}")
        dims[name] = int(size)
    return dims


def save_array(path: Path, array: np.ndarray) -> Path:
    """Write a ``.npy`` atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def safe_file_name(name: str) -> str:
    """An output name usable as a file name: path separators and odd characters -> ``_``."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip(".")
    return cleaned or "output"


def format_shape(shape: Sequence[Any] | None) -> str:
    """``[batch, 1, 28, 28]``; ``?`` for unknown dims, ``[...]`` for unknown rank."""
    if shape is None:
        return "[...]"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def format_bytes(n: float) -> str:
    """``397.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


__all__ = [
    "HEADER_READERS",
    "MODEL_FORMATS",
    "ModelFile",
    "class_labels",
    "concrete_shape",
    "detect_format",
    "format_bytes",
    "format_shape",
    "load_array",
    "open_session",
    "parse_dims",
    "parse_providers",
    "random_inputs",
    "read_inputs",
    "read_model",
    "safe_file_name",
    "save_array",
]
