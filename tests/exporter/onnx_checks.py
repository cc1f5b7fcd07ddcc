"""Shared checks for the ONNX exporter tests: run a model in onnxruntime and in edgefw's
runtime, and compare what ONNX's own shape inference says with what the file declares."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
import onnxruntime as ort

from edgefw.ir import Graph
from runtime import InferenceSession

OPSETS = tuple(range(13, 22))


def ort_session(model: onnx.ModelProto | str, optimized: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_onnxruntime(model: onnx.ModelProto | str, feed: Mapping[str, np.ndarray],
                    optimized: bool = True) -> list[np.ndarray]:
    return ort_session(model, optimized).run(None, dict(feed))


def run_edgefw(graph: Graph, feed: Mapping[str, np.ndarray],
               optimization: str = "all") -> list[np.ndarray]:
    return InferenceSession(graph, optimization=optimization).run(None, dict(feed))


def assert_outputs_match(got: list[np.ndarray], want: list[np.ndarray], atol: float = 1e-5,
                         rtol: float = 0.0) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype, f"output {i}: dtype {g.dtype} != {w.dtype}"
        assert g.shape == w.shape, f"output {i}: shape {g.shape} != {w.shape}"
        if g.dtype.kind in "fc":
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), atol=atol,
                                       rtol=rtol, err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")


def dims(info: onnx.ValueInfoProto) -> tuple | None:
    """A value's declared shape: ints, dim_param strings, None for an unknown dim (ONNX
    shape inference names unknown dims ``unk__<n>``: those are None too)."""
    tensor = info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else
                 d.dim_param if d.HasField("dim_param") and not d.dim_param.startswith("unk__")
                 else None for d in tensor.shape.dim)


def assert_shape_inference_agrees(model: onnx.ModelProto, exact: bool = True) -> None:
    """ONNX's strict shape inference, run on the file with every declared shape except the
    inputs' removed, finds the same output shapes (and value_info shapes) the file declares.

    ``exact=False`` accepts outputs whose rank ONNX cannot infer (e.g. a Reduce with axes
    computed at run time), where the file may know more."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    del stripped.graph.value_info[:]
    for out in stripped.graph.output:
        out.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(stripped, check_type=True, strict_mode=True)
    for declared, found in zip(model.graph.output, inferred.graph.output, strict=True):
        assert found.type.tensor_type.elem_type == declared.type.tensor_type.elem_type, \
            declared.name
        if exact or dims(found) is not None:
            assert dims(found) == dims(declared), (declared.name, dims(found), dims(declared))
    found_infos = {vi.name: vi for vi in inferred.graph.value_info}
    for declared in model.graph.value_info:
        if declared.name in found_infos:
            assert dims(found_infos[declared.name]) == dims(declared), declared.name
