"""The pieces every ONNX rewrite writes with: names, new constants, typed attributes, nodes.

An :class:`OnnxEmitter` collects what one export writes (``NodeProto`` s and the
initializers it had to create) for one target opset, and hands out names that clash with
nothing in the IR graph. A :class:`NodeWriter` is the view one IR node's rewrite gets: the
ONNX names of the node's inputs and outputs, its explicitly set attributes, and ``emit``,
which writes a node named after the IR node and documented with its module path::

    writer.emit("Erf", [scaled], step="erf")          # -> a new value "act/erf"
    writer.emit("Mul", [x, half], writer.outputs)      # the IR node's own output

Attribute values are converted to the type the ONNX schema declares at the target opset,
so ``alpha=1`` becomes a FLOAT and an attribute the opset does not know is an
:class:`~edgefw.errors.ExportError` naming the node, never a file onnxruntime rejects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
from onnx import AttributeProto, NodeProto, TensorProto, defs, helper, numpy_helper

from edgefw.errors import ExportError
from edgefw.ir.graph import constant_data

if TYPE_CHECKING:
    from edgefw.ir import Graph, Node, Value

_ATTR = AttributeProto.AttributeType


def onnx_schema(op_type: str, opset: int, domain: str = "") -> defs.OpSchema | None:
    """The ONNX schema of ``op_type`` in effect at ``opset`` (None if the op is newer)."""
    try:
        return defs.get_schema(op_type, opset, domain)
    except defs.SchemaError:
        return None


def first_opset(op_type: str, domain: str = "") -> int | None:
    """The first opset in which ONNX defines ``op_type`` (None if it never does)."""
    for version in range(1, defs.onnx_opset_version() + 1):
        if onnx_schema(op_type, version, domain) is not None:
            return version
    return None


def op_missing_reason(op_type: str) -> str:
    since = first_opset(op_type)
    if since is None:
        return f"{op_type} is not an ONNX operator"
    return f"{op_type} exists in ONNX from opset {since} on"


def describe_node(node: Node) -> str:
    """``node 'fc1' (Gemm) in module 'fc1'``: how export errors name a node."""
    return f"node '{node.name}' ({node.op_type}) in module '{node.module_path or '<root>'}'"


def export_error(node: Node, opset: int, reason: str) -> ExportError:
    return ExportError(f"cannot export {describe_node(node)} at ONNX opset {opset}: {reason}")


class OnnxEmitter:
    """What one export has written so far: nodes, new initializers, names in use."""

    def __init__(self, graph: Graph, opset: int) -> None:
        self.graph = graph
        self.opset = opset
        self.nodes: list[NodeProto] = []
        #: Constants the rewrites created (IR constants are written by the writer).
        self.initializers: list[TensorProto] = []
        # ONNX keeps value names and node names apart; so does the emitter.
        self._values: set[str] = {v.name for v in graph.values()}
        self._nodes: set[str] = {n.name for n in graph.nodes}

    def fresh(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``... whichever no value has yet."""
        return _claim(base, self._values)

    def fresh_node_name(self, base: str) -> str:
        """``base`` or the first ``base_<n>`` no node has yet."""
        return _claim(base, self._nodes)

    def constant(self, array: np.ndarray, base: str) -> str:
        """Add ``array`` as a new initializer named after ``base``; returns its name."""
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def add_node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str],
                 attrs: Mapping[str, Any], *, name: str, doc: str | None,
                 owner: Node) -> NodeProto:
        """Write one node; attributes take the types the opset's schema declares."""
        schema = onnx_schema(op_type, self.opset)
        if schema is None:
            raise export_error(owner, self.opset, op_missing_reason(op_type))
        inputs = list(inputs)
        while inputs and inputs[-1] == "":  # trailing omitted optional inputs
            inputs.pop()
        for what, count, low, high in (("inputs", len(inputs), schema.min_input,
                                        schema.max_input),
                                       ("outputs", len(outputs), schema.min_output,
                                        schema.max_output)):
            if not low <= count <= high:
                raise export_error(owner, self.opset, f"{op_type}-{schema.since_version} takes "
                                   f"{low} to {high} {what}, not {count}")
        node = helper.make_node(op_type, inputs, list(outputs), name=name)
        for key, value in attrs.items():
            if value is None:
                continue
            spec = schema.attributes.get(key)
            if spec is None:
                raise export_error(owner, self.opset, f"{op_type}-{schema.since_version} has no "
                                   f"attribute {key!r} (it has: "
                                   f"{', '.join(sorted(schema.attributes)) or 'none'})")
            node.attribute.append(make_attribute(key, value, spec.type))
        if doc:
            node.doc_string = doc
        self.nodes.append(node)
        return node


