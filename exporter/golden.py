"""Golden data: a few inputs and the outputs they must give, bundled into a model file's
metadata at export so that ``edgefw verify MODEL`` can check, on any machine and runtime,
that the file still computes what it computed on the machine that exported it.

A record holds, per model input and output (in the file's own layout and dtype):

- ``inputs``: the golden inputs (real samples: quantized models saturate on noise);
- ``reference``: the float model's outputs on them (what the network was trained to give);
- ``expected``: this file's outputs on them, computed by edgefw's CPU runtime at export
  (for a float32 file equal to ``reference`` up to rounding; for a quantized file the
  quantized answer);
- ``tolerance``: how far a runtime may be from ``expected`` (see :class:`Tolerance`).

Arrays are stored as little-endian bytes, zlib-compressed and base64-encoded inside one
JSON object under the metadata key :data:`GOLDEN_KEY` — an ONNX ``metadata_props`` entry,
or a key of the ``.tflite`` file's ``"edgefw"`` metadata JSON. Both loaders put it in
``graph.metadata[GOLDEN_KEY]``, so reading it back is format-independent:

    >>> import numpy as np
    >>> record = GoldenData(["x"], [np.ones((1, 3), np.float32)], ["y"],
    ...                     reference=[np.full((1, 2), 0.5, np.float32)],
    ...                     tolerances=[Tolerance("float", 1e-4)])
    >>> meta = golden_metadata(record)
    >>> back = read_golden(meta)
    >>> back.inputs[0].tolist(), back.tolerances[0].atol
    ([[1.0, 1.0, 1.0]], 0.0001)

Decoding treats the record as untrusted: sizes are checked before anything is allocated.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefw.errors import ExportError, ModelFormatError

#: The metadata key holding the record (the name ``exporter.tflite`` reserves for it).
GOLDEN_KEY = "edgefw.golden"
FORMAT_VERSION = 1
#: Float files: a runtime may differ from ``expected`` by this much, relative to the
#: output's magnitude (at least 1): summation order differs between runtimes.
FLOAT_TOLERANCE = 1e-4
#: Quantized files: by this many quantization steps of the output.
QUANTIZED_STEPS = 3
#: One int8 step of an output whose quantization the file does not state (dynamic-range
#: files quantize activations on the fly): max|output| / 127.
INT8_LEVELS = 127
#: Largest decoded record (all arrays together): golden data is a handful of samples.
MAX_RECORD_BYTES = 64 << 20
_DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")


@dataclass(frozen=True)
class Tolerance:
    """How far a runtime's output may be from the expected one (max absolute error).

    ``kind``: ``"float"`` (``atol = 1e-4 * max(1, max|expected|)``) or ``"quantized"``
    (``atol = steps * step``, ``step`` the quantization scale of the tensor the output is
    dequantized from, halved through a Softmax; or ``max|expected| / 127`` where the file
    quantizes activations on the fly, as dynamic-range files do). A tolerance given by hand
    (``edgefw verify --atol``) has no step.
    """

    kind: str
    atol: float
    step: float | None = None
    steps: int | None = None

    def describe(self) -> str:
        if self.kind == "quantized" and self.step is not None:
            return f"{self.steps} steps of {self.step:.3g} = {self.atol:.3g}"
        return f"{self.atol:.3g}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "atol": self.atol, "step": self.step, "steps": self.steps}


def make_tolerance(kind: str, expected: np.ndarray, step: float | None = None,
                   steps: int = QUANTIZED_STEPS) -> Tolerance:
    """The tolerance for one output of a ``"float"`` or ``"quantized"`` file.

    >>> make_tolerance("float", np.array([20.0])).atol
    0.002
    >>> make_tolerance("quantized", np.array([1.0]), step=0.1).describe()
    '3 steps of 0.1 = 0.3'
    """
    magnitude = float(np.max(np.abs(expected.astype(np.float64)))) if expected.size else 0.0
    if kind == "float":
        return Tolerance("float", FLOAT_TOLERANCE * max(1.0, magnitude))
    if kind != "quantized":
        raise ExportError(f"tolerance kind must be 'float' or 'quantized', got {kind!r}")
    if step is None or not step > 0:
        step = max(magnitude, 1e-6) / INT8_LEVELS
    return Tolerance("quantized", steps * float(step), float(step), steps)


@dataclass
class GoldenData:
    """A golden record (see the module docstring); arrays in the file's layout and dtype."""

    input_names: list[str]
    inputs: list[np.ndarray]
    output_names: list[str]
    reference: list[np.ndarray] | None = None
    expected: list[np.ndarray] | None = None
    tolerances: list[Tolerance] = field(default_factory=list)
    producer: str = ""

    def __post_init__(self) -> None:
        if len(self.input_names) != len(self.inputs):
            raise ExportError(f"golden data: {len(self.input_names)} input names for "
                              f"{len(self.inputs)} inputs")
        for what, arrays in (("reference", self.reference), ("expected", self.expected)):
            if arrays is not None and len(arrays) != len(self.output_names):
                raise ExportError(f"golden data: {len(arrays)} {what} outputs for "
                                  f"{len(self.output_names)} output names")
        if self.tolerances and len(self.tolerances) != len(self.output_names):
            raise ExportError(f"golden data: {len(self.tolerances)} tolerances for "
                              f"{len(self.output_names)} outputs")
        if self.reference is None and self.expected is None:
            raise ExportError("golden data needs reference or expected outputs")

    @property
    def targets(self) -> list[np.ndarray]:
        """What runtimes are checked against: ``expected`` where recorded, else
        ``reference``."""
        return self.expected if self.expected is not None else self.reference  # type: ignore

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "producer": self.producer,
            "inputs": [{"name": n, "array": encode_array(a)}
                       for n, a in zip(self.input_names, self.inputs)],
        }
        for key in ("reference", "expected"):
            arrays = getattr(self, key)
            if arrays is not None:
                record[key] = [{"name": n, "array": encode_array(a)}
                               for n, a in zip(self.output_names, arrays)]
        if self.tolerances:
            record["tolerance"] = [dict(t.to_dict(), name=n)
                                   for n, t in zip(self.output_names, self.tolerances)]
        else:
            record["output_names"] = list(self.output_names)
        return record


