"""Small hand-made ONNX models for loader tests: ``make_model(nodes, inputs, outputs,
opset, initializers)`` and the two ways to run them (edgefw, onnxruntime)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from edgefw.ir import dtypes
from runtime import InferenceSession

ort.set_default_logger_severity(3)  # "opset below 7" and weights-as-inputs warnings

# The IR version onnxruntime expects beside each opset (onnx's own table).
_IR_FOR_OPSET = [(21, 10), (19, 9), (15, 8), (12, 7), (11, 6), (10, 5), (9, 4), (1, 3)]


def ir_version_for(opset: int) -> int:
    return next(ir for first, ir in _IR_FOR_OPSET if opset >= first)


def make_model(nodes: Sequence[onnx.NodeProto], inputs: Mapping[str, np.ndarray | tuple],
               outputs: Sequence[str], opset: int,
               initializers: Mapping[str, np.ndarray] | None = None,
               output_types: Mapping[str, int] | None = None) -> onnx.ModelProto:
    """A model whose inputs are ``name -> example array`` (or ``(elem_type, shape)``) and
    whose outputs are float32 unless ``output_types`` gives their ONNX type code."""
    graph_inputs = []
    for name, spec in inputs.items():
        if isinstance(spec, np.ndarray):
            spec = (dtypes.to_onnx(spec.dtype.name), list(spec.shape))
        graph_inputs.append(helper.make_tensor_value_info(name, *spec))
    graph_outputs = [helper.make_tensor_value_info(name, (output_types or {}).get(name, 1), None)
                     for name in outputs]
    inits = [numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()]
    graph = helper.make_graph(list(nodes), "test", graph_inputs, graph_outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=ir_version_for(opset))


def run_edgefw(model: onnx.ModelProto | bytes, feed: Mapping[str, np.ndarray]
               ) -> list[np.ndarray]:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return InferenceSession(data).run(None, dict(feed))


def run_onnxruntime(model: onnx.ModelProto, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, dict(feed))


def assert_same(ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray], tol: float = 1e-6
                ) -> None:
    assert len(ours) == len(theirs)
    for k, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        ref = np.asarray(ref)
        assert mine.dtype == ref.dtype, f"output {k}: {mine.dtype} vs {ref.dtype}"
        assert mine.shape == ref.shape, f"output {k}: {mine.shape} vs {ref.shape}"
        np.testing.assert_allclose(mine, ref, rtol=tol, atol=tol, err_msg=f"output {k}")
