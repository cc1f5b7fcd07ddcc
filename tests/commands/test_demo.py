"""``edgefw demo``: the table's numbers are the runtimes' real ones (recomputed here with
onnxruntime and the TFLite interpreter on the exported files), every file carries golden
data that verifies, and a missing piece degrades to a row that says so."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import onnxruntime as ort
import pytest

import edgefw
from edgefw import cli, datasets
from edgefw.demo import pipeline, runners
from edgefw.demo.pipeline import DemoSettings, run_demo
from edgefw.demo.verification import verify_model
from edgefw.errors import ExportError
from runtime import InferenceSession

TEST_IMAGES = 300
VARIANTS = [v for v, _ in pipeline.VARIANTS]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A quick demo through the CLI: 1 epoch on 1,500 images, 300 test images."""
    out = tmp_path_factory.mktemp("demo")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli.main(["demo", "--quick", "--epochs", "1", "--limit", "1500", "--test-limit",
                         str(TEST_IMAGES), "--runtimes", "cpu,onnxruntime,tflite", "--out",
                         str(out), "--verbose", "0"])
    report = json.loads((out / "report.json").read_text())
    return code, buffer.getvalue(), report, out


def _test_set():
    _, (x_test, y_test) = datasets.load_mnist()
    return x_test[:TEST_IMAGES], y_test[:TEST_IMAGES].astype(np.int64)


def _rows(report, **match):
    return [r for r in report["rows"] if all(r[k] == v for k, v in match.items())]


def test_demo_prints_progress_one_table_and_where_the_report_is(demo):
    code, out, report, folder = demo
    assert code == 0
    for step in range(1, 7):
        assert f"[{step}/6]" in out
    assert out.count("top-1 = edgefw cpu") == 1  # one table
    for variant in VARIANTS:
        assert f"\n{variant} " in out
    assert f"report: {folder / 'report.md'}" in out
    assert (folder / "report.md").read_text().count("| float32 |") == 1
    assert (folder / "mlp.npz").is_file()
    assert len(report["rows"]) == len(VARIANTS) * 2 * 2  # variants x formats x runtimes
    assert all(r["accuracy"] is not None for r in report["rows"]), report["rows"]


def test_accuracies_are_what_onnxruntime_and_litert_compute(demo):
    _, _, report, folder = demo
    x_test, y_test = _test_set()
    pixels = (x_test / 255.0).astype(np.float32)  # the brief's preprocessing, by hand
    for variant in VARIANTS:
        onnx_file = folder / "models" / f"mlp_{variant}.onnx"
        theirs = ort.InferenceSession(str(onnx_file)).run(None, {"input": pixels})[0]
        row = _rows(report, variant=variant, format="onnx", runtime="onnxruntime")[0]
        assert row["accuracy"] == pytest.approx(100 * np.mean(theirs.argmax(1) == y_test))
        ours = InferenceSession(onnx_file).run(None, {"input": pixels})[0]
        assert row["agreement"] == pytest.approx(
            100 * np.mean(ours.argmax(1) == theirs.argmax(1)))
        assert row["max_diff"] == pytest.approx(float(np.abs(ours - theirs).max()), abs=1e-9)

        tflite_file = folder / "models" / f"mlp_{variant}.tflite"
        interpreter, _ = runners.tflite_interpreter_class()
        interp = interpreter(model_path=str(tflite_file))
        detail = interp.get_input_details()[0]
        interp.resize_tensor_input(detail["index"], list(pixels.shape))
        interp.allocate_tensors()
        interp.set_tensor(detail["index"], pixels)
        interp.invoke()
        litert = interp.get_tensor(interp.get_output_details()[0]["index"])
        row = _rows(report, variant=variant, format="tflite", runtime="TFLite interpreter")[0]
        assert row["accuracy"] == pytest.approx(100 * np.mean(litert.argmax(1) == y_test))


