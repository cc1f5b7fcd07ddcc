"""``edgefw run / inspect / bench`` on ``.tflite`` files, with ``bench --compare tflite``
running LiteRT's interpreter in the same process."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from edgefw.cli import main
from tests.runtime.tflite.tflite_builder import FIXTURES, litert

pytestmark = pytest.mark.skipif(not (FIXTURES / "mlp_int8.tflite").is_file(),
                                reason="no TFLite fixtures")


def test_inspect_shows_tflite_facts(capsys):
    assert main(["inspect", str(FIXTURES / "mlp_dynamic.tflite")]) == 0
    out = capsys.readouterr().out
    assert "tflite model" in out
    assert "TFLite schema version 3, 1 subgraph(s), 8 operators, signatures " \
           "['serving_default']" in out
    assert "FULLY_CONNECTED v12" in out and "producer: MLIR Converted." in out
    assert re.search(r"pixels\s+float32\[batch, 8, 8\]", out)
    assert re.search(r"edgefw.QDynamicGemm\s+2", out)
    assert "min_runtime_version: 2.17.0" in out


def test_inspect_json(capsys):
    assert main(["inspect", str(FIXTURES / "cnn_int8.tflite"), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["format"] == "tflite"
    assert facts["header"]["operator_codes"]["CONV_2D"] == [3]
    assert facts["inputs"] == [{"name": "image", "dtype": "int8",
                                "shape": ["batch", 12, 12, 3]}]
    assert facts["parameters"]["by_dtype"]["int8"]["count"] > 3000


def test_run_matches_litert(tmp_path, capsys):
    path = FIXTURES / "mlp_int8.tflite"
    x = np.random.default_rng(0).integers(-128, 128, (4, 8, 8)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--output-dir",
                 str(tmp_path / "out")]) == 0
    assert "output 'output_0': int8[4, 10]" in capsys.readouterr().out
    saved = np.load(tmp_path / "out" / "output_0.npy")
    np.testing.assert_array_equal(saved, litert(path, [x])[0])


def test_bench_compares_with_the_tflite_interpreter(capsys):
    assert main(["bench", str(FIXTURES / "cnn_float32.tflite"), "--runs", "5", "--warmup", "1",
                 "--threads", "1", "--batch", "2", "--compare", "tflite"]) == 0
    out = capsys.readouterr().out
    assert "batch 2, inputs image float32[2, 12, 12, 3]" in out
    assert "Interpreter (default resolver: XNNPACK delegate), num_threads=1" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split()[:1] in (["edgefw"], ["tflite"])}
    assert rows["edgefw"][1] == "5" and rows["tflite"][1] == "5"
    assert re.search(r"ratio edgefw/tflite: p50 [0-9.]+x", out)
    agree = float(re.search(r"max \|edgefw - tflite\| = (\S+)", out).group(1))
    assert agree < 1e-5


def test_bench_int8_file_with_tflite(capsys):
    assert main(["bench", str(FIXTURES / "cnn_int8.tflite"), "--runs", "3", "--warmup", "1",
                 "--compare", "tflite"]) == 0
    out = capsys.readouterr().out
    # XNNPACK's int8 kernels round with float arithmetic: at most one step from edgefw's
    # reference fixed-point results
    assert float(re.search(r"max \|edgefw - tflite\| = (\S+)", out).group(1)) <= 1


def test_bench_compare_tflite_needs_a_tflite_file(tmp_path, capsys):
    onnx_file = FIXTURES.parent / "onnx" / "mlp_ts17.onnx"
    assert main(["bench", str(onnx_file), "--runs", "2", "--compare", "tflite"]) == 2
    assert "--compare tflite runs tflite models" in capsys.readouterr().err