def _claim(base: str, taken: set[str]) -> str:
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def make_attribute(key: str, value: Any, attr_type: _ATTR) -> AttributeProto:
    """An AttributeProto of exactly ``attr_type`` (ints where ONNX wants floats become floats)."""
    if attr_type == _ATTR.FLOAT:
        value = float(value)
    elif attr_type == _ATTR.INT:
        value = int(value)
    elif attr_type == _ATTR.FLOATS:
        value = [float(v) for v in value]
    elif attr_type == _ATTR.INTS:
        value = [int(v) for v in value]
    elif attr_type == _ATTR.TENSOR:
        value = numpy_helper.from_array(np.asarray(value))
    return helper.make_attribute(key, value, attr_type=attr_type)


class NodeWriter:
    """One IR node as its rewrite sees it.

    ``inputs``: ONNX names of the node's inputs (``""`` for an omitted optional one);
    ``outputs``: the names its ONNX form must produce (the IR output names, except that a
    fused activation's producer writes to a fresh name the activation then reads);
    ``attrs``: the attributes the node sets explicitly.
    """

    def __init__(self, emitter: OnnxEmitter, node: Node, outputs: Sequence[str]) -> None:
        self.emitter = emitter
        self.node = node
        self.opset = emitter.opset
        self.inputs = ["" if v is None else v.name for v in node.inputs]
        self.outputs = list(outputs)
        self.attrs = {k: v for k, v in node.attrs.items() if v is not None}
        self._main_written = False

    # ------------------------------------------------------------------ reading
    def value(self, i: int) -> Value | None:
        """IR input ``i`` (None when omitted or past the end)."""
        return self.node.inputs[i] if i < len(self.node.inputs) else None

    def has_input(self, i: int) -> bool:
        return self.value(i) is not None

    def const(self, i: int) -> np.ndarray | None:
        """Data of input ``i`` when it is a constant (or a Constant node's output)."""
        value = self.value(i)
        return None if value is None else constant_data(value)

    def const_ints(self, i: int, what: str) -> list[int]:
        """Constant integer input ``i``; ExportError (naming ``what``) when not constant."""
        data = self.const(i)
        if data is None:
            self.fail(f"its {what} (input {i}) must be a constant to be written as an "
                      "attribute at this opset; it is computed at run time")
        return [int(v) for v in np.asarray(data).reshape(-1)]

    @property
    def dtype(self) -> str:
        """dtype of the first input (what decompositions compute in)."""
        value = self.value(0)
        if value is None or value.dtype is None:
            self.fail("the dtype of its first input is unknown")
        return value.dtype

    def fail(self, reason: str) -> NoReturn:
        raise export_error(self.node, self.opset, reason)

    # ------------------------------------------------------------------ writing
    def emit(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | None = None,
             attrs: Mapping[str, Any] | None = None, *, step: str | None = None) -> str:
        """Write ``op_type`` for this IR node; returns its first output's name.

        Without ``outputs`` the node gets one fresh output named ``<node>/<step>``. The
        node is called after the IR node (``<node>/<step>`` for helper nodes) and its
        doc_string is the IR node's module path.
        """
        base = self.node.name if step is None else f"{self.node.name}/{step}"
        if outputs is None:
            outputs = [self.emitter.fresh(base)]
        name = self.emitter.fresh_node_name(base) if step is not None or self._main_written \
            else self.node.name
        self._main_written = self._main_written or name == self.node.name
        self.emitter.add_node(op_type, inputs, outputs, attrs or {}, name=name,
                              doc=self.node.module_path, owner=self.node)
        return outputs[0]

    def scalar(self, value: float, dtype: str | np.dtype, hint: str) -> str:
        """A scalar initializer of ``dtype`` (e.g. the 0.5 of a GELU decomposition)."""
        return self.emitter.constant(np.array(value, dtype=dtype), f"{self.node.name}/{hint}")

    def ints(self, values: Sequence[int], hint: str) -> str:
        """An int64 vector initializer (axes, pads, split sizes...)."""
        return self.emitter.constant(np.asarray(values, dtype=np.int64),
                                     f"{self.node.name}/{hint}")


__all__ = [
    "NodeWriter",
    "OnnxEmitter",
    "describe_node",
    "export_error",
    "first_opset",
    "make_attribute",
    "op_missing_reason",
    "onnx_schema",
]
