"""Export a graph to ``.onnx`` / ``.tflite`` with what a deployment needs inside the file:
the input contract (layout, normalisation, class labels; :mod:`runtime.preprocess`) and
golden data (:mod:`exporter.golden`) that ``edgefw verify`` checks on any runtime.

    >>> import numpy as np, edgefw
    >>> from edgefw import models
    >>> graph = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    >>> images = np.random.default_rng(0).random((4, 1, 28, 28), np.float32)
    >>> export_with_golden(graph, "mlp.tflite", golden_inputs=[images],
    ...                    metadata={"normalization": {"scale": 1 / 255}})  # doctest: +SKIP

How the golden record is made: the file is exported once in memory and loaded back with
edgefw's loader; the golden inputs (given in the graph's NCHW float form) are converted to
the file's own interface with its :class:`~runtime.preprocess.InputContract` (NHWC,
quantized for int8 inputs); the float ``reference_graph`` gives the reference outputs and
edgefw's CPU runtime on the loaded file the expected ones; then the file is written with
the record in its metadata (ONNX: a ``metadata_props`` entry added to the same model;
TFLite: a key of the ``"edgefw"`` metadata, written by exporting again).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgefw.errors import ExportError
from edgefw.ir import Graph

#: Ops a quantization step passes through walking back from an output, and the factor it
#: is scaled by: shape ops and ReLU keep it; Softmax halves it (the max-norm of its
#: Jacobian, 2 p (1 - p), is at most 1/2).
_STEP_FACTORS = {"Softmax": 0.5, "Reshape": 1.0, "Flatten": 1.0, "Identity": 1.0,
                 "Transpose": 1.0, "Squeeze": 1.0, "Unsqueeze": 1.0, "Relu": 1.0, "Clip": 1.0}
_QUANTIZED_DTYPES = ("int8", "uint8", "int16", "uint16")
FORMATS = ("onnx", "tflite")


def is_quantized(graph: Graph) -> bool:
    """True when the graph holds integer-quantized tensors (QDQ, integer kernels, int8
    weights): its runtimes may then differ by quantization steps, not float rounding."""
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
           or n.op_type.startswith("Q") and n.domain == "edgefw" for n in graph.nodes):
        return True
    return any(v.dtype in _QUANTIZED_DTYPES for v in graph.constants.values())


def output_step(graph: Graph, index: int) -> float | None:
    """The quantization step as seen at output ``index``: the scale of the DequantizeLinear
    (or quantized tensor) it comes from through shape ops and Softmax (which halves it);
    None when the output is computed in float from float activations (dynamic-range
    files)."""
    value, factor = graph.outputs[index], 1.0
    for _ in range(16):
        if value.quant is not None:
            return factor * float(np.max(np.asarray(value.quant.scale)))
        node = value.producer
        if node is None:
            return None
        if node.op_type == "DequantizeLinear":
            scale = node.inputs[1].data
            return None if scale is None else factor * float(np.max(np.asarray(scale)))
        if node.op_type not in _STEP_FACTORS:
            return None
        factor *= _STEP_FACTORS[node.op_type]
        value = node.inputs[0]
    return None


def golden_for_file(data: bytes | str | os.PathLike, golden_inputs: Sequence[np.ndarray],
                    reference_outputs: Sequence[np.ndarray] | None,
                    input_layout: str = "NCHW") -> Any:
    """The :class:`exporter.golden.GoldenData` of a model file (its bytes or path), for
    ``golden_inputs`` in the graph's float form and ``reference_outputs`` (the float
    model's outputs on them, in the graph's layout)."""
    import edgefw
    import runtime
    from exporter.golden import GoldenData, make_tolerance
    from runtime.preprocess import InputContract

    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    graph = runtime.load_tflite(raw) if raw[4:8] == b"TFL3" else runtime.load_onnx(raw)
    if len(golden_inputs) != len(graph.inputs):
        raise ExportError(f"golden data: {len(golden_inputs)} input arrays for a model with "
                          f"{len(graph.inputs)} inputs")
    feeds = [InputContract.from_graph(graph, i).from_float(x, input_layout)
             for i, x in enumerate(golden_inputs)]
    session = runtime.InferenceSession(graph, providers=["cpu"])
    expected = session.run(None, {v.name: x for v, x in zip(graph.inputs, feeds)})
    reference = None
    if reference_outputs is not None:
        reference = [_file_layout(np.asarray(r), e.shape)
                     for r, e in zip(reference_outputs, expected, strict=True)]
    quantized = is_quantized(graph)
    tolerances = [make_tolerance("quantized" if quantized else "float", _as_float(y, v),
                                 output_step(graph, i) if quantized else None)
                  for i, (y, v) in enumerate(zip(expected, graph.outputs))]
    return GoldenData([v.name for v in graph.inputs], feeds, [v.name for v in graph.outputs],
                      reference=reference, expected=expected, tolerances=tolerances,
                      producer=f"edgefw {edgefw.__version__} (cpu provider, numpy "
                               f"{np.__version__})")


def _as_float(y: np.ndarray, value: Any) -> np.ndarray:
    """An output in real units: integer outputs dequantized with their parameters."""
    if y.dtype.kind == "f" or value.quant is None:
        return y.astype(np.float32)
    scale = np.asarray(value.quant.scale, np.float32)
    zero = np.asarray(value.quant.zero_point, np.float32)
    return (y.astype(np.float32) - zero) * scale


def _file_layout(reference: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A reference output in the graph's NCHW -> the file's shape (NHWC for TFLite)."""
    if reference.shape == tuple(shape):
        return reference
    if reference.ndim == 4 and np.transpose(reference, (0, 2, 3, 1)).shape == tuple(shape):
        return np.ascontiguousarray(np.transpose(reference, (0, 2, 3, 1)))
    raise ExportError(f"golden data: a reference output of shape {list(reference.shape)} does "
                      f"not fit the file's output shape {list(shape)}")


