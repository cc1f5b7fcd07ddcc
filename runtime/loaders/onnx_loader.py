"""Load an ``.onnx`` model (a path, its bytes or an ``onnx.ModelProto``) into an IR graph.

>>> import runtime
>>> graph = runtime.load_onnx("tests/fixtures/onnx/lenet_ts17.onnx")
>>> graph.inputs[0].shape
('batch', 1, 28, 28)
>>> session = runtime.InferenceSession("tests/fixtures/onnx/lenet_ts17.onnx")  # same loader

How the file maps onto the IR:

- initializers -> constants; graph inputs that are also initializers (old exporters listed
  every weight as an input) -> constants too: they are weights, not something to feed.
- ``Constant`` nodes (``value``, ``value_float(s)``, ``value_int(s)``) -> constants, and
  ``ConstantOfShape`` with a constant shape -> a constant (a read-only broadcast view,
  nothing allocated).
- input dims: ``dim_param`` -> the symbol (``"batch"``), no value -> ``None`` (unknown).
- ``value_info`` is not needed (the IR infers every shape); declared output dtypes are
  checked against the inferred ones.
- old operator forms are rewritten to the IR's newest form (:mod:`runtime.loaders.
  onnx_opsets`); nodes are scheduled in dependency order whatever order the file has.
- external data is read from files beside the model file only (models given as bytes
  cannot have any), with offsets and lengths checked against the file's size.

Refused, with an edgefw error naming the node and what is wrong: unknown ops
(UnsupportedOpError listing the supported ones), subgraphs (If/Loop/Scan), non-tensor
values, cycles, undefined inputs and duplicate value names (GraphError), and truncated,
corrupt or absurd files (ModelFormatError): every size is checked before numpy allocates.
The ``onnx`` package is imported only when a model is loaded.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgefw.errors import EdgeFWError, GraphError, ModelFormatError, UnsupportedOpError
from edgefw.ir import Graph, Value, has_schema, known_ops
from edgefw.ir.schema.dims import is_static
from edgefw.ir.toposort import stable_order
from runtime.loaders.files import read_model_file
from runtime.loaders.onnx_opsets import NodeBuilder, upgrade
from runtime.loaders.onnx_tensors import (
    MAX_TENSOR_ELEMENTS,
    element_count,
    tensor_to_array,
    value_info_type,
)

#: Opsets of the default domain this loader understands (newer ones may change semantics).
MIN_OPSET, MAX_OPSET = 1, 28
#: Protobuf cannot encode a message past 2 GiB, so no valid .onnx file is larger.
MAX_FILE_BYTES = 2**31
#: Values computed from constants alone (folded when a session is created) stay below
#: this many elements (1 GiB of float32).
MAX_FOLDED_ELEMENTS = 2**28
# IR graphs written from old opsets still use the newest op forms (axes as inputs...).
MIN_GRAPH_OPSET = 18
_DEFAULT_DOMAINS = ("", "ai.onnx")
_CONSTANT_FORMS = {"value_float": np.float32, "value_floats": np.float32,
                   "value_int": np.int64, "value_ints": np.int64}
_SUBGRAPH_KINDS = {5: "GRAPH", 10: "GRAPHS"}
_UNSUPPORTED_ATTR_KINDS = {9: "TENSORS", 11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS",
                           13: "TYPE_PROTO", 14: "TYPE_PROTOS"}


def load_onnx(model: Any) -> Graph:
    """Read an ONNX model into an :class:`edgefw.ir.Graph` (verified with ``check()``).

    ``model``: a path to a ``.onnx`` file, the file's bytes, or an ``onnx.ModelProto``.
    Raises ModelFormatError (not a valid/supported file), UnsupportedOpError (an op or
    feature the IR lacks) or GraphError (cycles, undefined or duplicate names).

    >>> g = load_onnx(open("tests/fixtures/onnx/mlp_ts17.onnx", "rb").read())
    >>> [n.op_type for n in g.nodes]
    ['Flatten', 'Gemm', 'Relu', 'Gemm', 'Relu', 'Gemm']
    """
    proto, base_dir, label = _read(model)
    try:
        return _GraphReader(proto, base_dir, label).read()
    except EdgeFWError as exc:
        if str(exc).startswith(label):
            raise
        raise type(exc)(f"{label}: {exc}") from exc
    except RecursionError:
        raise ModelFormatError(f"{label}: the model is nested too deeply") from None


def _read(model: Any) -> tuple[Any, str | None, str]:
    """(ModelProto, folder of the file or None, label for messages)."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        data = read_model_file(path, "ONNX", MAX_FILE_BYTES, "an ONNX file holds at most "
                               "2 GiB (larger weights must be in external data files)")
        return _parse(data, path), os.path.dirname(os.path.abspath(path)), path
    if isinstance(model, (bytes, bytearray, memoryview)):
        return _parse(bytes(model), "<onnx bytes>"), None, "<onnx bytes>"
    if hasattr(model, "graph") and hasattr(model, "opset_import"):
        return model, None, f"<ModelProto {getattr(model.graph, 'name', '')!r}>"
    raise ModelFormatError(f"load_onnx needs a path, bytes or an onnx.ModelProto; got "
                           f"{type(model).__name__}")


