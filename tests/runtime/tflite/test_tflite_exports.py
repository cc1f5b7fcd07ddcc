"""edgefw's own ``.tflite`` exports (``exporter.to_tflite``) of the reference models, loaded
back by the runtime: every variant must agree with LiteRT's reference kernels on the same
file (float <= 1e-5, int8 within one step).

The exporter writes NHWC interfaces, int8 per-channel weights, hybrid FULLY_CONNECTED /
CONV_2D (asymmetric inputs), float16 weights + DEQUANTIZE and int8 input/output."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

import edgefw
import runtime
from edgefw import models
from tests.runtime.tflite.tflite_builder import assert_matches, litert, random_feed

to_tflite = pytest.importorskip("exporter.tflite").to_tflite

SAMPLES = {"mlp": (1, 28, 28), "lenet": (1, 28, 28), "mobilenet": (1, 28, 28),
           "transformer": (16, 64)}
VARIANTS = ("float32", "float16", "dynamic", "int8", "int8_io")


@cache
def exported(name: str, variant: str) -> bytes:
    edgefw.manual_seed(0)
    kwargs = {"dim": 64, "heads": 4, "hidden": 128} if name == "transformer" else {}
    model = models.build(name, **kwargs)
    model.eval()
    sample = SAMPLES[name]
    calibration = np.random.default_rng(1).normal(0, 1, (16,) + sample).astype(np.float32)
    quantize = None if variant == "float32" else variant.removesuffix("_io")
    return to_tflite(model, None, np.zeros((1,) + sample, np.float32), quantize=quantize,
                     calibration_data=calibration if quantize == "int8" else None,
                     int8_io=variant == "int8_io")


def _compare(data: bytes, seed: int, batch: int = 3) -> tuple[float, int]:
    session = runtime.InferenceSession(data)
    feeds = [random_feed([batch if not isinstance(d, int) else d for d in arg.shape],
                         arg.dtype, seed) for arg in session.get_inputs()]
    ours = session.run(None, {a.name: x for a, x in zip(session.get_inputs(), feeds)})
    theirs = litert(data, feeds)
    worst = max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
                for a, b in zip(ours, theirs, strict=True))
    steps = 0
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        if a.dtype.kind != "f":
            steps = max(steps, int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)))))
    return worst, steps


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["mlp", "lenet", "mobilenet"])
def test_export_matches_litert(name, variant):
    data = exported(name, variant)
    session = runtime.InferenceSession(data)
    feeds = [random_feed([3 if not isinstance(d, int) else d for d in arg.shape], arg.dtype)
             for arg in session.get_inputs()]
    ours = session.run(None, {a.name: x for a, x in zip(session.get_inputs(), feeds)})
    theirs = litert(data, feeds)
    # int8 graphs with float outputs: one output step is the output's scale
    float_atol = 1e-5
    if variant == "int8":
        float_atol = 1.0001 * float(_output_scale(data))
    assert_matches(ours, theirs, float_atol=float_atol)


def _output_scale(data: bytes) -> float:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    ops = it._get_ops_details()
    dequantize = next(op for op in reversed(ops) if op["op_name"] == "DEQUANTIZE")
    detail = next(t for t in it.get_tensor_details() if t["index"] == dequantize["inputs"][0])
    return detail["quantization"][0]


@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic"])
def test_transformer_export_matches_litert(variant):
    worst, _ = _compare(exported("transformer", variant), seed=0)
    assert worst <= 1e-5


def test_transformer_int8_export_within_one_step():
    """The int8 transformer is a mixed graph: int8 FULLY_CONNECTED (ruy's single rounding),
    BATCH_MATMUL and ADD (gemmlowp's double rounding) between float LayerNorm, softmax and
    GELU. The integer kernels are bit-exact and the LayerNorm's MEAN sums in TFLite's
    order, so a step apart only comes from a float op's last bit (softmax's exp, GELU's
    erf) flipping a QUANTIZE now and then."""
    data = exported("transformer", "int8_io")
    graph = runtime.InferenceSession(data).graph
    assert {"QGemm", "QBatchMatMul", "QAdd"} <= {n.op_type for n in graph.nodes}
    worst_steps = 0
    for seed in range(6):
        for batch in (3, 16):
            _, steps = _compare(data, seed, batch)
            worst_steps = max(worst_steps, steps)
    assert worst_steps <= 1


def test_export_metadata_reaches_the_graph():
    graph = runtime.load_tflite(exported("lenet", "int8"))
    assert graph.metadata["producer"].startswith("edgefw")
    assert graph.metadata["input_layout"] == "NHWC"
    assert graph.metadata["quantization"] == "int8"
    assert graph.inputs[0].shape == ("batch", 28, 28, 1)