def export_with_golden(graph: Graph, path: str | os.PathLike, *,
                       golden_inputs: Sequence[np.ndarray],
                       reference_graph: Graph | None = None,
                       metadata: Mapping[str, Any] | None = None,
                       fmt: str | None = None, **export_options: Any) -> Path:
    """Export ``graph`` to ``path`` (``.onnx`` or ``.tflite``, or ``fmt``) with golden data
    and ``metadata`` (put the input contract there: ``normalization``, ``input_layout``,
    ``class_labels``). ``reference_graph``: the float model the reference outputs come
    from (default: ``graph`` itself). ``export_options`` go to ``to_onnx`` /
    ``to_tflite``; quantized graphs are exported without re-optimization (constant
    folding would turn int8 weights back into float). Returns the path written."""
    import exporter
    from exporter.golden import attach_to_onnx, golden_metadata
    from runtime import InferenceSession

    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ExportError(f"{path}: choose a .onnx or .tflite file name (or fmt=)")
    reference_graph = graph if reference_graph is None else reference_graph
    reference_session = InferenceSession(reference_graph, providers=["cpu"])
    reference = reference_session.run(None, {v.name: np.asarray(x, np.float32) for v, x in
                                             zip(reference_graph.inputs, golden_inputs)})
    options = dict(export_options)
    if is_quantized(graph) or any(n.op_type == "Cast" for n in graph.nodes):
        options.setdefault("optimize", "none")
    meta = dict(metadata or {})
    if fmt == "onnx":
        model = exporter.to_onnx(graph, None, metadata=meta, **options)
        golden = golden_for_file(model.SerializeToString(), golden_inputs, reference)
        attach_to_onnx(model, golden, path)
        return path
    data = exporter.to_tflite(graph, None, metadata=meta, **options)
    golden = golden_for_file(data, golden_inputs, reference)
    exporter.to_tflite(graph, path, metadata={**meta, **golden_metadata(golden)}, **options)
    return path


__all__ = ["FORMATS", "export_with_golden", "golden_for_file", "is_quantized", "output_step"]
