"""``edgefw export --format tflite``: checkpoint -> .tflite on the command line, run in
LiteRT's interpreter."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import models
from edgefw.cli import main
from exporter.tflite import read_metadata
from tests.exporter.tflite.tflite_checks import interpreter, op_names, run_tflite


@pytest.fixture(scope="module")
def lenet_checkpoint(tmp_path_factory):
    edgefw.manual_seed(1)
    net = models.build("lenet")
    path = tmp_path_factory.mktemp("ckpt") / "lenet.npz"
    edgefw.save(net, path)
    return path, net


def test_float_export(lenet_checkpoint, tmp_path, capsys):
    checkpoint, net = lenet_checkpoint
    out = tmp_path / "lenet.tflite"
    assert main(["export", str(checkpoint), "--format", "tflite", "--out", str(out)]) == 0
    assert "exported lenet" in capsys.readouterr().out
    x = np.random.default_rng(0).random((4, 1, 28, 28), np.float32)
    (got,) = run_tflite(out.read_bytes(), {"input": x})
    np.testing.assert_allclose(got, net(x).data, atol=1e-5)
    meta = read_metadata(out)
    assert meta["input_layout"] == "NHWC" and meta["normalization"] == {"scale": 1 / 255}
    assert meta["class_labels"] == [str(d) for d in range(10)] and meta["model"] == "lenet"


@pytest.mark.parametrize("flags,dtype,op", [
    (["--quantize", "float16"], np.float32, "DEQUANTIZE"),
    (["--quantize", "dynamic"], np.float32, "FULLY_CONNECTED"),
    (["--quantize", "int8", "--calibration", "16"], np.float32, "QUANTIZE"),
    (["--quantize", "int8", "--calibration", "16", "--int8-io"], np.int8, "CONV_2D"),
])
def test_quantized_exports(lenet_checkpoint, tmp_path, capsys, flags, dtype, op):
    checkpoint, net = lenet_checkpoint
    out = tmp_path / "lenet.tflite"
    assert main(["export", str(checkpoint), "--format", "tflite", "--out", str(out)] + flags) == 0
    capsys.readouterr()
    data = out.read_bytes()
    (inp,) = interpreter(data).get_input_details()
    assert inp["dtype"] == dtype and op in op_names(data)
    x = np.random.default_rng(0).random((4, 1, 28, 28), np.float32)
    (got,) = run_tflite(data, {"input": x})
    want = net(x).data
    assert np.abs(got - want).max() < 0.1 * (want.max() - want.min())


def test_quantize_flag_needs_tflite(lenet_checkpoint, tmp_path, capsys):
    checkpoint, _ = lenet_checkpoint
    assert main(["export", str(checkpoint), "--format", "onnx", "--quantize", "int8",
                 "--out", str(tmp_path / "x.onnx")]) == 2
    assert "apply to --format tflite" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
