"""``to_onnx``: an IR graph (or an edgefw model, traced first) -> an ONNX ModelProto / file.

Steps: trace a Module (or copy a Graph), apply the optimization level on the copy, write
every node in the form of the target opset (:mod:`exporter.onnx.opset`), expand fused
activations, build the ModelProto (initializers named by module path, a ``dim_param`` for
the symbolic batch, a doc_string per node with its module path, metadata), verify it with
``onnx.checker.check_model(full_check=True)``, and only then write it atomically. Anything
that cannot be written raises :class:`~edgefw.errors.ExportError` before a byte is on disk.

    >>> import numpy as np
    >>> from edgefw import models
    >>> import exporter
    >>> model = exporter.to_onnx(models.build("mlp"), "mlp.onnx", opset=17,
    ...                          example_inputs=np.zeros((1, 1, 28, 28), np.float32),
    ...                          metadata={"input_layout": "NCHW"})  # doctest: +SKIP
    >>> [n.op_type for n in model.graph.node]  # doctest: +SKIP
    ['Flatten', 'Gemm', 'Relu', 'Gemm']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgefw.errors import ExportError
from edgefw.fileio import atomic_write
from edgefw.ir import Graph, Node, Value
from edgefw.ir.dtypes import to_onnx as onnx_dtype_code
from exporter.onnx import decompositions, normalizations, resize  # noqa: F401 - rewrites
from exporter.onnx.decompositions import write_fused_activation
from exporter.onnx.emitter import (
    NodeWriter,
    OnnxEmitter,
    describe_node,
    export_error,
    onnx_schema,
)
from exporter.onnx.metadata import metadata_props
from exporter.onnx.opset import write_node
from exporter.prepare import prepare_graph

#: Target opsets ``to_onnx`` writes.
SUPPORTED_OPSETS = range(13, 22)
DEFAULT_OPSET = 17
OPTIMIZATION_LEVELS = ("none", "basic", "all")
#: A protobuf message cannot exceed 2 GiB; larger models would need ONNX external data.
MAX_MODEL_BYTES = 2**31 - 1


def to_onnx(
    graph_or_model: Any,
    path: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
    example_inputs: Any = None,
    *,
    optimize: str = "all",
    metadata: Mapping[str, Any] | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
) -> onnx.ModelProto:
    """Export an IR graph or an edgefw Module to ONNX; write ``path`` when given.

    A Module is traced with ``edgefw.trace(model, example_inputs)`` (``example_inputs`` is
    required then). ``opset``: 13 to 21. ``optimize``: the ``edgefw.ir.passes`` level
    applied to a copy first (``"all"``, ``"basic"``, ``"none"``). ``metadata``: extra
    ``metadata_props`` (strings as they are, anything else as JSON; see
    :func:`exporter.onnx.read_metadata`). ``input_names``/``output_names`` rename the graph's
    inputs/outputs. ``dynamic_batch``: keep the first axis symbolic (``"batch"``); False
    fixes it to the example batch size (1 without examples).

    >>> import numpy as np, exporter
    >>> from edgefw.ir import Graph
    >>> g = Graph("tiny")
    >>> x = g.add_input("x", "float32", ("batch", 3))
    >>> g.set_outputs([g.add_node("Relu", [x]).output])
    >>> model = exporter.to_onnx(g, opset=13)
    >>> [n.op_type for n in model.graph.node]
    ['Relu']
    >>> model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    'batch'
    """
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or int(opset) not in SUPPORTED_OPSETS:
        raise ExportError(f"ONNX opset {opset!r} is not supported; choose one of "
                          f"{SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}")
    if optimize not in OPTIMIZATION_LEVELS:
        raise ExportError(f"optimize must be one of {', '.join(OPTIMIZATION_LEVELS)}, got "
                          f"{optimize!r}")
    metadata_props({}, metadata)  # bad metadata fails before any tracing work
    graph = prepare_graph(graph_or_model, example_inputs, who="to_onnx",
                          input_names=input_names, output_names=output_names,
                          dynamic_batch=dynamic_batch)
    if optimize != "none":
        from edgefw.ir.passes import optimize as run_passes

        graph = run_passes(graph, optimize)
    model = build_model(graph, int(opset), metadata_props(graph.metadata, metadata))
    if path is not None:
        write_atomic(path, model.SerializeToString())
    return model


# --------------------------------------------------------------------- the model
def build_model(graph: Graph, opset: int, props: Mapping[str, str]) -> onnx.ModelProto:
    """The ONNX model of ``graph`` at ``opset``, checked by ``onnx.checker`` (full check)."""
    constant_bytes = sum(v.data.nbytes for v in graph.constants.values())
    if constant_bytes > MAX_MODEL_BYTES:
        raise ExportError(_too_big(graph, constant_bytes))
    emitter = OnnxEmitter(graph, opset)
    for node in graph.nodes:
        _write_ir_node(emitter, node)
    output_infos = _graph_outputs(emitter, graph)
    read = {name for n in emitter.nodes for name in n.input} | {o.name for o in output_infos}
    initializers = [numpy_helper.from_array(np.asarray(v.data), v.name)
                    for v in graph.constants.values() if v.name in read]
    written = {name for n in emitter.nodes for name in n.output}
    graph_outputs = {o.name for o in output_infos}
    value_info = [_value_info(v) for n in graph.nodes for v in n.outputs
                  if v.name in written and v.name not in graph_outputs and v.dtype is not None]
    graph_proto = helper.make_graph(
        emitter.nodes,
        graph.name,
        [_value_info(v) for v in graph.inputs],
        output_infos,
        initializer=initializers + emitter.initializers,
        value_info=value_info,
        doc_string=f"exported by edgefw from graph '{graph.name}'",
    )
    opset_ids = [helper.make_opsetid("", opset)]
    import edgefw

    model = helper.make_model(
        graph_proto,
        opset_imports=opset_ids,
        producer_name="edgefw",
        producer_version=edgefw.__version__,
        ir_version=helper.find_min_ir_version_for(opset_ids, ignore_unknown=True),
    )
    _complete_output_shapes(model, graph)
    if props:
        helper.set_model_props(model, dict(props))
    size = model.ByteSize()
    if size > MAX_MODEL_BYTES:
        raise ExportError(_too_big(graph, size))
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the ONNX model written for graph '{graph.name}' at opset {opset} "
                          f"does not pass onnx.checker (an exporter bug; nothing was written): "
                          f"{exc}") from exc
    return model


def _too_big(graph: Graph, size: int) -> str:
    return (f"graph '{graph.name}' needs {size / 2**30:.2f} GiB in ONNX: models over 2 GiB "
            "(protobuf's limit; they would need ONNX external data) are not supported")


def _write_ir_node(emitter: OnnxEmitter, node: Node) -> None:
    if node.domain != "":
        raise export_error(node, emitter.opset, f"domain {node.domain!r} is not exported; "
                           "only the default ONNX domain is")
    outputs = [v.name for v in node.outputs]
    activation = node.meta.get("fused_activation")
    if activation is not None:
        if len(outputs) != 1:
            raise export_error(node, emitter.opset, "a fused activation needs a single output")
        outputs = [emitter.fresh(f"{outputs[0]}/pre_activation")]
    writer = NodeWriter(emitter, node, outputs)
    old_form = node.meta.get("opset")
    if old_form is not None:
        _write_old_form(writer, int(old_form))
    else:
        write_node(writer)
    if activation is not None:
        write_fused_activation(writer, activation, outputs[0], node.outputs[0].name)


def _write_old_form(writer: NodeWriter, old_opset: int) -> None:
    """A node a loader kept in an older opset's form: written only where that form holds."""
    node = writer.node
    then, now = onnx_schema(node.op_type, old_opset), onnx_schema(node.op_type, writer.opset)
    if then is None or now is None or then.since_version != now.since_version:
        writer.fail(f"it is in the opset-{old_opset} form of {node.op_type}, which differs "
                    f"from {node.op_type} at opset {writer.opset}; export at opset "
                    f"{old_opset} or rewrite the node in the IR's form")
    writer.emit(node.op_type, writer.inputs, writer.outputs, writer.attrs)


