"""quantize.compare: every number in the table checked against an independent computation
(the runtime, onnxruntime, the file system), the report files, and bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime as ort
import pytest

import edgefw
import quantize
from edgefw import nn
from edgefw.errors import QuantizationError
from quantize.compare import DEFAULT_VARIANTS
from runtime import InferenceSession
from tests.quantize.test_accuracy import blob_images


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
                         nn.Linear(128, 4))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small trained CNN, its fine-tuned QAT model, and the report on 300 test images."""
    x_train, y_train = blob_images(400, 0)
    x_test, y_test = blob_images(300, 1)
    edgefw.manual_seed(0)
    model = small_cnn()
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss())
    model.fit(x_train, y_train, epochs=5, batch_size=32, seed=0, verbose=0)
    qat = quantize.prepare_qat(model, example_inputs=x_test[:1])
    qat.compile(edgefw.optim.Adam(list(qat.parameters()), lr=1e-4), nn.CrossEntropyLoss())
    qat.fit(x_train, y_train, epochs=1, batch_size=32, seed=0, verbose=0)
    out = tmp_path_factory.mktemp("compare")
    report = quantize.compare(model, (x_test, y_test), calibration_data=x_train[:128],
                              qat_model=qat, eval_batch=128, output_dir=out,
                              mixed_eval_data=(x_train[128:328], y_train[128:328]),
                              latency_runs=(3, 2), latency_batch=64)
    return model, qat, x_test, y_test, out, report


def test_rows_cover_every_variant_in_order(setup):
    *_, report = setup
    assert [r.variant for r in report.rows] == list(DEFAULT_VARIANTS) + ["qat"]
    assert all(r.error is None for r in report.rows), [r.error for r in report.rows]


def test_accuracy_delta_and_agreement_match_the_runtime(setup):
    model, qat, x, y, _, report = setup
    float_pred = InferenceSession(edgefw.trace(model, x[:1])).run(None, {"input": x})[0] \
        .argmax(1)
    float_acc = 100 * np.mean(float_pred == y)
    assert report.row("float32").accuracy == pytest.approx(float_acc)
    assert report.row("float32").agreement == 100.0
    qat_pred = InferenceSession(quantize.convert_qat(qat)).run(None, {"input": x})[0].argmax(1)
    row = report.row("qat")
    assert row.accuracy == pytest.approx(100 * np.mean(qat_pred == y))
    assert row.delta_pp == pytest.approx(row.accuracy - float_acc)
    assert row.agreement == pytest.approx(100 * np.mean(qat_pred == float_pred))
    for r in report.rows:
        assert r.accuracy >= float_acc - 3.0, r.variant  # the blob task quantizes well


def test_sizes_are_the_exported_files(setup):
    *_, out, report = setup
    float_bytes = (out / "models" / "float32.onnx").stat().st_size
    for r in report.rows:
        path = out / "models" / f"{r.variant}.onnx"
        assert r.file_bytes == path.stat().st_size
        assert r.size_ratio == pytest.approx(path.stat().st_size / float_bytes)
    assert 0.45 < report.row("float16").size_ratio < 0.7  # tiny model: names weigh in
    for name in ("dynamic", "int8_per_tensor", "int8_per_channel", "qat"):
        # int8 weights; per-channel scales and int32 biases weigh in on a model this small
        assert report.row(name).size_ratio < min(0.5, report.row("float16").size_ratio), name


def test_exported_qdq_files_agree_with_onnxruntime_within_one_step(setup):
    """Independent of compare's own check: onnxruntime on the written file against our
    runtime on the graph, for the static int8 and QAT variants."""
    model, qat, x, _, out, report = setup
    graphs = {"qat": quantize.convert_qat(qat),
              "int8_per_channel": quantize.quantize_static(edgefw.trace(model, x[:1]),
                                                           blob_images(400, 0)[0][:128])}
    for name, graph in graphs.items():
        ours = InferenceSession(graph).run(None, {"input": x})[0]
        session = ort.InferenceSession(str(out / "models" / f"{name}.onnx"),
                                       providers=["CPUExecutionProvider"])
        theirs = session.run(None, {"input": x})[0]
        step = float(graph.outputs[0].producer.inputs[1].data)
        assert np.abs(ours - theirs).max() <= step * (1 + 1e-3), name
    for r in report.rows:
        assert r.ort_agrees is True, (r.variant, r.ort_max_error, r.ort_tolerance)
        assert r.ort_max_error <= r.ort_tolerance * (1 + 1e-3)


