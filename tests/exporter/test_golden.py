"""Golden data: the record round-trips through both formats' metadata, its expected
outputs are what the runtimes compute, its tolerances follow the documented rule, and a
corrupt record is refused before anything large is allocated."""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import edgefw
import quantize
from edgefw import models
from edgefw.demo.artifacts import export_with_golden, output_step
from edgefw.demo.runners import load_graph
from edgefw.errors import ExportError, ModelFormatError
from exporter.golden import (
    GOLDEN_KEY,
    GoldenData,
    Tolerance,
    attach_to_onnx,
    decode_array,
    encode_array,
    golden_metadata,
    make_tolerance,
    read_golden,
)

RNG = np.random.default_rng(3)


@pytest.fixture(scope="module")
def mlp():
    edgefw.manual_seed(1)
    model = models.build("mlp")
    graph = edgefw.trace(model, np.zeros((1, 1, 28, 28), np.float32))
    images = RNG.random((64, 1, 28, 28), np.float32)
    with edgefw.no_grad():
        model.eval()
        forward = model(images).numpy()  # the trainer's own forward: an independent reference
    return graph, images, forward


def test_arrays_round_trip_bit_exactly():
    for array in (RNG.standard_normal((3, 4)).astype(np.float32),
                  RNG.integers(-128, 128, (2, 5, 1), dtype=np.int8),
                  np.zeros((0, 7), np.float16), np.array(3.5, np.float64)):
        budget = [1 << 20]
        back = decode_array(json.loads(json.dumps(encode_array(array))), budget, "t")
        assert back.dtype == array.dtype and back.shape == array.shape
        np.testing.assert_array_equal(back, array)
    assert budget[0] == (1 << 20) - 8


def test_tolerance_rule():
    assert make_tolerance("float", np.array([-30.0, 2.0])).atol == pytest.approx(3e-3)
    assert make_tolerance("float", np.array([0.2])).atol == pytest.approx(1e-4)
    t = make_tolerance("quantized", np.array([1.0]), step=0.02)
    assert (t.atol, t.steps, t.step) == (pytest.approx(0.06), 3, 0.02)
    assert make_tolerance("quantized", np.array([0.5, -2.54]), step=None).atol == \
        pytest.approx(3 * 2.54 / 127)
    with pytest.raises(ExportError):
        make_tolerance("fuzzy", np.array([1.0]))


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_float_file_carries_golden_data_equal_to_onnxruntime_and_the_trainer(mlp, fmt,
                                                                              tmp_path):
    graph, images, forward = mlp
    path = export_with_golden(graph, tmp_path / f"mlp.{fmt}", golden_inputs=[images[:5]],
                              metadata={"normalization": {"scale": 1 / 255}})
    golden = read_golden(load_graph(path).metadata)
    assert golden.input_names == ["input"] and golden.output_names == ["output"]
    expected_input = images[:5] if fmt == "onnx" else images[:5].transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(golden.inputs[0], expected_input)
    reference = golden.reference[0]
    np.testing.assert_allclose(reference, forward[:5], atol=1e-5)
    if fmt == "onnx":
        theirs = ort.InferenceSession(str(path)).run(None, {"input": images[:5]})[0]
        np.testing.assert_allclose(golden.expected[0], theirs, atol=1e-5)
    np.testing.assert_allclose(golden.expected[0], reference, atol=1e-5)
    assert golden.tolerances[0].kind == "float"
    assert golden.tolerances[0].atol == pytest.approx(
        1e-4 * max(1.0, float(np.abs(golden.expected[0]).max())))


