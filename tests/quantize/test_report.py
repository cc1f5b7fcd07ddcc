"""layer_report: per-layer SQNR / max error against float, worst first."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgefw
import quantize
from edgefw import models
from edgefw.errors import QuantizationError
from quantize.ptq import prepare
from tests.quantize.graphs import conv_net, mlp_graph, run

X = np.random.default_rng(0).normal(0, 1, (200, 8)).astype(np.float32)


def outlier_activation_mlp():
    """fc2's first unit is 1000x larger than the others (fc3 ignores it), so an int8 range
    wide enough for it crushes every other unit of fc2's output."""
    r = np.random.default_rng(1)
    w1, w2, w3 = r.normal(0, 0.5, (16, 8)), r.normal(0, 0.5, (16, 16)), r.normal(0, 0.5, (4, 16))
    w2[0] *= 1000.0
    w3[:, 0] = 0.0
    return mlp_graph([(w1, np.zeros(16)), (w2, np.zeros(16)), (w3, np.zeros(4))])


def test_rows_are_sorted_worst_first_and_match_a_direct_computation():
    g = outlier_activation_mlp()
    q = quantize.quantize_static(g, X)
    report = quantize.layer_report(g, q, X, batch_size=64)
    sqnrs = [row.sqnr_db for row in report.layers]
    assert sqnrs == sorted(sqnrs)
    assert [row.layer for row in report.layers][0] == "fc3"  # its input is crushed
    assert report.num_samples == 200
    prepared = prepare(g)
    for row in report.layers:
        ref = run(prepared, X, [row.output])[0]
        got = run(q, X, [row.output if row.output == "output" else
                         row.output + "_dequantized"])[0]
        err = got.astype(np.float64) - ref
        expected_sqnr = 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum(err**2))
        assert row.sqnr_db == pytest.approx(expected_sqnr, rel=1e-6)
        assert row.max_abs_error == pytest.approx(np.abs(err).max(), rel=1e-6)
        assert row.mean_abs_error == pytest.approx(np.abs(err).mean(), rel=1e-6)
        assert row.dtype == "int8"
    out = report.outputs[0]
    assert out.output == "output" and out.agreement is not None and out.agreement < 90


def test_report_names_layers_by_module_path_and_lists_float_layers():
    g = edgefw.trace(models.build("transformer"), np.zeros((2, 16, 32), np.float32))
    data = np.random.default_rng(2).normal(0, 1, (8, 16, 32)).astype(np.float32)
    q = quantize.quantize_static(g, data)
    report = quantize.layer_report(g, q, data)
    layers = {row.layer for row in report.layers}
    assert {"qkv", "proj", "fc1", "fc2"} <= layers
    assert "Softmax" in report.float_layers["softmax"]
    text = str(report)
    assert text.splitlines()[0].startswith("Quantization report for 'TransformerBlock' on 8")
    assert "SQNR dB" in text and "kept float:" in text and "fc2" in text
    md = report.to_markdown()
    assert "| # | layer | op | dtype | SQNR (dB) |" in md
    data_dict = json.loads(json.dumps(report.to_dict()))
    assert data_dict["layers"][0]["layer"] == report.layers[0].layer
    assert data_dict["settings"]["granularity"] == "per-channel"


def test_report_works_on_a_qdq_graph_without_metadata():
    g = conv_net()
    x = np.random.default_rng(3).random((32, 1, 8, 8)).astype(np.float32)
    q = quantize.quantize_static(g, x)
    with_info = quantize.layer_report(g, q, x)
    del q.metadata["quantization"]
    without = quantize.layer_report(g, q, x)
    assert {r.name for r in without.layers} >= {r.name for r in with_info.layers}
    assert without.outputs[0].sqnr_db == with_info.outputs[0].sqnr_db


def test_report_errors():
    g = conv_net()
    x = np.random.default_rng(3).random((8, 1, 8, 8)).astype(np.float32)
    with pytest.raises(QuantizationError, match="no quantized layer"):
        quantize.layer_report(g, g, x)
    q = quantize.quantize_static(g, x)
    with pytest.raises(QuantizationError, match="empty"):
        quantize.layer_report(g, q, [])
    with pytest.raises(QuantizationError, match="quant_graph must be"):
        quantize.layer_report(g, "q.onnx", x)
