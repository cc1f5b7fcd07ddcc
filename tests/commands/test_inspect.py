"""``edgefw inspect``: format, inputs/outputs with symbolic dims, op histogram, parameters."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
from onnx import numpy_helper

from edgefw.cli import main
from tests.commands.conftest import LABELS


def _inspect_json(path, capsys) -> dict:
    assert main(["inspect", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_mlp_counts_parameters_and_ops(mlp_onnx, capsys):
    facts = _inspect_json(mlp_onnx, capsys)
    # 784*128 + 128 + 128*10 + 10, all float32
    count = 784 * 128 + 128 + 128 * 10 + 10
    assert facts["parameters"]["count"] == count
    assert facts["parameters"]["bytes"] == 4 * count
    assert facts["parameters"]["by_dtype"] == {"float32": {"tensors": 4, "count": count,
                                                           "bytes": 4 * count}}
    assert facts["ops"] == {"Gemm": 2, "Flatten": 1, "Relu": 1}
    assert facts["inputs"] == [{"name": "input", "dtype": "float32",
                                "shape": ["batch", 1, 28, 28]}]
    assert facts["outputs"][0]["shape"] == ["batch", 10]
    assert facts["file_bytes"] == os.path.getsize(mlp_onnx)
    assert facts["format"] == "onnx"
    assert facts["header"]["opsets"] == {"ai.onnx": 17}
    assert facts["header"]["producer"].startswith("edgefw")
    assert facts["metadata"]["class_labels"] == LABELS
    assert facts["metadata"]["input_layout"] == "NCHW"


def test_inspect_text_report(mlp_onnx, capsys):
    assert main(["inspect", str(mlp_onnx)]) == 0
    out = capsys.readouterr().out
    assert "onnx model" in out and f"({os.path.getsize(mlp_onnx):,} bytes)" in out
    assert "input  float32[batch, 1, 28, 28]" in out
    assert "output  float32[batch, 10]" in out
    lines = out.splitlines()
    assert any(line.split() == ["Gemm", "2"] for line in lines)
    assert "parameters: 101,770 in 4 tensors, 397.5 KiB" in out
    assert "class_labels: [\"zero\", \"one\"" in out


def test_inspect_other_producer_counts_each_dtype(two_input_onnx, capsys):
    facts = _inspect_json(two_input_onnx, capsys)
    reference = onnx.load(two_input_onnx)
    by_dtype = {}
    for tensor in reference.graph.initializer:
        array = numpy_helper.to_array(tensor)
        entry = by_dtype.setdefault(str(array.dtype), [0, 0])
        entry[0] += array.size
        entry[1] += array.nbytes
    assert {k: [v["count"], v["bytes"]] for k, v in facts["parameters"]["by_dtype"].items()} \
        == by_dtype
    assert facts["header"]["producer"] == "handmade 1.2"
    assert [i["shape"] for i in facts["inputs"]] == [["N", 4], ["N", 3]]
    assert facts["outputs"][1]["shape"] == [None]
    assert facts["metadata"] == {"class_labels": {"0": "cat", "1": "dog", "2": "emu"},
                                 "author": "tests"}
    assert sorted(facts["ops"]) == ["Add", "MatMul", "Reshape", "Softmax"]


def test_inspect_graph_listing(two_input_onnx, capsys):
    assert main(["inspect", str(two_input_onnx), "--graph"]) == 0
    out = capsys.readouterr().out
    assert "MatMul(%a, W)" in out and "return %probs, %flat" in out


def test_inspect_missing_and_corrupt_files(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.onnx")]) == 2
    assert f"model file not found: {tmp_path / 'nope.onnx'}" in capsys.readouterr().err
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(0).bytes(300))
    assert main(["inspect", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgefw: error:") and "junk.onnx" in err
