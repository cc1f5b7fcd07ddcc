"""``edgefw compare``: a checkpoint (with a QAT checkpoint) or an .onnx file on the shipped
MNIST, the printed table and the report files, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgefw
import exporter
import quantize
from edgefw import datasets, models, nn
from edgefw.cli import main
from runtime import InferenceSession


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The zoo MLP trained on 300 MNIST images; its checkpoint, QAT checkpoint and .onnx."""
    folder = tmp_path_factory.mktemp("compare_cli")
    (x, y), _ = datasets.load_mnist()
    x = (x[:300].astype(np.float32) / 255.0)[:, None]
    y = y[:300].astype(np.int64)
    edgefw.manual_seed(0)
    model = models.build("mlp")
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss())
    model.fit(x, y, epochs=2, batch_size=32, seed=0, verbose=0)
    edgefw.save(model, folder / "mlp.npz")
    qat = quantize.prepare_qat(model)
    qat.compile(edgefw.optim.Adam(list(qat.parameters()), lr=1e-4), nn.CrossEntropyLoss())
    qat.fit(x, y, epochs=1, batch_size=32, seed=0, verbose=0)
    quantize.save_qat(qat, folder / "mlp-qat.npz")
    exporter.to_onnx(model, folder / "mlp.onnx", example_inputs=x[:1])
    return folder, model


def test_compare_checkpoint_with_qat(trained, tmp_path, capsys):
    folder, model = trained
    out = tmp_path / "report"
    rc = main(["compare", str(folder / "mlp.npz"), "--data", "mnist", "--qat",
               str(folder / "mlp-qat.npz"), "--limit", "200", "--calibration", "100",
               "--out", str(out), "--no-latency"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "comparing mlp.npz on mnist: 200 test images, 100 calibration images" in text
    assert "| variant | accuracy % |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [r.split("|")[1].strip() for r in rows] == [
        "float32", "float16", "dynamic", "int8_per_tensor", "int8_per_channel", "mixed", "qat"]
    assert f"report written to {out}" in text
    data = json.loads((out / "comparison.json").read_text())
    _, (x_test, y_test) = datasets.load_mnist()
    x_test = (x_test[:200].astype(np.float32) / 255.0)[:, None]
    pred = InferenceSession(edgefw.trace(model, x_test[:1])).run(None, {"input": x_test})[0]
    expected = 100 * np.mean(pred.argmax(1) == y_test[:200])
    assert data["rows"][0]["accuracy"] == pytest.approx(expected)
    assert all(r["ort_agrees"] for r in data["rows"]), [r["ort_max_error"] for r in data["rows"]]
    assert (out / "models" / "qat.onnx").is_file()


def test_compare_onnx_model_with_latency_and_default_folder(trained, tmp_path, capsys,
                                                            monkeypatch):
    folder, _ = trained
    monkeypatch.chdir(tmp_path)
    rc = main(["compare", str(folder / "mlp.onnx"), "--data", "mnist", "--limit", "64",
               "--calibration", "64", "--variants", "float32,int8_per_channel"])
    text = capsys.readouterr().out
    assert rc == 0, text
    data = json.loads((tmp_path / "mlp-compare" / "comparison.json").read_text())
    assert [r["variant"] for r in data["rows"]] == ["float32", "int8_per_channel"]
    assert all(r["latency_b1_ms"] > 0 and r["latency_batch_ms"] > 0 for r in data["rows"])
    assert data["rows"][1]["size_ratio"] < 0.3


@pytest.mark.parametrize("args, message", [
    (["missing.npz", "--data", "mnist"], "model file not found"),
    (["{ckpt}", "--data", "mnist", "--calibration", "0"], "--calibration must be positive"),
    (["{ckpt}", "--data", "mnist", "--qat", "{ckpt}"], "not a QAT checkpoint"),
    (["{ckpt}", "--data", "mnist", "--variants", "int4", "--limit", "10"], "unknown variant"),
])
def test_compare_errors(trained, tmp_path, capsys, args, message):
    folder, _ = trained
    args = [a.format(ckpt=folder / "mlp.npz") for a in args]
    rc = main(["compare", *args, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
