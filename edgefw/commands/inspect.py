"""``edgefw inspect``: what a model file holds, without running it.

    edgefw inspect mlp.onnx            # format, inputs/outputs, op histogram, parameters
    edgefw inspect mlp.tflite          # the same for a .tflite file (+ TFLite op versions)
    edgefw inspect mlp.onnx --json     # the same as one JSON object
    edgefw inspect mlp.onnx --graph    # plus the IR listing, one line per node

Shapes keep their symbolic dims (``batch``); parameters are the graph's constants
(initializers and Constant nodes) as the loader read them, counted per dtype.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

METADATA_PREVIEW_CHARS = 120


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inspect", help="show a model's inputs/outputs, op histogram, parameters and metadata",
        description="Describe a model file (.onnx, .tflite): format and producer, inputs and "
                    "outputs with symbolic dims, op histogram, parameter count and bytes per "
                    "dtype, file size and metadata.")
    p.add_argument("model", help="model file (.onnx, .tflite)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument("--graph", action="store_true", help="also print the graph, node by node")
    p.set_defaults(func=cmd_inspect)


def describe_model(model: Any) -> dict[str, Any]:
    """The facts ``inspect`` prints, as plain data (what ``--json`` writes).

    >>> from edgefw.commands.model_io import read_model   # doctest: +SKIP
    >>> describe_model(read_model("mlp.onnx"))["parameters"]["count"]  # doctest: +SKIP
    101770
    """
    graph = model.graph
    ops = Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
                  for n in graph.nodes)
    by_dtype: dict[str, dict[str, int]] = {}
    for value in graph.constants.values():
        data = value.data
        entry = by_dtype.setdefault(str(data.dtype), {"tensors": 0, "count": 0, "bytes": 0})
        entry["tensors"] += 1
        entry["count"] += int(data.size)
        entry["bytes"] += int(data.size) * data.dtype.itemsize
    quantized = sum(1 for v in graph.constants.values() if v.quant is not None)
    return {
        "path": str(model.path),
        "format": model.format,
        "file_bytes": model.file_bytes,
        "header": model.header,
        "graph_name": graph.name,
        "inputs": [_tensor(v) for v in graph.inputs],
        "outputs": [_tensor(v) for v in graph.outputs],
        "nodes": len(graph.nodes),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameters": {
            "count": sum(e["count"] for e in by_dtype.values()),
            "bytes": sum(e["bytes"] for e in by_dtype.values()),
            "tensors": len(graph.constants),
            "quantized_tensors": quantized,
            "by_dtype": dict(sorted(by_dtype.items(), key=lambda kv: -kv[1]["bytes"])),
        },
        "metadata": model.metadata,
    }


def _tensor(v: Any) -> dict[str, Any]:
    return {"name": v.name, "dtype": v.dtype, "shape": None if v.shape is None else list(v.shape)}


def cmd_inspect(args: argparse.Namespace) -> int:
    from edgefw.commands import model_io

    model = model_io.read_model(args.model)
    facts = describe_model(model)
    if args.json:
        print(json.dumps(facts, indent=2, default=str))
    else:
        print(format_description(facts))
    if args.graph:
        print()
        print(model.graph)
    return 0


def format_description(facts: dict[str, Any]) -> str:
    """The human-readable report of :func:`describe_model`'s facts."""
    from edgefw.commands.model_io import format_bytes, format_shape

    lines = [f"{facts['path']}: {facts['format']} model, {format_bytes(facts['file_bytes'])} "
             f"({facts['file_bytes']:,} bytes)"]
    header = facts["header"]
    if "ir_version" in header:
        opsets = ", ".join(f"{d} {v}" for d, v in header["opsets"].items())
        lines.append(f"  ONNX IR version {header['ir_version']}, opset {opsets}")
    if "tflite_schema_version" in header:
        codes = ", ".join(f"{op} v{'/'.join(map(str, versions))}"
                          for op, versions in header["operator_codes"].items())
        lines.append(f"  TFLite schema version {header['tflite_schema_version']}, "
                     f"{header['subgraphs']} subgraph(s), {header['operators']} operators, "
                     f"signatures {header['signatures'] or 'none'}")
        lines.append(f"  operator codes: {codes}")
    if header.get("producer"):
        lines.append(f"  producer: {header['producer']}")
    lines.append(f"  graph: {facts['graph_name']!r}, {facts['nodes']} nodes")

    for kind in ("inputs", "outputs"):
        lines.append(f"{kind}:")
        width = max((len(t["name"]) for t in facts[kind]), default=0)
        for t in facts[kind]:
            lines.append(f"  {t['name']:<{width}}  {t['dtype']}{format_shape(t['shape'])}")

    ops = facts["ops"]
    lines.append(f"ops ({facts['nodes']} nodes, {len(ops)} op types):")
    width = max((len(op) for op in ops), default=0)
    for op, count in ops.items():
        lines.append(f"  {op:<{width}}  {count:>4}")

    params = facts["parameters"]
    quantized = (f", {params['quantized_tensors']} with quantization parameters"
                 if params["quantized_tensors"] else "")
    lines.append(f"parameters: {params['count']:,} in {params['tensors']} tensors, "
                 f"{format_bytes(params['bytes'])}{quantized}")
    for dtype, entry in params["by_dtype"].items():
        lines.append(f"  {dtype:<8} {entry['count']:>12,}  {format_bytes(entry['bytes']):>10}  "
                     f"({entry['tensors']} tensors)")

    metadata = facts["metadata"]
    lines.append("metadata:" + ("" if metadata else " none"))
    for key, value in metadata.items():
        text = value if isinstance(value, str) else json.dumps(value)
        text = " ".join(text.split())  # doc strings may span lines
        if len(text) > METADATA_PREVIEW_CHARS:
            text = text[:METADATA_PREVIEW_CHARS - 3] + "..."
        lines.append(f"  {key}: {text}")
    return "\n".join(lines)


__all__ = ["cmd_inspect", "describe_model", "format_description", "register"]
