"""Load a ``.tflite`` model (a path or its bytes) into an IR graph, with numpy alone.

>>> import runtime
>>> graph = runtime.load_tflite("tests/fixtures/tflite/mlp_float32.tflite")
>>> graph.inputs[0].name, graph.inputs[0].shape
('pixels', ('batch', 8, 8))
>>> session = runtime.InferenceSession("tests/fixtures/tflite/mlp_int8.tflite")  # same loader

How the file maps onto the IR:

- the main subgraph (index 0) becomes the graph; inputs and outputs take their names from
  the ``serving_default`` signature when the file has one (else the tensor names); a
  dynamic first dim (``shape_signature`` -1) is the symbol ``"batch"``;
- constant tensors (non-empty buffers, also buffers stored after the FlatBuffer) become
  constants viewing the file's bytes; quantization parameters become ``Value.quant``;
- each operator is lowered by a rule (``tflite_nn``, ``tflite_elementwise``,
  ``tflite_tensor``: float ops to their ONNX-semantics IR ops, NHWC handled by
  :mod:`~runtime.loaders.tflite_lowering`; ``tflite_quantized``: int8 ops to edgefw's
  integer ops with TFLite's fixed-point semantics, dynamic-range ops to ``QDynamicGemm`` /
  ``QDynamicConv``, QUANTIZE / DEQUANTIZE);
- text metadata entries are kept in ``graph.metadata`` (edgefw's own ``"edgefw"`` JSON entry
  is spread into its keys, so ``class_labels`` reach the CLI).

Refused with an edgefw error naming the operator or field: truncated or corrupt files
(ModelFormatError: every offset, vtable, vector length and buffer size is checked before
use), ops the loader does not know (UnsupportedOpError listing the supported builtins),
custom ops, sparse or variable tensors, control flow (several subgraphs called by
WHILE/IF), and operators that read tensors nothing defines (GraphError).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from edgefw.errors import EdgeFWError, GraphError, ModelFormatError, UnsupportedOpError
from edgefw.ir import Graph, QuantParams, Value
from edgefw.ir.tflite_schema import (
    BUILTIN_OPERATOR_NAMES,
    PLACEHOLDER_FOR_GREATER_OP_CODES,
    SCHEMA_VERSION,
    TENSOR_TYPE_NAMES,
    builtin_operator_name,
)
from runtime.loaders import (  # noqa: F401 - the rule modules register on import
    tflite_elementwise,
    tflite_nn,
    tflite_quantized,
    tflite_tensor,
)
from runtime.loaders.files import read_model_file
from runtime.loaders.tflite_lowering import OPTIONS_TABLES, RULES, Lowering, Operator, TensorInfo
from runtime.loaders.tflite_schema import FlatBufferFile, Table

#: Largest file read (a FlatBuffer addresses < 2 GiB; larger models keep buffers after it).
MAX_FILE_BYTES = 2**32
#: Limits that keep a corrupt file from costing more than its size in work.
MAX_TENSORS = 1 << 20
MAX_OPERATORS = 1 << 20
MAX_OPERATOR_TENSORS = 1024
MAX_RANK = 8
MAX_TENSOR_ELEMENTS = 2**31
_SUPPORTED_DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "uint16",
                     "int32", "uint32", "int64", "uint64", "bool")


def load_tflite(model: str | os.PathLike | bytes | bytearray | memoryview) -> Graph:
    """Read a ``.tflite`` model into an :class:`edgefw.ir.Graph` (verified with ``check()``).

    ``model``: a path to a ``.tflite`` file or the file's bytes. Raises ModelFormatError
    (not a valid TFLite file), UnsupportedOpError (an op, type or feature edgefw does not
    run) or GraphError (an operator reads a tensor nothing defines).

    >>> g = load_tflite(open("tests/fixtures/tflite/mlp_float32.tflite", "rb").read())
    >>> [n.op_type for n in g.nodes]
    ['Reshape', 'Gemm', 'Gemm', 'Gemm', 'Softmax']
    """
    data, label = _read(model)
    try:
        return _ModelReader(data, label).read()
    except EdgeFWError as exc:
        if str(exc).startswith(label):
            raise
        raise type(exc)(f"{label}: {exc}") from exc
    except RecursionError:
        raise ModelFormatError(f"{label}: the model is nested too deeply") from None


def read_tflite_header(model: str | os.PathLike | bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """File-level facts of a ``.tflite`` model without lowering it: ``(header, metadata)``.

    ``header``: schema version, description (the producer), subgraph and operator counts,
    operator codes with versions, signature keys; ``metadata``: the text metadata entries
    (edgefw's JSON entry spread into its keys), as :func:`load_tflite` stores them.

    >>> header, metadata = read_tflite_header("tests/fixtures/tflite/mlp_dynamic.tflite")
    >>> header["operator_codes"]["FULLY_CONNECTED"], metadata["min_runtime_version"]
    ([12], '2.17.0')
    """
    data, label = _read(model)
    try:
        reader = _ModelReader(data, label)
        graph = Graph("header")
        reader._metadata(graph)
        metadata = {k: v for k, v in graph.metadata.items()
                    if k not in ("tflite_schema_version", "description")}
        versions: dict[str, list[int]] = {}
        for name, version, custom in reader._operator_codes():
            key = name or f"CUSTOM:{custom}"
            versions.setdefault(key, [])
            if version not in versions[key]:
                versions[key].append(version)
        subgraphs = reader.model.tables("subgraphs", limit=1 << 16)
        header = {
            "tflite_schema_version": int(reader.model.get("version")),
            "producer": reader.model.get("description") or None,
            "subgraphs": len(subgraphs),
            "operators": sum(len(sg.tables("operators", limit=MAX_OPERATORS))
                             for sg in subgraphs),
            "operator_codes": {k: sorted(v) for k, v in sorted(versions.items())},
            "signatures": [sig.get("signature_key") or "" for sig in
                           reader.model.tables("signature_defs", limit=1 << 16)],
        }
    except EdgeFWError as exc:
        if str(exc).startswith(label):
            raise
        raise type(exc)(f"{label}: {exc}") from exc
    return header, metadata


def supported_builtin_ops() -> list[str]:
    """The TFLite builtin operators the loader lowers."""
    return sorted(RULES)


def _read(model: Any) -> tuple[bytes, str]:
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        return read_model_file(path, "TFLite", MAX_FILE_BYTES, "edgefw reads .tflite files "
                               f"up to {MAX_FILE_BYTES} bytes"), path
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "<tflite bytes>"
    raise ModelFormatError(f"load_tflite needs a path or the file's bytes; got "
                           f"{type(model).__name__}")


class _ModelReader:
    """One file being read: its root table, buffers and the graph under construction."""

    def __init__(self, data: bytes, label: str) -> None:
        self.file = FlatBufferFile(data, label)
        self.model = self.file.root()
        self.label = label
        self._buffers: list[Table] | None = None
        self._constants: dict[int, np.ndarray | None] = {}

    def read(self) -> Graph:
        version = self.model.get("version")
        if version != SCHEMA_VERSION:
            raise ModelFormatError(f"TFLite schema version {version}; edgefw reads version "
                                   f"{SCHEMA_VERSION}")
        subgraphs = self.model.tables("subgraphs", limit=1 << 16)
        if not subgraphs:
            raise ModelFormatError("the model has no subgraph")
        subgraph = subgraphs[0]
        codes = self._operator_codes()
        tensors = [self._tensor(i, t) for i, t in
                   enumerate(subgraph.tables("tensors", limit=MAX_TENSORS))]
        graph = Graph(subgraph.get("name") or "tflite_model", opset=18)
        self._metadata(graph)
        lowering = Lowering(graph, tensors, self._constant)
        input_names, output_names = self._signature_names()
        for t in self._index_list(subgraph, "inputs", tensors):
            self._add_input(lowering, tensors[t], input_names.get(t))
        for i, op_table in enumerate(subgraph.tables("operators", limit=MAX_OPERATORS)):
            op = self._operator(i, op_table, codes, tensors)
            for t in op.outputs:
                if lowering.is_defined(t):
                    raise GraphError(f"{op.describe()} writes {lowering.label(t)}, which is "
                                     "already defined (a graph input, constant or earlier "
                                     "output)")
            lowering.lower(op)
        lowering.op = None
        outputs = self._index_list(subgraph, "outputs", tensors)
        if not outputs:
            raise GraphError("the subgraph declares no outputs")
        graph.set_outputs(self._outputs(lowering, outputs, output_names))
        self._check_sizes(graph)
        graph.check()
        return graph

    # ---------------------------------------------------------------- model level
    def _operator_codes(self) -> list[tuple[str | None, int, str | None]]:
        """(builtin name or None for custom, version, custom code) per operator code."""
        codes = []
        for table in self.model.tables("operator_codes", limit=1 << 16):
            code = max(int(table.get("deprecated_builtin_code")), int(table.get("builtin_code")))
            custom = table.get("custom_code") if code == 32 else None
            if code == PLACEHOLDER_FOR_GREATER_OP_CODES:
                raise ModelFormatError(f"{table.where}: builtin_code is missing (the "
                                       "deprecated code says it is above 127)")
            codes.append((builtin_operator_name(code) if code != 32 else None,
                          int(table.get("version")), custom))
        return codes

    def _buffer_tables(self) -> list[Table]:
        if self._buffers is None:
            self._buffers = self.model.tables("buffers", limit=MAX_TENSORS)
        return self._buffers

    def _buffer_bytes(self, index: int, where: str) -> memoryview | None:
        """The bytes of buffer ``index`` (None when empty): in the FlatBuffer, or after it
        at ``offset`` / ``size`` (models over 2 GiB)."""
        if index == 0:
            return None
        buffers = self._buffer_tables()
        if index >= len(buffers):
            raise ModelFormatError(f"{where} uses buffer {index}, but the model has "
                                   f"{len(buffers)} buffers")
        table = buffers[index]
        data = table.get("data")
        if data is not None and data.size:
            return memoryview(data)
        offset, size = int(table.get("offset")), int(table.get("size"))
        if offset <= 1 or size == 0:
            return None
        if offset + size > self.file.size:
            raise ModelFormatError(f"{where}: buffer {index} (offset {offset}, {size} bytes) "
                                   f"lies past the end of the file ({self.file.size} bytes)")
        return memoryview(self.file.data)[offset:offset + size]

    def _metadata(self, graph: Graph) -> None:
        meta = graph.metadata
        meta["tflite_schema_version"] = str(SCHEMA_VERSION)
        description = self.model.get("description")
        if description:
            meta["description"] = description
        for table in self.model.tables("metadata", limit=1 << 16):
            name = table.get("name")
            raw = self._buffer_bytes(int(table.get("buffer")), table.where)
            if not name or raw is None:
                continue
            try:
                text = bytes(raw).decode("utf-8").rstrip("\x00")  # C strings are padded
            except UnicodeDecodeError:
                continue  # binary entries (the converter's CONVERSION_METADATA)
            if not text.isprintable():
                continue
            if name == "edgefw":
                meta.update(_spread_json(text))
            else:
                meta[name] = text

    def _signature_names(self) -> tuple[dict[int, str], dict[int, str]]:
        """tensor index -> signature name, for the inputs and the outputs of subgraph 0."""
        names: tuple[dict[int, str], dict[int, str]] = ({}, {})
        for signature in self.model.tables("signature_defs", limit=1 << 16):
            if signature.get("subgraph_index") != 0:
                continue
            for side, field in zip(names, ("inputs", "outputs"), strict=True):
                for entry in signature.tables(field, limit=MAX_TENSORS):
                    name = entry.get("name")
                    if name:
                        side.setdefault(int(entry.get("tensor_index")), name)
            break
        return names

    # ------------------------------------------------------------------ tensors
    def _tensor(self, index: int, table: Table) -> TensorInfo:
        where = f"tensor {index}"
        name = table.get("name") or ""
        if name:
            where = f"tensor {index} {name!r}"
        type_code = int(table.get("type"))
        dtype = TENSOR_TYPE_NAMES.get(type_code, f"type code {type_code}")
        shape = _dims(table.get("shape"), f"{where} shape", allow_dynamic=False)
        signature = table.get("shape_signature")
        if signature is not None:
            signature = _dims(signature, f"{where} shape_signature", allow_dynamic=True)
            if len(signature) != len(shape):
                raise ModelFormatError(f"{where}: shape_signature {list(signature)} and shape "
                                       f"{list(shape)} have different ranks")
        if table.get("is_variable"):
            raise UnsupportedOpError(f"{where} is a variable tensor (stateful models are not "
                                     "supported)")
        if table.has("sparsity"):
            raise UnsupportedOpError(f"{where} is sparse; edgefw reads dense tensors only")
        if table.get("external_buffer"):
            raise UnsupportedOpError(f"{where} keeps its data in an external buffer group, "
                                     "which edgefw does not read")
        quant = _quantization(table.get("quantization"), shape, where)
        return TensorInfo(index, name, dtype, shape, signature, int(table.get("buffer")), quant)

    def _constant(self, info: TensorInfo) -> np.ndarray | None:
        """The data of a constant tensor (a read-only view of the file), None for others."""
        if info.index in self._constants:
            return self._constants[info.index]
        where = f"tensor {info.index} {info.name!r}"
        raw = self._buffer_bytes(info.buffer, where)
        array = None
        if raw is not None:
            if info.dtype not in _SUPPORTED_DTYPES:
                raise UnsupportedOpError(f"{where} holds {info.dtype} data, which edgefw does "
                                         f"not support (supported: {', '.join(_SUPPORTED_DTYPES)})")
            dtype = np.dtype(info.dtype).newbyteorder("<")
            count = math.prod(info.shape)
            if len(raw) != count * dtype.itemsize:
                raise ModelFormatError(f"{where}: buffer {info.buffer} has {len(raw)} bytes but "
                                       f"shape {list(info.shape)} of {info.dtype} needs "
                                       f"{count * dtype.itemsize}")
            array = np.frombuffer(raw, dtype, count).reshape(info.shape)
            if info.dtype == "bool":
                array = array.view(np.uint8) != 0
        self._constants[info.index] = array
        return array

    def _index_list(self, subgraph: Table, field: str, tensors: list[TensorInfo]) -> list[int]:
        indices = subgraph.get(field)
        indices = [] if indices is None else [int(i) for i in indices]
        for i in indices:
            if not 0 <= i < len(tensors):
                raise ModelFormatError(f"subgraph {field} name tensor {i}; the subgraph has "
                                       f"{len(tensors)} tensors")
        return indices

    def _add_input(self, lowering: Lowering, info: TensorInfo, name: str | None) -> None:
        if info.dtype not in _SUPPORTED_DTYPES:
            raise UnsupportedOpError(f"graph input {info.name!r} has type {info.dtype}, which "
                                     "edgefw does not support")
        if lowering.is_defined(info.index):
            raise GraphError(f"tensor {info.index} {info.name!r} is listed twice as a graph "
                             "input, or is a constant")
        name = name or info.name or f"input_{info.index}"
        if lowering.graph.has_value(name):
            raise GraphError(f"two graph inputs are named {name!r}")
        value = lowering.graph.add_input(name, info.dtype, info.dims())
        value.quant = info.quant if info.dtype not in ("float32", "float16") else None
        lowering.define(info.index, value)

    def _operator(self, index: int, table: Table, codes: list, tensors: list) -> Operator:
        code_index = int(table.get("opcode_index"))
        if code_index >= len(codes):
            raise ModelFormatError(f"operator #{index} uses operator code {code_index}; the "
                                   f"model has {len(codes)}")
        name, version, custom = codes[code_index]
        if name is None:
            raise UnsupportedOpError(f"operator #{index} is the custom op {custom!r}; edgefw "
                                     "runs builtin TFLite ops only")
        inputs = self._operator_tensors(table, "inputs", index, name, tensors, optional=True)
        outputs = self._operator_tensors(table, "outputs", index, name, tensors, optional=False)
        type_code, options = table.union("builtin_options")
        op = Operator(index, name, version, inputs, outputs, options)
        expected = OPTIONS_TABLES.get(name)
        if expected is not None and type_code != 0 and (options is None
                                                        or options.kind != expected):
            carried = options.kind if options is not None else f"options type {type_code}"
            raise ModelFormatError(f"{op.describe()} carries {carried}, not {expected}")
        return op

    @staticmethod
    def _operator_tensors(table: Table, field: str, index: int, name: str, tensors: list,
                          optional: bool) -> list:
        raw = table.get(field)
        raw = [] if raw is None else raw
        if len(raw) > MAX_OPERATOR_TENSORS:
            raise ModelFormatError(f"operator #{index} ({name}) lists {len(raw)} {field}; at "
                                   f"most {MAX_OPERATOR_TENSORS} are supported")
        result: list[int | None] = []
        for t in (int(i) for i in raw):
            if t == -1 and optional:
                result.append(None)
            elif 0 <= t < len(tensors):
                result.append(t)
            else:
                raise ModelFormatError(f"operator #{index} ({name}) {field} name tensor {t}; "
                                       f"the subgraph has {len(tensors)} tensors")
        return result

    # ------------------------------------------------------------------ outputs
    @staticmethod
    def _outputs(lowering: Lowering, outputs: list[int], names: dict[int, str]) -> list[Value]:
        graph = lowering.graph
        result: list[Value] = []
        for t in outputs:
            value = lowering.value(t)
            if value in result or value in graph.inputs or value.is_constant:
                value = graph.add_node("Identity", [value], name=f"{value.name}/output").output
            result.append(value)
            wanted = names.get(t)
            if wanted and wanted != value.name and not graph.has_value(wanted):
                graph.rename_value(value, wanted)
        return result

    @staticmethod
    def _check_sizes(graph: Graph) -> None:
        """No value may be absurdly large (e.g. a RESHAPE to 10^12 elements)."""
        for node in graph.nodes:
            for v in node.outputs:
                if v.shape is not None and all(isinstance(d, int) for d in v.shape):
                    count = math.prod(v.shape)
                    if count > MAX_TENSOR_ELEMENTS:
                        raise ModelFormatError(f"{node.describe()} output {v.name!r} has shape "
                                               f"{list(v.shape)} ({count:.3g} elements), more "
                                               f"than the {MAX_TENSOR_ELEMENTS:.3g} allowed")


# ------------------------------------------------------------------------- helpers
def _dims(raw: np.ndarray | None, what: str, allow_dynamic: bool) -> tuple[int, ...]:
    if raw is None:
        return ()
    if len(raw) > MAX_RANK:
        raise ModelFormatError(f"{what} has rank {len(raw)}; edgefw supports up to {MAX_RANK}")
    dims = tuple(int(d) for d in raw)
    lowest = -1 if allow_dynamic else 0
    if any(d < lowest for d in dims):
        raise ModelFormatError(f"{what} {list(dims)} has a negative dim")
    known = [d for d in dims if d >= 0]
    if known and math.prod(known) > MAX_TENSOR_ELEMENTS:
        raise ModelFormatError(f"{what} {list(dims)} has more than {MAX_TENSOR_ELEMENTS:.3g} "
                               "elements")
    return dims


def _quantization(table: Table | None, shape: tuple[int, ...], where: str) -> QuantParams | None:
    """Affine quantization parameters; None when the tensor has none (or only min/max)."""
    if table is None:
        return None
    scale = table.get("scale")
    if scale is None or scale.size == 0:
        return None
    zero_point = table.get("zero_point")
    zero_point = np.zeros(scale.size, np.int64) if zero_point is None or zero_point.size == 0 \
        else zero_point.astype(np.int64)
    if zero_point.size != scale.size:
        raise ModelFormatError(f"{where}: {scale.size} quantization scales but "
                               f"{zero_point.size} zero points")
    if not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ModelFormatError(f"{where}: quantization scales must be finite and >= 0, got "
                               f"{scale[:8].tolist()}")
    if table.get("details_type"):
        raise UnsupportedOpError(f"{where} uses custom quantization details")
    axis = None
    if scale.size > 1:
        axis = int(table.get("quantized_dimension"))
        if not 0 <= axis < len(shape) or shape[axis] != scale.size:
            raise ModelFormatError(f"{where}: {scale.size} per-channel scales along axis {axis} "
                                   f"do not fit shape {list(shape)}")
    return QuantParams(scale.astype(np.float32), zero_point, axis)


def _spread_json(text: str) -> dict[str, str]:
    """edgefw's JSON metadata entry as string values (JSON-encoded where not a string)."""
    try:
        facts = json.loads(text)
    except json.JSONDecodeError:
        return {"edgefw": text}
    if not isinstance(facts, dict):
        return {"edgefw": text}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in facts.items()}


__all__ = ["BUILTIN_OPERATOR_NAMES", "MAX_FILE_BYTES", "load_tflite", "read_tflite_header",
           "supported_builtin_ops"]
