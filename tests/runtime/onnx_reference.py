"""Shared check: run one op in edgefw's runtime and in onnxruntime, compare the outputs.

``check_op("Gemm", [a, w, b], {"transB": 1}, constants=(1, 2))`` builds the same one-node
model twice — an IR graph for our session and an ONNX model (``onnx.helper``) for
onnxruntime, with graph optimizations off so the op's own semantics are compared — and
asserts equal dtypes, shapes and values within tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from edgefw.ir import Graph, dtypes
from runtime import InferenceSession

OPSET = 21


def _onnx_attr(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return numpy_helper.from_array(value)
    return value


def onnx_model(op_type: str, inputs: Sequence[np.ndarray | None], attrs: Mapping[str, Any],
               constants: Sequence[int], output_dtypes: Sequence[str],
               opset: int = OPSET) -> onnx.ModelProto:
    """A one-node ONNX model: non-constant inputs are graph inputs, constants initializers."""
    names, graph_inputs, initializers = [], [], []
    for i, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if i in constants:
            initializers.append(numpy_helper.from_array(a, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(
                name, dtypes.to_onnx(a.dtype.name), list(a.shape)))
    outputs = [f"out{k}" for k in range(len(output_dtypes))]
    node = helper.make_node(op_type, names, outputs,
                            **{k: _onnx_attr(v) for k, v in attrs.items()})
    graph = helper.make_graph(
        [node], "one_op", graph_inputs,
        [helper.make_tensor_value_info(o, dtypes.to_onnx(d), None)
         for o, d in zip(outputs, output_dtypes, strict=True)],
        initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=10)


def run_onnxruntime(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def one_op_graph(op_type: str, inputs: Sequence[np.ndarray | None], attrs: Mapping[str, Any],
                 constants: Sequence[int], num_outputs: int = 1,
                 meta: Mapping[str, Any] | None = None) -> Graph:
    """The same one-node model as an IR graph (inputs named in0, in1, ...)."""
    g = Graph(f"one_{op_type}")
    values = []
    for i, a in enumerate(inputs):
        if a is None:
            values.append(None)
        elif i in constants:
            values.append(g.add_constant(f"in{i}", a))
        else:
            values.append(g.add_input(f"in{i}", a.dtype.name, a.shape))
    node = g.add_node(op_type, values, dict(attrs), num_outputs=num_outputs, meta=meta,
                      output_names=[f"out{k}" for k in range(num_outputs)])
    g.set_outputs(node.outputs)
    return g


def check_op(op_type: str, inputs: Sequence[np.ndarray | None],
             attrs: Mapping[str, Any] | None = None, *, constants: Sequence[int] = (),
             num_outputs: int = 1, rtol: float = 1e-5, atol: float = 1e-5) -> list[np.ndarray]:
    """Assert edgefw's CPU kernel matches onnxruntime on this op; return our outputs."""
    attrs = dict(attrs or {})
    graph = one_op_graph(op_type, inputs, attrs, constants, num_outputs)
    graph.check()
    feed = {f"in{i}": a for i, a in enumerate(inputs) if a is not None and i not in constants}
    session = InferenceSession(graph, optimization="none")
    ours = session.run(None, feed)
    again = session.run(None, feed)  # a second run reuses the plan and its buffers
    model = onnx_model(op_type, inputs, attrs, constants,
                       [v.dtype for v in graph.outputs])
    theirs = run_onnxruntime(model, feed)
    assert len(ours) == len(theirs)
    for k, (mine, ref, second) in enumerate(zip(ours, theirs, again, strict=True)):
        label = f"{op_type} output {k}"
        assert isinstance(mine, np.ndarray), f"{label}: got {type(mine).__name__}"
        assert mine.dtype == ref.dtype, f"{label}: dtype {mine.dtype}, onnxruntime {ref.dtype}"
        assert mine.shape == ref.shape, f"{label}: shape {mine.shape}, onnxruntime {ref.shape}"
        inferred = graph.outputs[k].shape
        assert inferred is None or (len(inferred) == ref.ndim and all(
            d is None or d == r for d, r in zip(inferred, ref.shape, strict=True))), (
            f"{label}: inferred shape {inferred}, onnxruntime {ref.shape}")
        np.testing.assert_allclose(mine, ref, rtol=rtol, atol=atol, err_msg=label)
        np.testing.assert_array_equal(second, mine, err_msg=f"{label} (second run)")
    return ours