# ------------------------------------------------------------------ arrays
def encode_array(array: np.ndarray) -> dict[str, Any]:
    """``{"dtype", "shape", "encoding": "zlib+base64", "data"}`` (little-endian bytes)."""
    array = np.asarray(array)
    if array.dtype.name not in _DTYPES:
        raise ExportError(f"golden data: arrays of dtype {array.dtype} cannot be stored")
    raw = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return {"dtype": array.dtype.name, "shape": list(array.shape), "encoding": "zlib+base64",
            "data": base64.b64encode(zlib.compress(raw, 9)).decode("ascii")}


def decode_array(entry: Any, budget: list[int], where: str) -> np.ndarray:
    """The array of :func:`encode_array`; ``budget`` holds the bytes still allowed."""
    if not isinstance(entry, Mapping):
        raise ModelFormatError(f"{where}: expected an encoded array, got {type(entry).__name__}")
    dtype, shape, data = entry.get("dtype"), entry.get("shape"), entry.get("data")
    if dtype not in _DTYPES:
        raise ModelFormatError(f"{where}: dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ModelFormatError(f"{where}: shape {shape!r} is not a list of sizes")
    if entry.get("encoding") != "zlib+base64" or not isinstance(data, str):
        raise ModelFormatError(f"{where}: unknown encoding {entry.get('encoding')!r}")
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > budget[0]:
        raise ModelFormatError(f"{where}: {dtype}{shape} needs {nbytes:,} bytes, more than the "
                               f"{MAX_RECORD_BYTES:,} a golden record may hold")
    budget[0] -= nbytes
    try:
        packed = base64.b64decode(data, validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, nbytes + 1)
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise ModelFormatError(f"{where}: corrupt array data ({exc})") from None
    if len(raw) != nbytes or inflater.unconsumed_tail:
        raise ModelFormatError(f"{where}: {dtype}{shape} needs {nbytes} bytes, the data holds "
                               f"{len(raw)}{'+' if inflater.unconsumed_tail else ''}")
    return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)


# ------------------------------------------------------------------ metadata
def golden_metadata(golden: GoldenData) -> dict[str, Any]:
    """``{GOLDEN_KEY: record}``: merge into the ``metadata=`` of ``to_onnx`` / ``to_tflite``."""
    return {GOLDEN_KEY: golden.to_dict()}


