"""Shared checks for the TFLite exporter tests: run a file in LiteRT's interpreter (the
judge of every file written) and the same graph in edgefw's runtime, and compare."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from edgefw.ir import Graph
from edgefw.ir.graph import constant_data
from exporter.tflite import to_tflite
from runtime import InferenceSession

try:  # the judge: ai-edge-litert, or tflite-runtime where that is what is installed
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError:  # pragma: no cover - depends on the installation
    tflite_runtime = pytest.importorskip("tflite_runtime.interpreter")
    Interpreter, OpResolverType = tflite_runtime.Interpreter, tflite_runtime.OpResolverType

NHWC = (0, 2, 3, 1)


def interpreter(data: bytes, resolver: str = "AUTO") -> Any:
    """An interpreter for ``data``: ``resolver`` "AUTO" (XNNPACK, what users get) or
    "BUILTIN_REF" (TFLite's reference kernels)."""
    return Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType[resolver])


def to_file_layout(x: np.ndarray, layout: str = "NHWC") -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, NHWC)) if x.ndim == 4 and layout == "NHWC" \
        else x


def from_file_layout(y: np.ndarray, layout: str = "NHWC") -> np.ndarray:
    return np.transpose(y, (0, 3, 1, 2)) if y.ndim == 4 and layout == "NHWC" else y


def run_tflite(data: bytes, feeds: Mapping[str, np.ndarray], *, layout: str = "NHWC",
               resolver: str = "AUTO") -> list[np.ndarray]:
    """Run ``data`` on ``feeds`` (by input name, IR layout; rank-4 arrays are transposed to
    the file's NHWC and back; int8 inputs/outputs are (de)quantized with their tensor's
    parameters); returns the outputs in order, in the IR layout, as float."""
    interp = interpreter(data, resolver)
    details = {d["name"]: d for d in interp.get_input_details()}
    for name, x in feeds.items():
        interp.resize_tensor_input(details[name]["index"], to_file_layout(x, layout).shape)
    interp.allocate_tensors()
    for name, x in feeds.items():
        d = details[name]
        x = to_file_layout(np.asarray(x), layout)
        if d["dtype"] == np.int8:
            scale, zero_point = d["quantization"]
            x = np.clip(np.rint(x / scale) + zero_point, -128, 127)
        interp.set_tensor(d["index"], x.astype(d["dtype"]))
    interp.invoke()
    outs = []
    for d in interp.get_output_details():
        y = interp.get_tensor(d["index"])
        if d["dtype"] == np.int8:
            scale, zero_point = d["quantization"]
            y = (y.astype(np.float32) - zero_point) * np.float32(scale)
        outs.append(from_file_layout(y, layout))
    return outs


def run_edgefw(graph: Graph, feeds: Mapping[str, np.ndarray],
               optimization: str = "all") -> list[np.ndarray]:
    """The runtime's outputs; with ``"all"`` a QDQ graph runs on its integer kernels, with
    ``"basic"`` as float arithmetic between its Q/DQ pairs."""
    return InferenceSession(graph, optimization=optimization).run(None, dict(feeds))


def op_names(data: bytes) -> list[str]:
    """The builtin op of every operator, in execution order."""
    interp = interpreter(data, "BUILTIN_WITHOUT_DEFAULT_DELEGATES")
    return [d["op_name"] for d in interp._get_ops_details()]


def check_float(graph: Graph, feeds: Mapping[str, np.ndarray], *, atol: float = 1e-5,
                expect_ops: Sequence[str] | None = None, optimize: str = "none",
                layout: str = "NHWC", **export: Any) -> bytes:
    """Export ``graph``; the interpreter's outputs equal the runtime's within ``atol``; the
    file holds exactly the ``expect_ops`` (multiset) when given. Returns the file."""
    data = to_tflite(graph, optimize=optimize, layout=layout, **export)
    got = run_tflite(data, feeds, layout=layout)
    want = run_edgefw(graph, feeds)
    assert len(got) == len(want)
    for g, w, value in zip(got, want, graph.outputs):
        assert g.shape == w.shape, (value.name, g.shape, w.shape)
        np.testing.assert_allclose(g, w, atol=atol, rtol=0, err_msg=value.name)
    if expect_ops is not None:
        assert sorted(op_names(data)) == sorted(expect_ops)
    return data


def output_scale(graph: Graph, index: int = 0) -> float:
    """The scale of the DequantizeLinear producing graph output ``index``."""
    node = graph.outputs[index].producer
    assert node is not None and node.op_type == "DequantizeLinear", "output is not dequantized"
    return float(np.asarray(constant_data(node.inputs[1])).reshape(-1)[0])


def lsb_error(got: np.ndarray, want: np.ndarray, scale: float) -> float:
    """The largest difference in units of the output's quantization step."""
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))) / scale)


__all__ = ["NHWC", "check_float", "interpreter", "lsb_error", "op_names", "output_scale",
           "run_edgefw", "run_tflite", "to_file_layout"]
