"""What the .tflite loader tests share: small models built by hand with the object API that
ai-edge-litert ships (``schema_py_generated``), and LiteRT's interpreter as the reference.

    >>> b = TFLiteBuilder()
    >>> x = b.input("x", "float32", [2, 3])
    >>> y = b.tensor("y", "float32", [2, 3])
    >>> _ = b.op("RELU", [x], [y])
    >>> b.output(y)
    >>> data = b.build()
    >>> data[4:8]
    b'TFL3'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tflite"
FIXTURE_STEMS = tuple(sorted(p.stem for p in FIXTURES.glob("*.tflite")))

_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "bool": 6,
          "int16": 7, "int8": 9}


class TFLiteBuilder:
    """One subgraph, built tensor by tensor and op by op, serialized with TFL3."""

    def __init__(self) -> None:
        self.tensors: list[Any] = []
        self.buffers = [schema.BufferT()]
        self.operators: list[Any] = []
        self.codes: dict[tuple[int, int], int] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.signature: tuple[list[str], list[str]] | None = None

    def tensor(self, name: str, dtype: str, shape: Sequence[int], data: Any = None, *,
               signature: Sequence[int] | None = None, scale: Any = None,
               zero_point: Any = None, axis: int = 0) -> int:
        t = schema.TensorT()
        t.name, t.type, t.shape = name, _TYPES[dtype], list(shape)
        if signature is not None:
            t.shapeSignature = list(signature)
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.ascontiguousarray(np.asarray(data, dtype)).reshape(-1).view(
                np.uint8).tolist()
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = schema.QuantizationParametersT()
            q.scale = np.atleast_1d(np.asarray(scale, np.float32)).tolist()
            zp = np.zeros(len(q.scale), np.int64) if zero_point is None else zero_point
            q.zeroPoint = np.atleast_1d(np.asarray(zp, np.int64)).tolist()
            q.quantizedDimension = axis
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def input(self, name: str, dtype: str, shape: Sequence[int], **kw: Any) -> int:
        t = self.tensor(name, dtype, shape, **kw)
        self.inputs.append(t)
        return t

    def const(self, name: str, array: Any, dtype: str | None = None, **kw: Any) -> int:
        array = np.asarray(array)
        return self.tensor(name, dtype or array.dtype.name, array.shape, array, **kw)

    def output(self, t: int) -> None:
        self.outputs.append(t)

    def op(self, name: str, inputs: Sequence[int], outputs: Sequence[int],
           options: Any = None, version: int = 1) -> Any:
        code = getattr(schema.BuiltinOperator, name)
        key = (code, version)
        if key not in self.codes:
            self.codes[key] = len(self.codes)
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = self.codes[key], list(inputs), list(outputs)
        if options is not None:
            op.builtinOptionsType = getattr(schema.BuiltinOptions,
                                            type(options).__name__[:-1])
            op.builtinOptions = options
        self.operators.append(op)
        return op

    def model(self) -> Any:
        model = schema.ModelT()
        model.version = 3
        codes = []
        for (code, version), _ in sorted(self.codes.items(), key=lambda kv: kv[1]):
            oc = schema.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode = code, min(code, 127)
            oc.version = version
            codes.append(oc)
        model.operatorCodes = codes
        subgraph = schema.SubGraphT()
        subgraph.tensors, subgraph.operators = self.tensors, self.operators
        subgraph.inputs, subgraph.outputs = self.inputs, self.outputs
        model.subgraphs, model.buffers = [subgraph], self.buffers
        if self.signature is not None:
            sig = schema.SignatureDefT()
            sig.signatureKey, sig.subgraphIndex = "serving_default", 0
            sig.inputs = [_tensor_map(n, t) for n, t in zip(self.signature[0], self.inputs)]
            sig.outputs = [_tensor_map(n, t) for n, t in zip(self.signature[1], self.outputs)]
            model.signatureDefs = [sig]
        return model

    def build(self) -> bytes:
        return pack(self.model())


def _tensor_map(name: str, index: int) -> Any:
    m = schema.TensorMapT()
    m.name, m.tensorIndex = name, index
    return m


def pack(model: Any) -> bytes:
    """Serialize an object-API ``ModelT``."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def unpack(data: bytes) -> Any:
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def options(name: str, **fields: Any) -> Any:
    """An options object, e.g. ``options("Conv2DOptions", strideW=1, strideH=1)``."""
    obj = getattr(schema, f"{name}T")()
    for key, value in fields.items():
        if not hasattr(obj, key):
            raise AttributeError(f"{name} has no field {key}")
        setattr(obj, key, value)
    return obj


def litert(model: bytes | str | Path, feeds: Sequence[np.ndarray],
           resolver: str = "BUILTIN_REF") -> list[np.ndarray]:
    """LiteRT's outputs on ``feeds`` (in the subgraph's input order): ``BUILTIN_REF`` runs
    TFLite's reference kernels (the semantics edgefw follows), ``AUTO`` the default
    resolver with XNNPACK."""
    kind = interpreter_module.OpResolverType[resolver]
    if isinstance(model, (bytes, bytearray)):
        it = interpreter_module.Interpreter(model_content=bytes(model),
                                            experimental_op_resolver_type=kind)
    else:
        it = interpreter_module.Interpreter(model_path=str(model),
                                            experimental_op_resolver_type=kind)
    details = it.get_input_details()
    for d, x in zip(details, feeds, strict=True):
        if list(d["shape"]) != list(x.shape):
            it.resize_tensor_input(d["index"], list(x.shape))
    it.allocate_tensors()
    for d, x in zip(details, feeds, strict=True):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def assert_matches(ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray],
                   float_atol: float = 1e-5, int_steps: int = 1) -> float:
    """Float outputs within ``float_atol``, integer outputs within ``int_steps``; returns
    the worst difference."""
    assert len(ours) == len(theirs)
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0))
        limit = float_atol if a.dtype.kind == "f" else int_steps
        assert diff <= limit, f"max difference {diff} > {limit}"
        worst = max(worst, diff)
    return worst


def random_feed(shape: Sequence[int], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype in ("int8", "int16", "uint8"):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max + 1, shape).astype(dtype)
    return rng.normal(0, 1, shape).astype(dtype)