def read_golden(metadata: Mapping[str, Any]) -> GoldenData | None:
    """The golden record in a model's metadata (a dict or JSON text under
    :data:`GOLDEN_KEY`), or None when the model carries none. ModelFormatError when it is
    malformed."""
    value = metadata.get(GOLDEN_KEY)
    if value is None:
        return None
    where = f"golden data ({GOLDEN_KEY})"
    if isinstance(value, (str, bytes)):
        if len(value) > 2 * MAX_RECORD_BYTES:
            raise ModelFormatError(f"{where}: {len(value):,} characters is too large")
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{where}: not JSON ({exc})") from None
    if not isinstance(value, Mapping):
        raise ModelFormatError(f"{where}: expected a JSON object, got {type(value).__name__}")
    if value.get("version") != FORMAT_VERSION:
        raise ModelFormatError(f"{where}: version {value.get('version')!r} is not the "
                               f"{FORMAT_VERSION} this edgefw reads")
    budget = [MAX_RECORD_BYTES]
    inputs = _named_arrays(value.get("inputs"), budget, f"{where} inputs")
    outputs = {key: _named_arrays(value[key], budget, f"{where} {key}")
               for key in ("reference", "expected") if key in value}
    tolerances = _tolerances(value.get("tolerance"), where)
    names = [n for n, _ in next(iter(outputs.values()), [])]
    if not names:
        raise ModelFormatError(f"{where}: no reference or expected outputs")
    try:
        return GoldenData(
            [n for n, _ in inputs], [a for _, a in inputs], names,
            reference=[a for _, a in outputs["reference"]] if "reference" in outputs else None,
            expected=[a for _, a in outputs["expected"]] if "expected" in outputs else None,
            tolerances=tolerances, producer=str(value.get("producer", "")))
    except ExportError as exc:
        raise ModelFormatError(f"{where}: {exc}") from None


def _named_arrays(entries: Any, budget: list[int], where: str) -> list[tuple[str, np.ndarray]]:
    if not isinstance(entries, list) or not entries or len(entries) > 1024:
        raise ModelFormatError(f"{where}: expected a non-empty list")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ModelFormatError(f"{where}[{i}]: expected {{'name': ..., 'array': ...}}")
        out.append((entry["name"], decode_array(entry.get("array"), budget,
                                                f"{where}[{i}] ({entry['name']})")))
    return out


def _tolerances(entries: Any, where: str) -> list[Tolerance]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ModelFormatError(f"{where}: tolerance must be a list")
    out = []
    for entry in entries:
        try:
            kind, atol = str(entry["kind"]), float(entry["atol"])
            step = None if entry.get("step") is None else float(entry["step"])
            steps = None if entry.get("steps") is None else int(entry["steps"])
        except (KeyError, TypeError, ValueError):
            raise ModelFormatError(f"{where}: bad tolerance entry {entry!r}") from None
        if kind not in ("float", "quantized") or not (math.isfinite(atol) and atol >= 0):
            raise ModelFormatError(f"{where}: bad tolerance entry {entry!r}")
        out.append(Tolerance(kind, atol, step, steps))
    return out


def attach_to_onnx(model: Any, golden: GoldenData,
                   path: str | os.PathLike | None = None) -> Any:
    """Add (or replace) the golden record in an ONNX ``ModelProto`` — ``model`` may also
    be a path, read and rewritten in place — and write ``path`` atomically when given.
    Returns the ModelProto."""
    import onnx

    from exporter.onnx.metadata import JSON_KEYS
    from exporter.onnx.writer import write_atomic

    if isinstance(model, (str, os.PathLike)):
        path = model if path is None else path
        model = onnx.load(os.fspath(model), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    try:
        json_keys = set(json.loads(props.get(JSON_KEYS, "[]")))
    except json.JSONDecodeError:
        json_keys = set()
    props[GOLDEN_KEY] = json.dumps(golden.to_dict(), separators=(",", ":"))
    props[JSON_KEYS] = json.dumps(sorted(json_keys | {GOLDEN_KEY}))
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    if path is not None:
        write_atomic(path, model.SerializeToString())
    return model


__all__ = [
    "FLOAT_TOLERANCE",
    "GOLDEN_KEY",
    "QUANTIZED_STEPS",
    "GoldenData",
    "Tolerance",
    "attach_to_onnx",
    "decode_array",
    "encode_array",
    "golden_metadata",
    "make_tolerance",
    "read_golden",
]