def test_static_int8_tolerance_is_three_steps_of_the_output_scale(mlp, tmp_path):
    graph, images, _ = mlp
    int8 = quantize.quantize_static(graph, images, per_channel=True)
    path = export_with_golden(int8, tmp_path / "int8.onnx", golden_inputs=[images[:4]],
                              reference_graph=graph)
    golden = read_golden(load_graph(path).metadata)
    # the model ends Gemm -> QuantizeLinear -> DequantizeLinear (no Softmax): its scale
    dq = [n for n in int8.nodes if n.op_type == "DequantizeLinear"
          and n.outputs[0] is int8.outputs[0]]
    assert len(dq) == 1
    step = float(np.max(dq[0].inputs[1].data))
    assert golden.tolerances[0].kind == "quantized"
    assert golden.tolerances[0].step == pytest.approx(step)
    assert golden.tolerances[0].atol == pytest.approx(3 * step)
    theirs = ort.InferenceSession(str(path)).run(None, {"input": images[:4]})[0]
    assert np.abs(theirs - golden.expected[0]).max() <= golden.tolerances[0].atol
    # the float reference differs from the quantized file, which is why both are stored
    assert np.abs(golden.reference[0] - golden.expected[0]).max() > 0


def test_output_step_is_halved_through_softmax():
    from edgefw.ir import Graph

    g = Graph("softmax_head")
    x = g.add_input("x", "float32", ("batch", 4))
    q = g.add_node("QuantizeLinear", [x, np.float32(0.25), np.int8(0)]).output
    dq = g.add_node("DequantizeLinear", [q, np.float32(0.25), np.int8(0)]).output
    g.set_outputs([g.add_node("Softmax", [dq], {"axis": -1}).output])
    assert output_step(g, 0) == pytest.approx(0.125)
    g2 = Graph("float_head")
    y = g2.add_input("y", "float32", ("batch", 4))
    g2.set_outputs([g2.add_node("Tanh", [y]).output])
    assert output_step(g2, 0) is None


def test_attach_to_onnx_replaces_the_record_and_keeps_other_metadata(mlp, tmp_path):
    graph, images, _ = mlp
    path = export_with_golden(graph, tmp_path / "m.onnx", golden_inputs=[images[:2]],
                              metadata={"class_labels": list("0123456789")})
    golden = read_golden(load_graph(path).metadata)
    golden.expected = [golden.expected[0] + 1.0]
    attach_to_onnx(path, golden)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["class_labels"])[3] == "3"
    assert GOLDEN_KEY in json.loads(props["edgefw.json_keys"])
    again = read_golden(load_graph(path).metadata)
    np.testing.assert_array_equal(again.expected[0], golden.expected[0])


def _record(**array_changes):
    good = GoldenData(["x"], [np.ones((2, 3), np.float32)], ["y"],
                      expected=[np.zeros((2, 2), np.float32)],
                      tolerances=[Tolerance("float", 1e-4)])
    record = golden_metadata(good)[GOLDEN_KEY]
    record["inputs"][0]["array"].update(array_changes)
    return {GOLDEN_KEY: json.dumps(record)}


@pytest.mark.parametrize("changes, words", [
    ({"shape": [1 << 20, 1 << 20]}, "more than"),
    ({"shape": [2, 4]}, "needs 32 bytes"),
    ({"data": "***"}, "corrupt"),
    ({"data": base64.b64encode(b"not zlib").decode()}, "corrupt"),
    ({"dtype": "object"}, "dtype"),
    ({"shape": [2, -3]}, "shape"),
    ({"encoding": "pickle"}, "encoding"),
])
def test_corrupt_records_are_refused(changes, words):
    with pytest.raises(ModelFormatError, match=words):
        read_golden(_record(**changes))


def test_decompression_bomb_is_cut_at_the_declared_size():
    bomb = base64.b64encode(zlib.compress(b"\0" * (50 << 20))).decode()
    with pytest.raises(ModelFormatError, match="needs 24 bytes"):
        read_golden(_record(data=bomb))


def test_missing_and_malformed_records():
    assert read_golden({}) is None
    with pytest.raises(ModelFormatError, match="not JSON"):
        read_golden({GOLDEN_KEY: "{oops"})
    with pytest.raises(ModelFormatError, match="version"):
        read_golden({GOLDEN_KEY: '{"version": 99}'})
