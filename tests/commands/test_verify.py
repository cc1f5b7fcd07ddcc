"""``edgefw verify``: every variant in both formats passes on every runtime, the reported
errors are the real ones (recomputed here with onnxruntime and the TFLite interpreter), and
a file that no longer computes its expected outputs fails with exit code 1."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

import edgefw
import quantize
from edgefw import cli, models
from edgefw.commands.verify import parse_runtimes
from edgefw.demo.artifacts import export_with_golden
from edgefw.demo.runners import TFLiteRunner, load_graph
from edgefw.errors import ConfigError
from exporter.golden import attach_to_onnx, read_golden

NO_GPU = "cpu,onnxruntime,tflite"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """LeNet-5 (random weights, so quick) as float32, float16, dynamic and static int8, in
    both formats, each with golden data."""
    edgefw.manual_seed(2)
    graph = edgefw.trace(models.build("lenet"), np.zeros((1, 1, 28, 28), np.float32))
    images = np.random.default_rng(2).random((48, 1, 28, 28), np.float32)
    variants = {"float32": graph, "float16": quantize.convert_float16(graph),
                "dynamic": quantize.quantize_dynamic(graph),
                "int8": quantize.quantize_static(graph, images, per_channel=True)}
    folder = tmp_path_factory.mktemp("verify")
    out = {}
    for name, g in variants.items():
        for fmt in ("onnx", "tflite"):
            out[name, fmt] = export_with_golden(g, folder / f"lenet_{name}.{fmt}",
                                                golden_inputs=[images[:6]],
                                                reference_graph=graph,
                                                metadata={"normalization": {"scale": 1 / 255}})
    return out


def _verify(path, *extra, capsys=None, tmp_path=None):
    report = tmp_path / "verify.json"
    code = cli.main(["verify", str(path), "--json", str(report), *extra])
    return code, json.loads(report.read_text()), capsys.readouterr().out


@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic", "int8"])
@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_every_variant_passes_on_every_runtime(files, variant, fmt, capsys, tmp_path):
    path = files[variant, fmt]
    code, report, out = _verify(path, "--runtimes", NO_GPU, capsys=capsys, tmp_path=tmp_path)
    assert code == 0, out
    assert "OK: 2 runtime(s)" in out
    reference_runtime = "onnxruntime" if fmt == "onnx" else "TFLite interpreter"
    ran = {r["runtime"]: r for r in report["results"]}
    assert set(ran) == {"edgefw cpu", reference_runtime}
    golden = read_golden(load_graph(path).metadata)
    # The max error in the report is the one the other runtime really has.
    if fmt == "onnx":
        theirs = ort.InferenceSession(str(path)).run(None, {"input": golden.inputs[0]})[0]
    else:
        theirs = TFLiteRunner(path).run(golden.inputs)[0]
    error = float(np.abs(theirs.astype(np.float64) - golden.expected[0]).max())
    check = ran[reference_runtime]["outputs"][0]
    assert check["max_error"] == pytest.approx(error, abs=1e-12)
    assert check["max_error"] <= check["tolerance"]
    assert ran["edgefw cpu"]["outputs"][0]["max_error"] == 0.0
    same = int(np.sum(theirs.argmax(1) == golden.expected[0].argmax(1)))
    assert check["argmax_agree"] == same and check["argmax_total"] == 6
    kind = "float" if variant in ("float32", "float16") else "quantized"
    assert report["tolerances"][0]["kind"] == kind


def test_a_file_that_drifted_from_its_expected_outputs_fails(files, capsys, tmp_path):
    path = tmp_path / "drifted.onnx"
    path.write_bytes(files["int8", "onnx"].read_bytes())
    golden = read_golden(load_graph(path).metadata)
    tolerance = golden.tolerances[0].atol
    golden.expected = [golden.expected[0] + 2 * tolerance]  # as if the file had changed
    attach_to_onnx(path, golden)
    code, report, out = _verify(path, "--runtimes", NO_GPU, capsys=capsys, tmp_path=tmp_path)
    assert code == 1
    assert "MISMATCH" in out and "FAILED" in out
    for result in report["results"]:
        assert not result["passed"]
        assert result["outputs"][0]["max_error"] == pytest.approx(2 * tolerance, rel=0.5)


def test_atol_and_tolerance_steps_override_the_recorded_tolerance(files, capsys, tmp_path):
    path = files["dynamic", "onnx"]  # onnxruntime computes dynamic int8 in float: differs
    code, report, out = _verify(path, "--runtimes", "cpu,onnxruntime", "--atol", "0",
                                capsys=capsys, tmp_path=tmp_path)
    assert code == 1 and "FAILED: onnxruntime does not reproduce" in out
    code, report, _ = _verify(path, "--runtimes", "cpu", "--tolerance-steps", "10",
                              capsys=capsys, tmp_path=tmp_path)
    assert code == 0
    step = report["tolerances"][0]["step"]
    assert report["tolerances"][0]["atol"] == pytest.approx(10 * step)


def test_gpu_runs_when_an_adapter_exists(capsys, tmp_path):
    edgefw.manual_seed(4)
    graph = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    images = np.random.default_rng(4).random((3, 1, 28, 28), np.float32)
    path = export_with_golden(graph, tmp_path / "mlp.tflite", golden_inputs=[images])
    code, report, out = _verify(path, "--runtimes", "cpu,gpu", capsys=capsys,
                                tmp_path=tmp_path)
    gpu = next(r for r in report["results"] if r["runtime"] == "edgefw gpu")
    assert code == 0, out
    if gpu["skipped"]:
        assert "adapter" in gpu["skipped"] or "not available" in gpu["skipped"]
    else:
        assert gpu["outputs"][0]["max_error"] <= gpu["outputs"][0]["tolerance"]


def test_file_without_golden_data_is_an_error(tmp_path, capsys):
    import exporter

    path = tmp_path / "plain.onnx"
    g = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    exporter.to_onnx(g, path)
    assert cli.main(["verify", str(path)]) == 2
    assert "carries no golden data" in capsys.readouterr().err
    assert cli.main(["verify", str(tmp_path / "missing.tflite")]) == 2
    assert "not found" in capsys.readouterr().err


def test_runtime_names():
    assert parse_runtimes("cpu, tflite") == ["edgefw cpu", "TFLite interpreter"]
    assert parse_runtimes(None) is None
    with pytest.raises(ConfigError, match="unknown runtime"):
        parse_runtimes("cpu,tensorrt")
