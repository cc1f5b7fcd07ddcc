"""Third-party ONNX files (PyTorch's two exporters, onnxruntime's quantization tool) load
into the IR and run on edgefw's runtime with the numbers PyTorch and onnxruntime give."""

from __future__ import annotations

import numpy as np
import pytest

import runtime
from runtime import InferenceSession
from tests.runtime.loaders.onnx_fixtures import (
    FLOAT_KINDS,
    QUANTIZED_KINDS,
    model_of,
    onnxruntime_outputs,
    output_steps,
    path_of,
    random_inputs,
    stems,
    stored_inputs,
    torch_outputs,
)

FLOAT_STEMS = stems(FLOAT_KINDS)
QUANTIZED_STEMS = stems(QUANTIZED_KINDS)
# Integer ops each quantized file must keep (so the test runs them, not a float rewrite).
INTEGER_OPS = {
    "qop": {"QLinearMatMul", "QLinearConv"},
    "dyn": {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"},
    "qdq_u8": {"QuantizeLinear", "DequantizeLinear"},
    "qdq_s8c": {"QuantizeLinear", "DequantizeLinear"},
}


def _tolerance(stem: str) -> float:
    return 1e-5  # the transformer block too (measured: 2.4e-7 from torch, from onnxruntime)


def test_fixture_set_is_complete_and_small():
    assert len(FLOAT_STEMS) == 16 and len(QUANTIZED_STEMS) == 11
    sizes = {p.name: p.stat().st_size for p in path_of("mlp_ts17").parent.iterdir()}
    assert max(sizes.values()) < 200 * 1024, sizes
    assert sum(sizes.values()) < 1.5 * 1024 * 1024


@pytest.mark.parametrize("stem", FLOAT_STEMS)
def test_float_model_matches_torch_and_onnxruntime(stem):
    feed = stored_inputs(model_of(stem))
    session = InferenceSession(str(path_of(stem)))
    ours = session.run(None, feed)
    tol = _tolerance(stem)
    for k, (mine, expected) in enumerate(zip(ours, torch_outputs(model_of(stem)), strict=True)):
        np.testing.assert_allclose(mine, expected, rtol=tol, atol=tol, err_msg=f"output {k}")
    for k, (mine, ref) in enumerate(zip(ours, onnxruntime_outputs(stem, feed), strict=True)):
        assert mine.dtype == ref.dtype and mine.shape == ref.shape
        np.testing.assert_allclose(mine, ref, rtol=tol, atol=tol, err_msg=f"output {k}")


@pytest.mark.parametrize("stem", FLOAT_STEMS)
def test_float_model_keeps_dynamic_dims(stem):
    session = InferenceSession(path_of(stem))
    assert session.get_inputs()[0].shape[0] == "batch"
    seq = 4 if model_of(stem) == "transformer" else None
    for batch in (1, 3):
        feed = random_inputs(stem, batch, seq)
        ours = session.run(None, feed)
        for mine, ref in zip(ours, onnxruntime_outputs(stem, feed), strict=True):
            assert mine.shape[0] == batch
            np.testing.assert_allclose(mine, ref, rtol=_tolerance(stem), atol=_tolerance(stem))


@pytest.mark.parametrize("stem", QUANTIZED_STEMS)
def test_quantized_model_within_one_step_of_onnxruntime(stem):
    """Both runtimes optimized (QDQ groups may run as integer kernels on either side) and
    both unoptimized (QDQ executed as written): outputs within one quantization step."""
    kind = stem[len(model_of(stem)) + 1:]
    graph = runtime.load_onnx(path_of(stem))
    ops = {n.op_type for n in graph.nodes}
    assert ops & INTEGER_OPS[kind], f"{stem} lost its integer ops: {sorted(ops)}"
    steps = output_steps(stem)
    for optimize in (True, False):
        session = InferenceSession(graph, optimization="all" if optimize else "none")
        for feed in (stored_inputs(model_of(stem)), random_inputs(stem, 3)):
            ours = session.run(None, feed)
            theirs = onnxruntime_outputs(stem, feed, optimize=optimize)
            for k, (mine, ref, step) in enumerate(zip(ours, theirs, steps, strict=True)):
                assert mine.dtype == ref.dtype and mine.shape == ref.shape
                # float outputs (no DequantizeLinear last): float rounding only
                tol = 1e-5 if step is None else step * (1 + 1e-4)
                np.testing.assert_allclose(mine, ref, rtol=0, atol=tol,
                                           err_msg=f"output {k}, optimize={optimize}")


@pytest.mark.parametrize("stem", ["mobilenet_ts9", "transformer_ts11", "dynamic_ts9"])
def test_old_opset_files_become_newest_form(stem):
    graph = runtime.load_onnx(path_of(stem))
    assert int(graph.metadata["onnx_opset"]) < 13 and graph.opset >= 18
    for node in graph.nodes:
        if node.op_type in ("Clip", "Squeeze", "Unsqueeze", "Split", "Slice", "Pad") or \
                node.op_type.startswith("Reduce"):
            assert not {"min", "max", "axes", "split", "starts", "ends", "pads"} & set(node.attrs)
    # old exporters list weights as graph inputs: they load as constants, not inputs
    assert [v.name for v in graph.inputs] == ["input"]


def test_session_accepts_path_bytes_and_model_proto():
    import onnx

    path = path_of("mlp_ts17")
    feed = stored_inputs("mlp")
    expected = torch_outputs("mlp")[0]
    for model in (str(path), path, path.read_bytes(), onnx.load(str(path))):
        graph = runtime.load_onnx(model)
        np.testing.assert_allclose(InferenceSession(graph).run(None, feed)[0], expected,
                                   rtol=1e-5, atol=1e-5)
    for model in (str(path), path.read_bytes()):
        np.testing.assert_allclose(InferenceSession(model).run(None, feed)[0], expected,
                                   rtol=1e-5, atol=1e-5)
