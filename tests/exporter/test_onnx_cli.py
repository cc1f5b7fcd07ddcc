"""``edgefw export``: checkpoint -> .onnx on the command line, loaded back in onnxruntime."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

import edgefw
from edgefw import models
from edgefw.cli import main
from exporter.onnx import read_metadata
from tests.exporter.onnx_checks import dims, ort_session


@pytest.fixture(scope="module")
def lenet_checkpoint(tmp_path_factory):
    edgefw.manual_seed(1)
    net = models.build("lenet")
    path = tmp_path_factory.mktemp("ckpt") / "lenet.npz"
    edgefw.save(net, path)
    return path, net


@pytest.mark.parametrize("explicit_model", [False, True])
def test_export_checkpoint_runs_in_onnxruntime(lenet_checkpoint, tmp_path, capsys,
                                               explicit_model):
    checkpoint, net = lenet_checkpoint
    out = tmp_path / "lenet.onnx"
    argv = ["export", str(checkpoint), "--format", "onnx", "--out", str(out), "--opset", "13"]
    if explicit_model:
        argv += ["--model", "lenet"]
    assert main(argv) == 0
    assert "exported lenet" in capsys.readouterr().out
    session = ort_session(str(out))
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.shape == ["batch", 1, 28, 28]
    x = np.random.default_rng(0).uniform(0, 1, (5, 1, 28, 28)).astype(np.float32)
    (logits,) = session.run(None, {"input": x})
    np.testing.assert_allclose(logits, net(x).data, atol=1e-5)
    meta = read_metadata(out)
    assert meta["input_layout"] == "NCHW"
    assert meta["normalization"] == {"scale": 1 / 255}
    assert meta["class_labels"] == [str(d) for d in range(10)]


def test_trained_mlp_checkpoint_exports(tmp_path, capsys):
    checkpoint, out = tmp_path / "mlp.npz", tmp_path / "mlp.onnx"
    assert main(["train", "--model", "mlp", "--limit", "500", "--epochs", "1", "--verbose", "0",
                 "--out", str(checkpoint)]) == 0
    assert main(["export", str(checkpoint), "--model", "mlp", "--format", "onnx",
                 "--out", str(out), "--class-labels", "zero,one,2,3,4,5,6,7,8,9"]) == 0
    capsys.readouterr()
    net = edgefw.load(checkpoint)
    x = np.random.default_rng(2).uniform(0, 1, (7, 1, 28, 28)).astype(np.float32)
    (logits,) = ort_session(str(out)).run(None, {"input": x})
    np.testing.assert_allclose(logits, net(x).data, atol=1e-5)
    assert read_metadata(out)["class_labels"][:2] == ["zero", "one"]


def test_default_output_name_and_opset(lenet_checkpoint, tmp_path, capsys):
    checkpoint = tmp_path / "copy.npz"
    shutil.copy(lenet_checkpoint[0], checkpoint)
    assert main(["export", str(checkpoint)]) == 0
    assert "opset 17" in capsys.readouterr().out
    model = onnx.load(str(tmp_path / "copy.onnx"))
    assert model.opset_import[0].version == 17 and dims(model.graph.input[0])[0] == "batch"

def test_wrong_architecture_and_opset_are_clear_errors(lenet_checkpoint, tmp_path, capsys):
    out = tmp_path / "x.onnx"
    assert main(["export", str(lenet_checkpoint[0]), "--model", "mlp", "--out", str(out)]) == 2
    assert "missing keys" in capsys.readouterr().err
    assert main(["export", str(lenet_checkpoint[0]), "--opset", "11", "--out", str(out)]) == 2
    assert "opset 11 is not supported" in capsys.readouterr().err
    assert not out.exists()