def test_latency_is_measured_for_both_batch_sizes(setup):
    *_, report = setup
    for r in report.rows:
        assert r.latency_b1_ms > 0 and r.latency_batch_ms > 0, r.variant
    assert report.settings["latency_batch"] == 64


def test_report_files_markdown_and_json(setup):
    *_, out, report = setup
    text = (out / "comparison.md").read_text()
    assert text == report.to_markdown()
    assert "| variant | accuracy % | Δ vs float (pp) |" in text
    assert "p50 batch 64 (ms)" in text
    qat_line = next(line for line in text.splitlines() if line.startswith("| qat "))
    assert f"{report.row('qat').accuracy:.2f}" in qat_line
    data = json.loads((out / "comparison.json").read_text())
    assert [r["variant"] for r in data["rows"]] == [r.variant for r in report.rows]
    assert data["rows"][0]["file_bytes"] == report.row("float32").file_bytes
    assert "layers kept float" in report.row("mixed").note
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files


def test_chart_is_skipped_cleanly_without_matplotlib(setup, tmp_path, monkeypatch):
    *_, report = setup
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    files = report.save(tmp_path)
    assert "chart" not in files and not (tmp_path / "comparison.png").exists()
    assert (tmp_path / "comparison.md").exists()


def test_chart_png_with_matplotlib(setup, tmp_path):
    pytest.importorskip("matplotlib")
    *_, report = setup
    files = report.save(tmp_path)
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files["chart"] == str(tmp_path / "comparison.png")


def test_graph_input_and_defaults_without_output_dir():
    x, y = blob_images(64, 2)
    edgefw.manual_seed(1)
    graph = edgefw.trace(small_cnn(), x[:1])
    report = quantize.compare(graph, (x, np.eye(4)[y]), variants=["float32", "int8_per_tensor"],
                              latency=False)
    assert [r.variant for r in report.rows] == ["float32", "int8_per_tensor"]
    assert report.files == {} and report.row("float32").latency_b1_ms is None
    assert any("evaluation images" in n for n in report.notes)  # calibrated on eval data
    assert report.calibration_samples == 64


def test_bad_input_is_named():
    x, y = blob_images(32, 2)
    model = small_cnn()
    with pytest.raises(QuantizationError, match="pair"):
        quantize.compare(model, x)
    with pytest.raises(QuantizationError, match="32 integer class indices"):
        quantize.compare(model, (x, y[:10]))
    with pytest.raises(QuantizationError, match="unknown variant"):
        quantize.compare(model, (x, y), variants=["int4"])
    with pytest.raises(QuantizationError, match="needs qat_model"):
        quantize.compare(model, (x, y), variants=["qat"])
    with pytest.raises(QuantizationError, match="do not fit the model input"):
        quantize.compare(edgefw.trace(model, x[:1]), (np.zeros((4, 3, 5, 5), np.float32),
                                                       np.zeros(4, np.int64)))
    qat = quantize.prepare_qat(model, example_inputs=x[:1])
    with pytest.raises(QuantizationError, match="qat_model="):
        quantize.compare(qat, (x, y))
    with pytest.raises(QuantizationError, match="eval_batch"):
        quantize.compare(model, (x, y), eval_batch=0)
    with pytest.raises(QuantizationError, match="latency_runs"):
        quantize.compare(model, (x, y), latency_runs=(5,))


def test_a_failing_variant_is_reported_not_fatal(monkeypatch):
    x, y = blob_images(32, 2)

    def broken(graph, *args, **kwargs):
        raise QuantizationError("no int8 weights today")

    monkeypatch.setattr(quantize, "quantize_dynamic", broken)
    report = quantize.compare(small_cnn(), (x, y), variants=["float32", "dynamic"],
                              latency=False)
    row = report.row("dynamic")
    assert row.error == "QuantizationError: no int8 weights today" and row.accuracy is None
    assert report.row("float32").accuracy is not None
    assert "| dynamic | failed |" in report.table()
    assert "**dynamic** failed: QuantizationError: no int8 weights today" in report.to_markdown()