def _graph_outputs(emitter: OnnxEmitter, graph: Graph) -> list[onnx.ValueInfoProto]:
    infos, seen = [], set()
    for value in graph.outputs:
        if value.dtype is None:
            raise ExportError(f"graph '{graph.name}': output {value.name!r} has an unknown "
                              "dtype and cannot be declared in ONNX")
        info = _value_info(value)
        if value.name in seen:
            # ONNX outputs are names: a value listed twice gets an Identity copy.
            info.name = emitter.fresh(f"{value.name}_copy")
            emitter.nodes.append(helper.make_node("Identity", [value.name], [info.name],
                                                  name=emitter.fresh_node_name(f"{info.name}/identity")))
        seen.add(value.name)
        infos.append(info)
    return infos


def _complete_output_shapes(model: onnx.ModelProto, graph: Graph) -> None:
    """Give every graph output a shape: ONNX requires one (a rank at least) on the outputs of
    the main graph. Where the IR knows none (e.g. a Reshape to a shape computed at run time),
    ONNX's own inference with data propagation often does; otherwise the export fails here,
    naming the output, rather than in onnx.checker."""
    missing = [o for o in model.graph.output if not o.type.tensor_type.HasField("shape")]
    if not missing:
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        found = {o.name: o.type.tensor_type for o in inferred.graph.output}
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError):
        found = {}
    producers = {v.name: n for n in graph.nodes for v in n.outputs}
    for output in missing:
        tensor = found.get(output.name)
        if tensor is None or not tensor.HasField("shape"):
            producer = producers.get(output.name)
            source = f" (from {describe_node(producer)})" if producer is not None else ""
            raise ExportError(f"graph '{graph.name}': output {output.name!r}{source} has an "
                              "unknown rank, which neither the IR nor ONNX's shape inference "
                              "can tell; ONNX requires every graph output to declare its "
                              "shape")
        shape = output.type.tensor_type.shape
        for dim in tensor.shape.dim:
            new_dim = shape.dim.add()
            if dim.HasField("dim_value"):
                new_dim.dim_value = dim.dim_value
            elif dim.HasField("dim_param") and not dim.dim_param.startswith("unk__"):
                new_dim.dim_param = dim.dim_param  # unk__<n>: ONNX's name for "unknown"


def _value_info(value: Value) -> onnx.ValueInfoProto:
    if value.dtype is None:
        raise ExportError(f"value {value.name!r} has an unknown dtype and cannot be declared "
                          "in ONNX")
    shape = None if value.shape is None else [
        d if isinstance(d, (int, str)) else None for d in value.shape
    ]
    return helper.make_tensor_value_info(value.name, onnx_dtype_code(value.dtype), shape)


# --------------------------------------------------------------------- the file
def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename
    (:func:`edgefw.fileio.atomic_write`): ``path`` is the old file (or absent) or the complete
    new one, never half of it."""
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"{path} is a directory; give a file name such as {path / 'model.onnx'}")
    try:
        with atomic_write(path) as f:
            f.write(data)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc
    return path


__all__ = [
    "DEFAULT_OPSET",
    "MAX_MODEL_BYTES",
    "OPTIMIZATION_LEVELS",
    "SUPPORTED_OPSETS",
    "build_model",
    "to_onnx",
    "write_atomic",
]