def _parse(data: bytes, label: str) -> Any:
    try:  # lazily: the runtime imports without onnx until a model is loaded
        import onnx
    except ImportError:
        raise ModelFormatError(f"reading {label} needs the 'onnx' package (pip install onnx)"
                               ) from None

    if not data:
        raise ModelFormatError(f"{label} is empty")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ModelFormatError(f"{label} is not a valid ONNX model (truncated or corrupt "
                               f"protobuf: {exc})") from None
    if not proto.HasField("graph"):
        raise ModelFormatError(f"{label} is not an ONNX model: it parses as protobuf but has no "
                               "graph")
    _check_text_fields(proto, label)
    return proto


def _check_text_fields(message: Any, where: str) -> None:
    """Every string field holds valid UTF-8 text: protobuf does not check proto2 strings
    while parsing and hands invalid ones over as bytes, which would surface later as odd
    TypeErrors (a corrupt name is a corrupt file)."""
    string_type, message_type = 9, 11  # FieldDescriptor.TYPE_STRING, TYPE_MESSAGE
    for field, value in message.ListFields():
        if field.type == string_type:
            values = value if _repeated(field) else (value,)
            for text in values:
                if not isinstance(text, str):
                    raise ModelFormatError(f"{where}: field {field.name!r} of "
                                           f"{message.DESCRIPTOR.name} is not valid UTF-8 "
                                           f"text: {bytes(text)[:40]!r}")
        elif field.type == message_type:
            children = value if _repeated(field) else (value,)
            for child in children:
                _check_text_fields(child, where)


def _repeated(field: Any) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 5; older ones have label only
    return bool(flag) if flag is not None else field.label == 3  # LABEL_REPEATED


def _default_opset(proto: Any, label: str) -> int:
    versions = {entry.domain: int(entry.version) for entry in proto.opset_import}
    found = [versions[d] for d in _DEFAULT_DOMAINS if d in versions]
    if not found:
        if proto.ir_version and proto.ir_version < 3:
            return 1  # before opset_import existed, models were opset 1
        raise ModelFormatError(f"{label} declares no opset for the default ONNX domain "
                               f"(opset_import: {sorted(versions.items())})")
    opset = max(found)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelFormatError(f"{label} declares opset {opset}; supported opsets are "
                               f"{MIN_OPSET} to {MAX_OPSET}")
    return opset


def supported_ops() -> list[str]:
    """Op types the loader can run on the CPU provider (an IR schema and a CPU kernel)."""
    from runtime.providers.cpu.registry import supported_ops as cpu_ops

    return sorted(set(known_ops()) & set(cpu_ops()))


