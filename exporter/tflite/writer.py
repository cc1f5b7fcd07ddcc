"""``to_tflite``: an IR graph (or an edgefw model, traced first) -> a ``.tflite`` FlatBuffer.

Steps: trace a Module (or copy a Graph), optimize the copy (BatchNorm folding, activation
fusion, ...), quantize it when asked (through ``quantize``), lower every node to TFLite
builtin operators storing feature maps NHWC (:mod:`exporter.tflite.lowering`), and build
the FlatBuffer (schema version 3, ``serving_default`` signature, metadata, 16-byte aligned
constant data). Everything is checked before the file is written, atomically: an op without
a TFLite form raises :class:`~edgefw.errors.ExportError` naming the node and its module,
and nothing is on disk.

    >>> import numpy as np, exporter
    >>> from edgefw import models
    >>> data = exporter.to_tflite(models.build("lenet"), "lenet.tflite",
    ...                           example_inputs=np.zeros((1, 1, 28, 28), np.float32))
    ... # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from edgefw.errors import ExportError
from edgefw.fileio import atomic_write
from edgefw.ir import Graph, Value
from exporter.prepare import prepare_graph
from exporter.tflite.lowering import LAYOUTS, interface_perm, lower_graph
from exporter.tflite.metadata import EDGEFW_METADATA, metadata_json
from exporter.tflite.model import TFLiteModel

#: ``quantize=`` choices: None (float32 as the graph is), float16 weights, dynamic-range
#: int8 weights, full-integer int8.
QUANTIZE_MODES = (None, "float16", "dynamic", "int8")
OPTIMIZATION_LEVELS = ("none", "basic", "all")


def to_tflite(
    graph_or_model: Any,
    path: str | os.PathLike | None = None,
    example_inputs: Any = None,
    *,
    quantize: str | None = None,
    calibration_data: Any = None,
    int8_io: bool = False,
    metadata: Mapping[str, Any] | None = None,
    layout: str = "NHWC",
    optimize: str = "all",
    dynamic_batch: bool = True,
) -> bytes:
    """Export an IR graph or an edgefw Module to a ``.tflite`` FlatBuffer; write ``path``
    when given; return the file's bytes.

    A Module is traced with ``edgefw.trace(model, example_inputs)``. ``quantize``:
    ``"float16"`` (float16 weights + DEQUANTIZE), ``"dynamic"`` (int8 weights, float
    activations: TFLite's hybrid kernels), ``"int8"`` (full integer: needs
    ``calibration_data``, an array or batches of inputs) — or None to write the graph as it
    is (a QDQ graph from ``quantize/`` is written quantized). ``int8_io``: int8 input and
    output tensors instead of float ones (full-integer graphs). ``metadata``: extra JSON
    keys in the file's ``"edgefw"`` metadata (e.g. ``normalization``, ``class_labels``).
    ``layout``: ``"NHWC"`` (TFLite's convention) stores rank-4 inputs and outputs NHWC,
    ``"NCHW"`` keeps the IR's shapes. ``dynamic_batch``: the first axis is -1 in the
    signature (resizable); False fixes it to the example batch (1 without examples).

    >>> import exporter
    >>> from edgefw.ir import Graph
    >>> g = Graph("tiny")
    >>> x = g.add_input("x", "float32", ("batch", 3))
    >>> g.set_outputs([g.add_node("Relu", [x]).output])
    >>> data = exporter.to_tflite(g)
    >>> data[4:8], len(data) % 4
    (b'TFL3', 0)
    """
    if quantize not in QUANTIZE_MODES:
        raise ExportError(f"quantize must be one of {', '.join(map(repr, QUANTIZE_MODES))}, "
                          f"got {quantize!r}")
    if layout not in LAYOUTS:
        raise ExportError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if optimize not in OPTIMIZATION_LEVELS:
        raise ExportError(f"optimize must be one of {', '.join(OPTIMIZATION_LEVELS)}, got "
                          f"{optimize!r}")
    if quantize == "int8" and calibration_data is None:
        raise ExportError("quantize='int8' needs calibration_data: an array (or list of "
                          "batches) of representative inputs, e.g. 100 training images")
    if int8_io and quantize not in (None, "int8"):
        raise ExportError(f"int8_io needs a full-integer model (quantize='int8'), not "
                          f"quantize={quantize!r}")
    metadata_json({}, metadata)  # bad metadata fails before any tracing work
    graph = prepare_graph(graph_or_model, example_inputs, who="to_tflite",
                          dynamic_batch=dynamic_batch)
    if optimize != "none":
        graph = _optimize(graph, optimize)
    if quantize is not None:
        graph = _quantize(graph, quantize, calibration_data)
    model = lower_graph(graph, interface_layout=layout, int8_io=int8_io)
    model.metadata[EDGEFW_METADATA] = metadata_json(
        _facts(graph, model, layout, quantize, int8_io), metadata)
    import edgefw

    model.description = f"edgefw {edgefw.__version__}"
    data = model.to_flatbuffer()
    if path is not None:
        _write(path, data)
    return data


def build_model(graph: Graph, *, layout: str = "NHWC", int8_io: bool = False) -> TFLiteModel:
    """The TFLite model of an already prepared graph, before serialization (for tools that
    inspect or extend it)."""
    return lower_graph(graph, interface_layout=layout, int8_io=int8_io)


def _optimize(graph: Graph, level: str) -> Graph:
    """``edgefw.ir.passes`` at ``level``, but keeping what the file must show: QDQ groups
    (the runtime's integer-execution passes fuse them into its own integer ops; the
    exporter writes them as TFLite's quantized tensors instead) and float16 weights
    (``Cast`` of a float16 constant, which constant folding would turn back to float32)."""
    from edgefw.ir.passes import FoldConstantsPass, PassManager, passes_for_level

    try:
        from edgefw.ir.passes.integer_execution import integer_execution_passes
    except ImportError:  # a runtime without integer execution: nothing to skip
        runtime_only: set[type] = set()
    else:
        runtime_only = {type(p) for p in integer_execution_passes()}
    if any(n.op_type == "Cast" and n.inputs[0].data is not None
           and n.inputs[0].dtype == "float16" for n in graph.nodes):
        runtime_only.add(FoldConstantsPass)
    passes = [p for p in passes_for_level(level) if type(p) not in runtime_only]
    PassManager(passes).run(graph)
    return graph


def _quantize(graph: Graph, mode: str, calibration_data: Any) -> Graph:
    try:
        import quantize as quantizer
    except ImportError as exc:
        raise ExportError(f"quantize={mode!r} needs the quantize package ({exc}); export a "
                          "graph quantized with quantize/ instead") from None
    functions = {"float16": "convert_float16", "dynamic": "quantize_dynamic",
                 "int8": "quantize_static"}
    function = getattr(quantizer, functions[mode], None)
    if function is None:
        raise ExportError(f"quantize={mode!r} needs quantize.{functions[mode]}, which this "
                          "installation of quantize/ does not provide")
    if mode == "int8":
        result = function(graph, calibration_data, per_channel=True, activation_dtype="int8")
    else:
        result = function(graph)
    graph = result if isinstance(result, Graph) else graph
    graph.check()
    return graph


# ---------------------------------------------------------------------- metadata
def _facts(graph: Graph, model: TFLiteModel, layout: str, quantize: str | None,
           int8_io: bool) -> dict[str, Any]:
    import edgefw
    from exporter.tflite.lowering import LoweringContext

    ctx = LoweringContext(graph, model, interface_layout=layout)

    def describe(values: Sequence[Value], tensors: Sequence[int]) -> list[dict[str, Any]]:
        out = []
        for value, index in zip(values, tensors):
            tensor = model.tensors[index]
            perm = interface_perm(ctx, value)
            entry: dict[str, Any] = {
                "name": value.name, "dtype": tensor.dtype,
                "shape": list(tensor.signature or tensor.shape),
                "layout": "NHWC" if perm == (0, 2, 3, 1) else "NCHW" if len(perm) == 4
                else None,
                "graph_shape": [d if isinstance(d, int) else -1 for d in value.shape or ()],
            }
            if tensor.quantization is not None:
                entry["scale"] = float(tensor.quantization.scale[0])
                entry["zero_point"] = int(tensor.quantization.zero_point[0])
            out.append(entry)
        return out

    facts: dict[str, Any] = {
        "producer": f"edgefw {edgefw.__version__}",
        "graph": graph.name,
        "inputs": describe(graph.inputs, model.inputs),
        "outputs": describe(graph.outputs, model.outputs),
        "input_layout": layout if any((v.rank or 0) == 4 for v in graph.inputs) else None,
        "quantization": quantize,
        "int8_io": int8_io,
    }
    recorded = graph.metadata.get("quantization")
    if isinstance(recorded, str):
        try:
            details = json.loads(recorded)
        except json.JSONDecodeError:
            details = recorded
        if isinstance(details, dict):  # the per-node list is for reports, not deployment
            details = {k: v for k, v in details.items() if k != "nodes"}
        facts["quantization_details"] = details
    return facts


def _write(path: str | os.PathLike, data: bytes) -> None:
    if os.path.isdir(path):
        raise ExportError(f"{path} is a directory; give a file name such as "
                          f"{os.path.join(path, 'model.tflite')}")
    try:
        with atomic_write(path) as f:
            f.write(data)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc


__all__ = ["OPTIMIZATION_LEVELS", "QUANTIZE_MODES", "build_model", "to_tflite"]
