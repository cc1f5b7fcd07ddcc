"""What every exporter does first: turn its input (an ``edgefw.ir.Graph`` or a Module to
trace) into a verified Graph the export may change, with the requested input/output names
and, optionally, a fixed batch size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgefw.errors import ExportError
from edgefw.ir import Graph, Value
from edgefw.ir.tracer import BATCH


def prepare_graph(source: Any, example_inputs: Any, *, who: str,
                  input_names: Sequence[str] | None = None,
                  output_names: Sequence[str] | None = None,
                  dynamic_batch: bool = True) -> Graph:
    """A Graph the export may change: the traced Module, or a verified copy of the Graph.
    ``who`` names the exporter in error messages ("to_onnx")."""
    if isinstance(source, Graph):
        graph = source.copy()
        graph.check()
        _rename(graph, graph.inputs, input_names, "input")
        _rename(graph, graph.outputs, output_names, "output")
        if not dynamic_batch:
            _fix_batch(graph, example_inputs)
        return graph
    if not callable(getattr(source, "named_parameters", None)):
        raise ExportError(f"{who} exports an edgefw.ir.Graph or an edgefw Module, got "
                          f"{type(source).__name__}")
    if example_inputs is None:
        raise ExportError(f"exporting a {type(source).__name__} model needs example_inputs "
                          "(an array of the input's shape, e.g. np.zeros((1, 1, 28, 28), "
                          "np.float32)) to trace it")
    import edgefw

    return edgefw.trace(source, example_inputs, dynamic_batch=dynamic_batch,
                        input_names=input_names, output_names=output_names)


def _rename(graph: Graph, values: list[Value], names: Sequence[str] | None, what: str) -> None:
    if names is None:
        return
    names = list(names)
    if len(names) != len(values) or not all(isinstance(n, str) and n for n in names):
        raise ExportError(f"{what}_names must be {len(values)} non-empty strings (the graph has "
                          f"{what}s {[v.name for v in values]}), got {names}")
    for value, name in zip(values, names):
        if name == value.name:
            continue
        if graph.has_value(name):
            raise ExportError(f"cannot name {what} {value.name!r} {name!r}: graph "
                              f"'{graph.name}' already has a value called {name!r}")
        graph.rename_value(value, name)


def _fix_batch(graph: Graph, example_inputs: Any) -> None:
    """Replace the symbolic batch dim of the inputs by the example batch size (or 1)."""
    from edgefw.ir.passes import InferShapesPass

    batch = 1
    if example_inputs is not None:
        first = example_inputs[0] if isinstance(example_inputs, (tuple, list)) \
            else example_inputs
        shape = np.shape(getattr(first, "data", first))
        batch = int(shape[0]) if shape else 1
    for value in graph.inputs:
        if value.shape is not None:
            value.shape = tuple(batch if d == BATCH else d for d in value.shape)
    InferShapesPass(keep_stored_dims=False).run(graph)
    graph.check()
