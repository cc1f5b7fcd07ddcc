"""What ``Graph.check()`` verifies, as a list of problems each naming its node.

Kept apart from ``graph.py`` so the builder stays short; passes call ``graph.check()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefw.errors import EdgeFWError
from edgefw.ir.schema import get_schema, infer_types
from edgefw.ir.schema.dims import Shape, format_shape

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value


def shapes_conflict(stored: Shape | None, inferred: Shape | None) -> bool:
    """True when both shapes are known and differ in rank or in a dim both sides know."""
    if stored is None or inferred is None:
        return False
    if len(stored) != len(inferred):
        return True
    return any(a is not None and b is not None and a != b
               for a, b in zip(stored, inferred, strict=True))


def find_problems(graph: Graph) -> list[str]:
    """Every problem in ``graph`` (empty when it verifies)."""
    from edgefw.ir.graph import constant_data

    problems: list[str] = []
    defined: dict[int, str] = {}  # id(value) -> what defined it
    names: dict[str, str] = {}

    def define(value: Value, what: str, where: str) -> None:
        if id(value) in defined:
            problems.append(f"{where}: value {value.name!r} is already defined by "
                            f"{defined[id(value)]} (SSA: one definition per value)")
            return
        if value.name in names:
            problems.append(
                f"{where}: value name {value.name!r} is also used by {names[value.name]}"
            )
        defined[id(value)] = what
        names[value.name] = what

    for v in graph.inputs:
        define(v, f"graph input {v.name!r}", f"graph input {v.name!r}")
        if v.data is not None:
            problems.append(f"graph input {v.name!r} holds data (constants belong in constants)")
    for key, v in graph.constants.items():
        define(v, f"constant {v.name!r}", f"constant {v.name!r}")
        if v.data is None:
            problems.append(f"constant {v.name!r} has no data")
        elif key != v.name:
            problems.append(f"constant {v.name!r} is registered under the name {key!r}")
        elif v.dtype != v.data.dtype.name or v.shape != tuple(v.data.shape):
            problems.append(f"constant {v.name!r} is declared {v.dtype}{format_shape(v.shape)} "
                            f"but holds {v.data.dtype}{list(v.data.shape)}")

    later_outputs = {id(o): n for n in graph.nodes for o in n.outputs}
    node_names: set[str] = set()
    for node in graph.nodes:
        where = node.describe()
        if node.name in node_names:
            problems.append(f"{where}: node name is used twice")
        node_names.add(node.name)
        for i, v in enumerate(node.inputs):
            if v is None or id(v) in defined:
                continue
            if id(v) in later_outputs:
                problems.append(f"{where}: input {i} {v.name!r} is used before it is produced "
                                f"(by {later_outputs[id(v)].describe()}; not topologically "
                                "ordered)")
            else:
                problems.append(f"{where}: input {i} {v.name!r} is not defined in the graph")
        for v in node.outputs:
            if id(v) in defined:
                problems.append(f"{where}: reassigns {defined[id(v)]} (SSA: one definition per "
                                "value)")
                continue
            define(v, f"{node.describe()}", where)
            if v.producer is not node:
                problems.append(f"{where}: output {v.name!r} does not record it as producer")
        problems.extend(f"{where}: {p}" for p in _node_problems(node, constant_data))

    if not graph.outputs:
        problems.append(f"graph '{graph.name}' has no outputs")
    for v in graph.outputs:
        if id(v) not in defined:
            problems.append(f"graph output {v.name!r} is not defined in the graph")
    for name, v in graph._values.items():
        if name != v.name:
            problems.append(f"value {v.name!r} is indexed under the stale name {name!r}")
    return problems


def _node_problems(node: Node, constant_data) -> list[str]:
    try:
        schema = get_schema(node.op_type, node.domain)
    except EdgeFWError as exc:
        return [str(exc)]
    found = schema.problems(node.inputs, len(node.outputs), node.attrs)
    if found:
        return found
    try:
        inferred = infer_types(
            node.op_type,
            [None if v is None else v.type for v in node.inputs],
            [None if v is None else constant_data(v) for v in node.inputs],
            node.attrs,
            len(node.outputs),
            node.domain,
        )
    except EdgeFWError as exc:
        shapes = ", ".join("_" if v is None else f"{v.dtype}{format_shape(v.shape)}"
                           for v in node.inputs)
        return [f"inference fails: {exc} (inputs: {shapes})"]
    for v, t in zip(node.outputs, inferred, strict=True):
        if v.dtype is not None and t.dtype is not None and v.dtype != t.dtype:
            found.append(f"output {v.name!r} is declared {v.dtype} but inference gives {t.dtype}")
        if shapes_conflict(v.shape, t.shape):
            found.append(f"output {v.name!r} is declared {format_shape(v.shape)} but inference "
                         f"gives {format_shape(t.shape)}")
    return found


__all__ = ["find_problems", "shapes_conflict"]
