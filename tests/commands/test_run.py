"""``edgefw run``: outputs, top-k with labels, --output-dir, and clear input errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.cli import main
from tests.commands.conftest import LABELS, onnxruntime_outputs


@pytest.fixture
def digits(tmp_path):
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    path = tmp_path / "digits.npy"
    np.save(path, x)
    return path, x


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_run_saves_outputs_equal_to_onnxruntime(mlp_onnx, digits, tmp_path, capsys):
    path, x = digits
    out_dir = tmp_path / "out"
    assert main(["run", str(mlp_onnx), "--input", str(path), "--output-dir", str(out_dir)]) == 0
    text = capsys.readouterr().out
    (expected,) = onnxruntime_outputs(mlp_onnx, {"input": x})
    saved = np.load(out_dir / "output.npy")
    np.testing.assert_allclose(saved, expected, rtol=1e-5, atol=1e-6)
    assert "output 'output': float32[3, 10]" in text
    assert f"max {expected.max():.6g}" in text
    # the preview is numpy's, 4 decimals: the first printed value is the first element
    assert f"{expected[0, 0]:.4f}".rstrip("0") in text
    assert f"saved 'output' to {out_dir / 'output.npy'}" in text


def test_run_top_k_uses_metadata_labels_and_softmax(mlp_onnx, digits, capsys):
    path, x = digits
    assert main(["run", str(mlp_onnx), "-i", f"input={path}", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (logits,) = onnxruntime_outputs(mlp_onnx, {"input": x})
    probs = _softmax(logits.astype(np.float64))
    head = next(line for line in lines if line.startswith("output 'output'"))
    assert "top 3 of 10 classes" in head and "softmax of the output (logits)" in head
    rows = [line for line in lines if line.strip().startswith("row ")]
    assert len(rows) == 3
    for r, line in enumerate(rows):
        picks = line.split(":", 1)[1].split("|")
        order = np.argsort(-probs[r], kind="stable")[:3]
        for pick, c in zip(picks, order):
            assert pick.split() == [str(c), f"({LABELS[c]})", f"{probs[r, c]:.4f}"]


def test_run_two_inputs_by_name_and_probability_outputs(two_input_onnx, tmp_path, capsys):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 4)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    # b named explicitly, a taken by position
    assert main(["run", str(two_input_onnx), "-i", f"b={tmp_path / 'b.npy'}",
                 "-i", str(tmp_path / "a.npy"), "-k", "2"]) == 0
    text = capsys.readouterr().out
    probs, _ = onnxruntime_outputs(two_input_onnx, {"a": a, "b": b})
    labels = ["cat", "dog", "emu"]  # the model's metadata is a JSON object {"0": "cat", ...}
    assert "scores: the output, already probabilities" in text
    for r in range(2):
        top = np.argsort(-probs[r], kind="stable")[:2]
        expected = " | ".join(f"{c} ({labels[c]}) {probs[r, c]:.4f}" for c in top)
        assert f"row {r}: {expected}" in text
    # the rank-1 output has 6 "classes": labels do not fit and are not used
    assert "metadata has 3 class labels for 6 classes: not used" in text


def test_run_npz_gives_inputs_by_name(two_input_onnx, tmp_path, capsys):
    a = np.ones((1, 4), np.float32)
    b = np.zeros((1, 3), np.float32)
    np.savez(tmp_path / "feed.npz", a=a, b=b)
    out = tmp_path / "o"
    assert main(["run", str(two_input_onnx), "-i", str(tmp_path / "feed.npz"), "-o",
                 str(out)]) == 0
    probs, flat = onnxruntime_outputs(two_input_onnx, {"a": a, "b": b})
    np.testing.assert_allclose(np.load(out / "probs.npy"), probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.load(out / "flat.npy"), flat, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_input, message", [
    (lambda d: ["-i", str(d / "missing.npy")], "input 'input' file not found:"),
    (lambda d: ["-i", f"image={d / 'x.npy'}"], "the model has no input 'image'; its inputs "
                                               "are 'input'"),
    (lambda d: ["-i", str(d / "wrong_shape.npy")], "input 'input' has shape [2, 28, 28]"),
    (lambda d: ["-i", str(d / "float64.npy")], "input 'input' has dtype float64, expected "
                                               "float32"),
    (lambda d: ["-i", str(d / "junk.npy")], "is not a valid .npy file"),
    (lambda d: ["-i", str(d / "truncated.npy")], "is truncated: its header promises "
                                                 "float32[100000, 1, 28, 28]"),
    (lambda d: ["-i", str(d / "objects.npy")], "holds Python objects"),
    (lambda d: ["-i", str(d / "x.npy"), "-i", str(d / "x.npy")], "2 unnamed --input files for "
                                                                 "1 remaining model input"),
    (lambda d: [], "missing input 'input'"),
])
def test_run_input_errors_exit_2_and_name_the_problem(mlp_onnx, tmp_path, capsys, make_input,
                                                      message):
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 28, 28), np.float32))
    np.save(tmp_path / "wrong_shape.npy", np.zeros((2, 28, 28), np.float32))
    np.save(tmp_path / "float64.npy", np.zeros((1, 1, 28, 28)))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file at all")
    # a header that promises 313 MB followed by 16 bytes: refused before any allocation
    with open(tmp_path / "truncated.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (100000, 1, 28, 28)})
        f.write(bytes(16))
    code = main(["run", str(mlp_onnx), *make_input(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("edgefw: error:")
    assert message in err


def test_run_missing_model_and_bad_top_k(mlp_onnx, digits, tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.onnx"), "-i", str(digits[0])]) == 2
    assert "model file not found" in capsys.readouterr().err
    assert main(["run", str(mlp_onnx), "-i", str(digits[0]), "-k", "0"]) == 2
    assert "--top-k must be positive" in capsys.readouterr().err
    assert main(["run", str(mlp_onnx), "-i", str(digits[0]), "--providers", "tpu"]) == 2
    assert "tpu" in capsys.readouterr().err