def test_delta_vs_float_sizes_and_latency(demo):
    _, _, report, folder = demo
    for row in report["rows"]:
        base = _rows(report, variant="float32", format=row["format"],
                     runtime=row["runtime"])[0]
        assert row["delta_pp"] == pytest.approx(row["accuracy"] - base["accuracy"])
        assert row["latency_ms"] > 0
        assert row["file_bytes"] == (folder / "models" / row["file"].split("/")[-1]
                                     ).stat().st_size
    size = {v: _rows(report, variant=v, format="onnx", runtime="edgefw cpu")[0]["file_bytes"]
            for v in VARIANTS}
    assert size["int8"] <= 0.3 * size["float32"]
    assert 0.45 * size["float32"] <= size["float16"] <= 0.55 * size["float32"]


def test_every_exported_file_verifies_with_its_golden_data(demo):
    _, _, _, folder = demo
    for path in sorted((folder / "models").iterdir()):
        result = verify_model(path, runtimes=["edgefw cpu", "onnxruntime",
                                              "TFLite interpreter"])
        assert result.passed, (path, [r.__dict__ for r in result.results])
        assert len(result.ran) == 2


def _tiny(tmp_path, **kw):
    return DemoSettings(epochs=1, out=tmp_path, train_limit=400, test_limit=100,
                        calibration=64, mixed_eval_samples=100, latency_seconds=0.001,
                        verbose=0, runtimes=("edgefw cpu", "onnxruntime",
                                             "TFLite interpreter"), **kw)


def test_missing_tflite_export_and_interpreter_become_table_rows(tmp_path, monkeypatch,
                                                                 capsys):
    import exporter

    real_to_tflite = exporter.to_tflite

    def to_tflite_without_int8(graph, *args, **kwargs):
        if any(n.op_type == "QuantizeLinear" for n in graph.nodes):
            raise ExportError("QuantizeLinear has no TFLite lowering yet")
        return real_to_tflite(graph, *args, **kwargs)

    def no_interpreter():
        raise ImportError("No module named 'ai_edge_litert'", name="ai_edge_litert")

    monkeypatch.setattr(exporter, "to_tflite", to_tflite_without_int8)
    monkeypatch.setattr(runners, "tflite_interpreter_class", no_interpreter)
    report = run_demo(_tiny(tmp_path))
    table = report.table()
    assert "TFLite export not available: QuantizeLinear has no TFLite lowering yet" in table
    assert "n/a: not installed (ai_edge_litert)" in table
    int8_tflite = report.row("int8", "tflite", "edgefw cpu")
    assert int8_tflite.accuracy is None and "export not available" in int8_tflite.status
    float_tflite = report.row("float32", "tflite", "edgefw cpu")
    assert float_tflite.accuracy is not None  # the rest of the story still runs
    assert report.row("int8", "onnx", "onnxruntime").accuracy is not None
    capsys.readouterr()


def test_demo_argument_errors(capsys):
    assert cli.main(["demo", "--dataset", "fashion-mnist"]) == 2
    assert "needs --data PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "0"])
    assert cli.main(["demo", "--runtimes", "cpu,tpu"]) == 2
    assert "unknown runtime" in capsys.readouterr().err


@pytest.mark.slow
def test_full_default_demo(tmp_path, capsys):
    """What a new user runs: 5 epochs of the brief's MLP, every runtime present."""
    assert cli.main(["demo", "--out", str(tmp_path), "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    float_acc = _rows(report, variant="float32", format="onnx", runtime="edgefw cpu")[0]
    int8 = _rows(report, variant="int8", format="tflite", runtime="edgefw cpu")[0]
    assert float_acc["accuracy"] > 97.0
    assert abs(int8["delta_pp"]) <= 0.5
    for row in report["rows"]:
        if row["agreement"] is not None:
            assert row["agreement"] >= 99.9, row
    print(out)
    edgefw.load(tmp_path / "mlp.npz")
