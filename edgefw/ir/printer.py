"""``str(graph)``: a compact listing, one node per line, like torch.fx's graph printout.

    graph mlp(%input: float32[batch,1,28,28]) -> (%fc2)  opset 17
      constants: fc1.weight float32[128,784], fc1.bias float32[128], ...
      %flatten = Flatten(%input)  # float32[batch,784]
      %fc1 = Gemm(%flatten, fc1.weight, fc1.bias, transB=1)  # float32[batch,128]  (fc1)
      return %fc2

Values computed by nodes and graph inputs print as ``%name``, constants by bare name,
omitted optional inputs as ``_``; a fused activation shows as ``Gemm[+Relu]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgefw.ir.schema.dims import format_shape

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value

MAX_LISTED_CONSTANTS = 16


def format_type(value: Value) -> str:
    return f"{value.dtype}{format_shape(value.shape)}"


def _ref(value: Value | None) -> str:
    if value is None:
        return "_"
    return value.name if value.data is not None else f"%{value.name}"


def _format_attr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 4:
            return f"{value.dtype}{list(value.shape)}{value.reshape(-1).tolist()}"
        return f"<{value.dtype}{list(value.shape)}>"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_format_attr(v) for v in value) + "]"
    return str(value)


def format_fused_activation(spec: Any) -> str:
    """``Relu``, ``Clip(0,6)``... for a ``meta["fused_activation"]`` mark."""
    if isinstance(spec, str):
        return spec
    name, *args = spec
    return f"{name}({','.join(_format_attr(a) for a in args)})" if args else str(name)


def format_node(node: Node) -> str:
    outputs = ", ".join(f"%{v.name}" for v in node.outputs)
    op = node.op_type if not node.domain else f"{node.domain}.{node.op_type}"
    fused = node.meta.get("fused_activation")
    if fused is not None:
        op += f"[+{format_fused_activation(fused)}]"
    args = [_ref(v) for v in node.inputs]
    args += [f"{k}={_format_attr(v)}" for k, v in node.attrs.items()]
    types = ", ".join(format_type(v) for v in node.outputs)
    line = f"{outputs} = {op}({', '.join(args)})  # {types}"
    if node.module_path:
        line += f"  ({node.module_path})"
    return line


def format_graph(graph: Graph, show_constants: bool | None = None) -> str:
    """The listing of ``graph``; constants are listed with their types when there are at
    most MAX_LISTED_CONSTANTS of them (or when ``show_constants`` says so)."""
    inputs = ", ".join(f"%{v.name}: {format_type(v)}" for v in graph.inputs)
    outputs = ", ".join(_ref(v) for v in graph.outputs)
    lines = [f"graph {graph.name}({inputs}) -> ({outputs})  opset {graph.opset}"]
    consts = list(graph.constants.values())
    if consts:
        nbytes = sum(v.data.nbytes for v in consts if v.data is not None)
        listed = len(consts) <= MAX_LISTED_CONSTANTS if show_constants is None else show_constants
        summary = f"{len(consts)} constants, {_format_bytes(nbytes)}"
        if listed:
            lines.append(f"  constants ({summary}): "
                         + ", ".join(f"{v.name} {format_type(v)}" for v in consts))
        else:
            lines.append(f"  constants: {summary}")
    lines.extend("  " + format_node(node) for node in graph.nodes)
    lines.append(f"  return {outputs}")
    return "\n".join(lines)


def _format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


__all__ = ["format_fused_activation", "format_graph", "format_node", "format_type"]