class _GraphReader:
    """One model being read: the graph under construction and the file's value names."""

    def __init__(self, proto: Any, base_dir: str | None, label: str) -> None:
        self.proto = proto
        self.onnx_graph = proto.graph
        self.base_dir = base_dir
        self.label = label
        self.opset = _default_opset(proto, label)
        self.graph = Graph(self.onnx_graph.name or "onnx_model",
                           opset=max(self.opset, MIN_GRAPH_OPSET))
        self.values: dict[str, Value] = {}
        self.initializers: dict[str, Any] = {}
        self.reserved: set[str] = set()

    def read(self) -> Graph:
        g, og = self.graph, self.onnx_graph
        self._metadata()
        if len(og.sparse_initializer):
            raise ModelFormatError("sparse initializers are not supported")
        for tensor in og.initializer:
            if not tensor.name:
                raise ModelFormatError("an initializer has no name")
            if tensor.name in self.initializers:
                raise GraphError(f"initializer {tensor.name!r} is defined twice")
            self.initializers[tensor.name] = tensor
        for info in og.input:
            if info.name in self.initializers:
                continue  # an old exporter's weight listed as input: it stays a constant
            self._add_input(info)
        self.reserved = self._all_names()
        for index in self._schedule():
            self._add_node(og.node[index])
        outputs = []
        for info in og.output:
            outputs.append(self._output(info))
        if not outputs:
            raise GraphError("the graph declares no outputs")
        g.set_outputs(outputs)
        self._check_sizes()
        g.check()
        return g

    # ------------------------------------------------------------------ values
    def _metadata(self) -> None:
        p, meta = self.proto, self.graph.metadata
        for key in ("producer_name", "producer_version", "domain", "doc_string"):
            if getattr(p, key):
                meta[key] = str(getattr(p, key))
        if p.model_version:
            meta["model_version"] = str(p.model_version)
        meta["onnx_opset"] = str(self.opset)
        for prop in p.metadata_props:
            meta[prop.key] = prop.value

    def _add_input(self, info: Any) -> None:
        if not info.name:
            raise ModelFormatError("a graph input has no name")
        if info.name in self.values:
            raise GraphError(f"graph input {info.name!r} is declared twice")
        dtype, shape = value_info_type(info, "graph input")
        if dtype is None:
            raise ModelFormatError(f"graph input {info.name!r} declares no element type")
        self.values[info.name] = self.graph.add_input(info.name, dtype, shape)

    def _value(self, name: str, user: str) -> Value:
        """The Value called ``name`` in the file; initializers are decoded on first use."""
        value = self.values.get(name)
        if value is not None:
            return value
        tensor = self.initializers.get(name)
        if tensor is None:  # cannot happen after _schedule's checks
            raise GraphError(f"{user} reads {name!r}, which nothing defines")
        array = tensor_to_array(tensor, "initializer", self.base_dir)
        value = self.values[name] = self._constant(name, array)
        return value

    def _constant(self, name: str, array: np.ndarray) -> Value:
        value = self.graph.add_constant(name, array, copy=False)
        if value.name != name:
            raise GraphError(f"value {name!r} is defined twice")
        return value

    def _output(self, info: Any) -> Value:
        if info.name not in self.values and info.name not in self.initializers:
            raise GraphError(f"graph output {info.name!r} is not produced by any node, input or "
                             "initializer")
        value = self._value(info.name, "the graph outputs")
        declared, _ = value_info_type(info, "graph output")
        if declared is not None and value.dtype is not None and declared != value.dtype:
            raise GraphError(f"graph output {info.name!r} is declared {declared} but computes "
                             f"{value.dtype}")
        return value

    def _all_names(self) -> set[str]:
        names = set(self.values) | set(self.initializers)
        for node in self.onnx_graph.node:
            names.update(node.output)
        return names

    # ------------------------------------------------------------------- nodes
    def _schedule(self) -> list[int]:
        """Node indices in dependency order (stable); GraphError on duplicate definitions,
        undefined inputs and cycles, naming the nodes."""
        nodes = self.onnx_graph.node
        defined = set(self.values) | set(self.initializers)
        producer: dict[str, int] = {}
        for i, node in enumerate(nodes):
            for out in node.output:
                if not out:
                    continue
                if out in defined or out in producer:
                    where = "a graph input or initializer" if out in defined \
                        else _describe(nodes[producer[out]], producer[out])
                    raise GraphError(f"value {out!r} is defined twice: by {_describe(node, i)} "
                                     f"and by {where}")
                producer[out] = i
        deps: list[set[int]] = []
        for i, node in enumerate(nodes):
            needed = set()
            for name in node.input:
                if not name:
                    continue
                if name in producer:
                    needed.add(producer[name])
                elif name not in defined:
                    raise GraphError(f"{_describe(node, i)} reads {name!r}, which no node, "
                                     "graph input or initializer defines")
            if i in needed:
                raise GraphError(f"{_describe(node, i)} reads its own output (a cycle)")
            deps.append(needed)
        order, unresolved = stable_order(deps)
        if unresolved:
            stuck = [_describe(nodes[i], i) for i in unresolved]
            raise GraphError("the graph has a cycle through " + ", ".join(stuck[:10])
                             + (f" and {len(stuck) - 10} more" if len(stuck) > 10 else ""))
        return order

    def _add_node(self, node: Any) -> None:
        where = _describe(node, None)
        domain = "" if node.domain in _DEFAULT_DOMAINS else node.domain
        attrs = self._attributes(node, where)
        inputs = [None if not name else self._value(name, where) for name in node.input]
        if domain == "" and node.op_type == "Constant":
            self._constant_node(node, attrs, where)
            return
        if domain == "" and node.op_type == "ConstantOfShape" and self._fold_constant_of_shape(
                node, inputs, attrs, where):
            return
        if not has_schema(node.op_type, domain):
            in_domain = f" (domain {node.domain!r})" if domain else ""
            raise UnsupportedOpError(
                f"{where} uses op {node.op_type!r}{in_domain}, which edgefw does not support; "
                f"supported ops: {', '.join(supported_ops())}")
        builder = NodeBuilder(self.graph, node.op_type, domain, node.name, inputs, attrs,
                              list(node.output), self.opset, self.reserved)
        upgrade(builder)
        for name, value in builder.outputs.items():
            self.values[name] = value

    def _attributes(self, node: Any, where: str) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        for attr in node.attribute:
            if attr.name in attrs:
                raise ModelFormatError(f"{where} sets attribute {attr.name!r} twice")
            attrs[attr.name] = self._attribute_value(attr, where)
        return attrs

    def _attribute_value(self, attr: Any, where: str) -> Any:
        kind = attr.type or _guess_attribute_type(attr)
        what = f"{where} attribute {attr.name!r}"
        if attr.ref_attr_name:
            raise UnsupportedOpError(f"{what} refers to a function attribute; ONNX functions "
                                     "are not supported")
        if kind in _SUBGRAPH_KINDS:
            raise UnsupportedOpError(f"{where} has a subgraph ({attr.name!r}); control flow "
                                     "(If, Loop, Scan) is not supported by edgefw's runtime")
        if kind in _UNSUPPORTED_ATTR_KINDS:
            raise UnsupportedOpError(f"{what} is of type {_UNSUPPORTED_ATTR_KINDS[kind]}, which "
                                     "is not supported")
        if kind == 1:
            return float(attr.f)
        if kind == 2:
            return int(attr.i)
        if kind == 3:
            return _text(attr.s, what)
        if kind == 4:
            return tensor_to_array(attr.t, what, self.base_dir)
        if kind == 6:
            return [float(v) for v in attr.floats]
        if kind == 7:
            return [int(v) for v in attr.ints]
        if kind == 8:
            return [_text(s, what) for s in attr.strings]
        raise ModelFormatError(f"{what} has unknown attribute type {kind}")

    def _constant_node(self, node: Any, attrs: dict[str, Any], where: str) -> None:
        given = [k for k in attrs if k.startswith("value") or k == "sparse_value"]
        if len(node.output) != 1 or not node.output[0] or len(given) != 1 or len(attrs) != 1:
            raise GraphError(f"{where}: a Constant needs one output and exactly one value "
                             f"attribute, got outputs {list(node.output)} and attributes "
                             f"{sorted(attrs)}")
        kind = given[0]
        if kind == "value":
            array = attrs[kind]
        elif kind in _CONSTANT_FORMS:
            if isinstance(attrs[kind], (str, np.ndarray)) or (
                    isinstance(attrs[kind], list) and not all(
                        isinstance(v, (int, float)) for v in attrs[kind])):
                raise GraphError(f"{where}: {kind} must hold numbers, not "
                                 f"{type(attrs[kind]).__name__}")
            array = np.asarray(attrs[kind], dtype=_CONSTANT_FORMS[kind])
        else:
            raise UnsupportedOpError(f"{where}: Constant {kind} (strings or sparse tensors) is "
                                     "not supported")
        self.values[node.output[0]] = self._constant(node.output[0], array)

    def _fold_constant_of_shape(self, node: Any, inputs: list[Value | None],
                                attrs: dict[str, Any], where: str) -> bool:
        """ConstantOfShape of a constant shape becomes a constant: a read-only broadcast of
        the fill value, so even a large shape allocates nothing."""
        if len(inputs) != 1 or inputs[0] is None or inputs[0].data is None:
            return False
        shape_data = inputs[0].data
        if shape_data.ndim != 1 or shape_data.dtype != np.int64:
            raise GraphError(f"{where}: the shape input must be a 1-D int64 tensor, got "
                             f"{shape_data.dtype}{list(shape_data.shape)}")
        shape = [int(d) for d in shape_data]
        element_count(shape, f"{where} output")
        fill = attrs.pop("value", np.zeros(1, np.float32))
        if attrs:
            raise GraphError(f"{where}: unknown attributes {sorted(attrs)} (known: value)")
        if not isinstance(fill, np.ndarray) or fill.size != 1:
            raise GraphError(f"{where}: value must be a one-element tensor")
        if len(node.output) != 1 or not node.output[0]:
            raise GraphError(f"{where} must have one output")
        array = np.broadcast_to(fill.reshape(()), shape)
        self.values[node.output[0]] = self._constant(node.output[0], array)
        return True

    # ------------------------------------------------------------------ checks
    def _check_sizes(self) -> None:
        """No value the graph computes may be absurdly large (e.g. Expand to 10^12 x 10^12):
        the planner would refuse the buffer, but a kernel would still try at run time.

        Symbolic dims count as 1 (the check then bounds the size per batch item). Values
        computed from constants alone get a tighter bound: sessions fold them while they
        are created, so a tiny file must not make that allocate gigabytes."""
        constant_derived = {id(v) for v in self.graph.constants.values()}
        for node in self.graph.nodes:
            from_constants = all(v is None or id(v) in constant_derived for v in node.inputs)
            for v in node.outputs:
                if from_constants:
                    constant_derived.add(id(v))
                if v.shape is None:
                    continue
                dims = [d for d in v.shape if isinstance(d, int)]
                limit = MAX_FOLDED_ELEMENTS if from_constants and is_static(v.shape) \
                    else MAX_TENSOR_ELEMENTS
                element_count(dims, f"{node.describe()} output {v.name!r}", limit)


def _describe(node: Any, index: int | None) -> str:
    name = f"{node.name!r}" if node.name else (f"#{index}" if index is not None else "(unnamed)")
    return f"node {name} ({node.op_type})"


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFormatError(f"{what} is not valid UTF-8 text") from None


def _guess_attribute_type(attr: Any) -> int:
    """Type code of an attribute written without ``type`` (very old files): the field set."""
    for field, code in (("floats", 6), ("ints", 7), ("strings", 8), ("graphs", 10),
                        ("tensors", 9)):
        if len(getattr(attr, field)):
            return code
    for field, code in (("f", 1), ("i", 2), ("s", 3), ("t", 4), ("g", 5)):
        if attr.HasField(field):
            return code
    raise ModelFormatError(f"attribute {attr.name!r} has no type and no value")


__all__ = ["MAX_OPSET", "MIN_OPSET", "load_onnx", "supported_ops"]
