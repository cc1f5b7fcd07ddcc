"""The graph IR: :class:`Graph` of :class:`Node` s over :class:`Value` s, ONNX semantics.

Build graphs through the builder methods, which run each op's shape/dtype inference so
callers never compute shapes::

    >>> import numpy as np
    >>> g = Graph("mlp")
    >>> x = g.add_input("input", "float32", ("batch", 1, 28, 28))
    >>> w = g.add_constant("fc1.weight", np.zeros((128, 784), np.float32))
    >>> flat = g.add_node("Flatten", [x]).output
    >>> fc1 = g.add_node("Gemm", [flat, w], {"transB": 1}, module_path="fc1")
    >>> g.set_outputs([fc1.output])
    >>> fc1.output.shape
    ('batch', 128)
    >>> g.check()

Values are compared by identity; names are unique within a graph (the builder suffixes
taken names) and are what files and sessions use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from edgefw.errors import DTypeError, GraphError, ShapeError
from edgefw.ir.dtypes import normalize_dtype
from edgefw.ir.node import Node, QuantParams, Value, normalize_attr, normalize_shape
from edgefw.ir.schema import get_schema, infer_types
from edgefw.ir.schema.dims import Dim, format_shape
from edgefw.ir.schema.tensor import constant_value
from edgefw.ir.toposort import stable_order

DEFAULT_OPSET = 17


def _snake(op_type: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", op_type).lower()


class Graph:
    """A topologically ordered graph with ONNX op semantics (see the module docstring)."""

    def __init__(self, name: str = "graph", opset: int = DEFAULT_OPSET) -> None:
        self.name = name
        self.opset = opset
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.nodes: list[Node] = []
        #: Constant values (initializers) by name.
        self.constants: dict[str, Value] = {}
        #: Free-form string metadata (producer, input layout, class labels...).
        self.metadata: dict[str, str] = {}
        self._values: dict[str, Value] = {}
        self._node_names: set[str] = set()

    # ----------------------------------------------------------------- names
    def unique_value_name(self, base: str) -> str:
        """``base`` if no value has it yet, else ``base_1``, ``base_2``..."""
        return _unique(base or "value", self._values)

    def unique_node_name(self, base: str) -> str:
        return _unique(base or "node", self._node_names)

    def value(self, name: str) -> Value:
        """The value called ``name`` (input, constant or node output)."""
        try:
            return self._values[name]
        except KeyError:
            raise GraphError(f"graph '{self.name}' has no value named {name!r}") from None

    def has_value(self, name: str) -> bool:
        return name in self._values

    def values(self) -> Iterator[Value]:
        """Inputs, constants, then node outputs in order."""
        yield from self.inputs
        yield from self.constants.values()
        for node in self.nodes:
            yield from node.outputs

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise GraphError(f"graph '{self.name}' has no node named {name!r}")

    def rename_value(self, value: Value, new_name: str) -> None:
        """Give ``value`` the name ``new_name`` (GraphError if another value has it)."""
        if self._values.get(value.name) is not value:
            raise GraphError(f"value {value.name!r} does not belong to graph '{self.name}'")
        if new_name == value.name:
            return
        if new_name in self._values:
            raise GraphError(f"cannot rename {value.name!r}: {new_name!r} is already taken")
        del self._values[value.name]
        if value.data is not None and self.constants.get(value.name) is value:
            self.constants = {
                (new_name if k == value.name else k): v for k, v in self.constants.items()
            }
        value.name = new_name
        self._values[new_name] = value

    # --------------------------------------------------------------- builder
    def add_input(self, name: str, dtype: str | np.dtype, shape: Sequence[Dim] | None) -> Value:
        """Declare a graph input; its name must be free (inputs are user-facing)."""
        if name in self._values:
            raise GraphError(f"cannot add input {name!r}: a value with that name exists")
        value = Value(name, dtype, shape)
        self._values[name] = value
        self.inputs.append(value)
        return value

    def add_constant(self, name: str, array: Any, *, copy: bool = True,
                     quant: QuantParams | None = None) -> Value:
        """Add a constant (initializer); a taken name gets a suffix. The array is copied
        (unless ``copy=False``) and made read-only, so later training does not change it."""
        data = np.array(array, copy=True) if copy else np.asarray(array)
        if data.dtype.byteorder == ">":
            data = data.astype(data.dtype.newbyteorder("="))
        data.flags.writeable = False
        name = self.unique_value_name(name)
        value = Value(name, normalize_dtype(data.dtype), data.shape, data=data, quant=quant)
        self._values[name] = value
        self.constants[name] = value
        return value

    def add_node(
        self,
        op_type: str,
        inputs: Sequence[Value | str | np.ndarray | None],
        attrs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        num_outputs: int = 1,
        module_path: str | None = None,
        output_names: Sequence[str] | None = None,
        domain: str = "",
        meta: Mapping[str, Any] | None = None,
        before: Node | None = None,
    ) -> Node:
        """Append (or insert ``before`` a node) an ``op_type`` node; outputs are created with
        inferred dtypes and shapes.

        Inputs may be Values of this graph, value names, numpy arrays (added as constants
        named after the node) or None for an omitted optional input. Errors name the node.
        """
        schema = get_schema(op_type, domain)
        node_name = self.unique_node_name(name or module_path or _snake(op_type))
        label = f"node '{node_name}' ({op_type}{', module ' + module_path if module_path else ''})"
        resolved = [self._resolve_input(v, node_name, i, label) for i, v in enumerate(inputs)]
        if output_names is not None:
            num_outputs = len(output_names)
        attrs = {k: normalize_attr(k, v) for k, v in (attrs or {}).items()}
        problems = schema.problems(resolved, num_outputs, attrs)
        if problems:
            raise GraphError(f"cannot add {label}: " + "; ".join(problems))
        try:
            types = infer_types(
                op_type,
                [None if v is None else v.type for v in resolved],
                [None if v is None else constant_data(v) for v in resolved],
                attrs,
                num_outputs,
                domain,
            )
        except (ShapeError, DTypeError, GraphError) as exc:
            shapes = ", ".join("_" if v is None else f"{v.dtype}{format_shape(v.shape)}"
                               for v in resolved)
            raise type(exc)(f"{label}: {exc} (inputs: {shapes})") from exc
        if output_names is None:
            output_names = [node_name] if num_outputs == 1 else [
                f"{node_name}_{i}" for i in range(num_outputs)
            ]
        outputs = []
        for out_name, t in zip(output_names, types, strict=True):
            value = Value(self.unique_value_name(out_name), t.dtype, t.shape)
            self._values[value.name] = value
            outputs.append(value)
        node = Node(op_type, node_name, resolved, outputs, attrs, domain, module_path,
                    dict(meta or {}))
        for value in outputs:
            value.producer = node
        self._node_names.add(node_name)
        if before is None:
            self.nodes.append(node)
        else:
            self.nodes.insert(self._index_of(before), node)
        return node

    def _resolve_input(self, v: Any, node_name: str, i: int, label: str) -> Value | None:
        if v is None:
            return None
        if isinstance(v, Value):
            if self._values.get(v.name) is not v:
                raise GraphError(f"cannot add {label}: input {i} {v.name!r} does not belong to "
                                 f"graph '{self.name}'")
            return v
        if isinstance(v, str):
            if v not in self._values:
                raise GraphError(f"cannot add {label}: input {i} {v!r} is not a value of graph "
                                 f"'{self.name}'")
            return self._values[v]
        if isinstance(v, (np.ndarray, np.generic, int, float, list)):
            return self.add_constant(f"{node_name}.in{i}", np.asarray(v))
        raise GraphError(f"cannot add {label}: input {i} is a {type(v).__name__}; expected a "
                         "Value, a value name, a numpy array or None")

    def set_outputs(self, outputs: Iterable[Value | str]) -> None:
        """Declare the graph outputs (Values or value names of this graph)."""
        resolved = []
        for v in outputs:
            value = self.value(v) if isinstance(v, str) else v
            if self._values.get(value.name) is not value:
                raise GraphError(f"output {value.name!r} does not belong to graph '{self.name}'")
            resolved.append(value)
        self.outputs = resolved

    # --------------------------------------------------------------- editing
    def producer(self, value: Value) -> Node | None:
        """The node producing ``value`` (None for inputs and constants)."""
        return value.producer

    def consumers(self, value: Value) -> list[Node]:
        """Nodes that read ``value``, in graph order, each once."""
        return [n for n in self.nodes if any(i is value for i in n.inputs)]

    def uses(self) -> dict[int, list[tuple[Node, int]]]:
        """``id(value) -> [(node, input index), ...]`` for every consumed value at once."""
        table: dict[int, list[tuple[Node, int]]] = {}
        for node in self.nodes:
            for i, v in enumerate(node.inputs):
                if v is not None:
                    table.setdefault(id(v), []).append((node, i))
        return table

    def is_output(self, value: Value) -> bool:
        return any(o is value for o in self.outputs)

    def replace_all_uses(self, old: Value, new: Value, *, keep_output_names: bool = True) -> int:
        """Make every reader of ``old`` (nodes and graph outputs) read ``new``; returns the
        number of uses changed.

        When ``old`` is a graph output and ``new`` is a plain node output, ``new`` takes
        over ``old``'s name (``old`` is renamed), so removing e.g. a final Identity keeps
        the output names a session's users rely on.
        """
        if old is new:
            return 0
        count = 0
        for node in self.nodes:
            for i, v in enumerate(node.inputs):
                if v is old:
                    node.inputs[i] = new
                    count += 1
        was_output = False
        for i, v in enumerate(self.outputs):
            if v is old:
                self.outputs[i] = new
                count += 1
                was_output = True
        if (was_output and keep_output_names and new.producer is not None
                and not any(v is new for v in self.inputs) and self._values.get(old.name) is old
                and sum(o is new for o in self.outputs) == 1):
            old_name = old.name
            self.rename_value(old, self.unique_value_name(old_name + "_replaced"))
            self.rename_value(new, old_name)
        return count

    def remove_node(self, node: Node) -> None:
        """Remove ``node``; GraphError if another node or a graph output still reads it."""
        index = self._index_of(node)
        for out in node.outputs:
            readers = [n.name for n in self.consumers(out) if n is not node]
            if readers or self.is_output(out):
                where = f"nodes {readers}" if readers else "the graph outputs"
                raise GraphError(f"cannot remove {node.describe()}: its output {out.name!r} is "
                                 f"still used by {where}")
        del self.nodes[index]
        self._node_names.discard(node.name)
        for out in node.outputs:
            if self._values.get(out.name) is out:
                del self._values[out.name]
            out.producer = None

    def remove_constant(self, value: Value) -> None:
        """Remove an unused constant; GraphError if something still reads it."""
        if self.constants.get(value.name) is not value:
            raise GraphError(f"{value.name!r} is not a constant of graph '{self.name}'")
        if self.consumers(value) or self.is_output(value):
            raise GraphError(f"cannot remove constant {value.name!r}: it is still used")
        del self.constants[value.name]
        del self._values[value.name]

    def remove_unused_constants(self) -> int:
        """Drop constants nothing reads; returns how many were removed."""
        used = {id(v) for n in self.nodes for v in n.inputs if v is not None}
        used |= {id(v) for v in self.outputs}
        dead = [v for v in self.constants.values() if id(v) not in used]
        for v in dead:
            del self.constants[v.name]
            del self._values[v.name]
        return len(dead)

    def _index_of(self, node: Node) -> int:
        for i, n in enumerate(self.nodes):
            if n is node:
                return i
        raise GraphError(f"{node.describe()} is not in graph '{self.name}'")

    def topological_sort(self) -> None:
        """Reorder ``nodes`` so every node follows its producers (stable: ties keep their
        current order); GraphError naming the nodes on a cycle."""
        producer_index = {id(o): i for i, n in enumerate(self.nodes) for o in n.outputs}
        deps: list[set[int]] = []
        for i, node in enumerate(self.nodes):
            if any(v is not None and producer_index.get(id(v)) == i for v in node.inputs):
                raise GraphError(f"{node.describe()} reads its own output (cycle)")
            deps.append({producer_index[id(v)] for v in node.inputs
                         if v is not None and id(v) in producer_index})
        order, unresolved = stable_order(deps)
        if unresolved:
            stuck = [self.nodes[i].describe() for i in unresolved]
            raise GraphError(f"graph '{self.name}' has a cycle through: " + ", ".join(stuck[:10]))
        self.nodes = [self.nodes[i] for i in order]

    # ------------------------------------------------------------ whole graph
    def copy(self) -> Graph:
        """A copy whose nodes, values, lists and dicts are new; constant arrays (read-only)
        are shared."""
        g = Graph(self.name, self.opset)
        g.metadata = dict(self.metadata)
        mapping: dict[int, Value] = {}

        def clone(v: Value) -> Value:
            new = mapping.get(id(v))
            if new is None:
                new = Value(v.name, v.dtype, v.shape, v.data, v.quant)
                new.meta = dict(v.meta)
                mapping[id(v)] = new
            return new

        g.inputs = [clone(v) for v in self.inputs]
        g.constants = {k: clone(v) for k, v in self.constants.items()}
        for node in self.nodes:
            outputs = [clone(v) for v in node.outputs]
            new = Node(
                node.op_type,
                node.name,
                [None if v is None else clone(v) for v in node.inputs],
                outputs,
                dict(node.attrs),
                node.domain,
                node.module_path,
                dict(node.meta),
            )
            for v in outputs:
                v.producer = new
            g.nodes.append(new)
        g.outputs = [clone(v) for v in self.outputs]
        g._values = {name: clone(v) for name, v in self._values.items()}
        g._node_names = set(self._node_names)
        return g

    def check(self) -> None:
        """Verify the graph; GraphError listing every problem found, each naming its node.

        Checks SSA (one definition per value, inputs and constants never reassigned),
        topological order, that every input is defined, known op types with their arity
        and required attributes, and that stored shapes/dtypes agree with inference.
        """
        from edgefw.ir.verifier import find_problems

        problems = find_problems(self)
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise GraphError(
                f"graph '{self.name}' does not verify ({len(problems)} problem"
                f"{'s' if len(problems) != 1 else ''}):\n  {shown}{more}"
            )

    def __str__(self) -> str:
        from edgefw.ir.printer import format_graph

        return format_graph(self)

    def __repr__(self) -> str:
        return (f"<Graph '{self.name}': {len(self.nodes)} nodes, inputs "
                f"{[v.name for v in self.inputs]}, outputs {[v.name for v in self.outputs]}>")


def constant_data(value: Value) -> np.ndarray | None:
    """The data of a constant value, or of a Constant node's output; else None."""
    if value.data is not None:
        return value.data
    node = value.producer
    if node is not None and node.op_type == "Constant" and node.domain == "":
        try:
            return constant_value(node.attrs)
        except (ShapeError, DTypeError):
            return None
    return None


def _unique(base: str, taken: Mapping[str, Any] | set[str]) -> str:
    if base not in taken:
        return base
    n = 1
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


__all__ = ["DEFAULT_OPSET", "Graph", "Node", "QuantParams", "Value", "constant_data",
           "normalize_shape"]
