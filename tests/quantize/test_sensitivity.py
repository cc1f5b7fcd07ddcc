"""sensitivity and auto_mixed_precision on small models with one layer made sensitive on
purpose."""

from __future__ import annotations

import json

import numpy as np
import pytest

import quantize
from edgefw.errors import QuantizationError
from runtime import InferenceSession
from tests.quantize.graphs import mlp_graph
from tests.quantize.test_report import outlier_activation_mlp

R = np.random.default_rng(0)
X = R.normal(0, 1, (300, 8)).astype(np.float32)
X[:, 0] = 0.0  # a feature that is always 0 (a dead pixel): fc1 may weigh it anything


def outlier_weight_mlp():
    """fc1 gives the dead feature a weight of 1000 in every row: each row's int8 scale
    becomes 1000/127 and its real weights round to 0 — harmless in float, fatal in int8."""
    r = np.random.default_rng(1)
    w1 = r.normal(0, 0.5, (16, 8))
    w1[:, 0] = 1000.0
    return mlp_graph([(w1, r.normal(0, 0.1, 16)), (r.normal(0, 0.5, (16, 16)), np.zeros(16)),
                      (r.normal(0, 0.5, (4, 16)), np.zeros(4))])


def predictions(graph, x=X) -> np.ndarray:
    return InferenceSession(graph).run(None, {"input": x})[0].argmax(1)


def accuracy_fn(labels):
    def accuracy(graph) -> float:
        return float(np.mean(predictions(graph) == labels))
    return accuracy


@pytest.mark.parametrize("metric", ["sqnr", "agreement"])
def test_the_outlier_layer_ranks_first(metric):
    g = outlier_weight_mlp()
    report = quantize.sensitivity(g, X, metric)
    assert [e.layer for e in report.entries][0] == "fc1"
    first, rest = report.entries[0], report.entries[1:]
    assert all(first.score < e.score for e in rest)
    if metric == "agreement":
        assert report.float_score == 100.0 and first.drop > 20
        assert all(e.drop < 5 for e in rest)
    else:
        assert first.drop is None and first.score < 10 and all(e.score > 25 for e in rest)
    text = str(report)
    assert "most sensitive first" in text and text.index("fc1") < text.index("fc2")
    assert json.loads(json.dumps(report.to_dict()))["entries"][0]["layer"] == "fc1"
    assert "| 1 | fc1 | Gemm |" in report.to_markdown()


def test_accuracy_metric_with_labels_and_with_labelled_batches():
    g = outlier_weight_mlp()
    labels = predictions(g)
    by_labels = quantize.sensitivity(g, X, "accuracy", labels=labels)
    assert by_labels.float_score == 100.0 and by_labels.entries[0].layer == "fc1"
    batches = [(X[i:i + 100], labels[i:i + 100]) for i in range(0, 300, 100)]
    by_batches = quantize.sensitivity(g, batches, "accuracy")
    assert [e.score for e in by_batches.entries] == [e.score for e in by_labels.entries]
    with pytest.raises(QuantizationError, match="needs labels"):
        quantize.sensitivity(g, X, "accuracy")


def test_callable_metric_gets_each_single_layer_graph():
    g = outlier_weight_mlp()
    seen = []

    def metric(graph) -> float:
        info = quantize.quantization_info(graph)
        quantized = [r["name"] for r in info["nodes"] if r["kind"] == "weighted"] if info else []
        seen.append(quantized)
        return accuracy_fn(predictions(g))(graph)

    report = quantize.sensitivity(g, X, metric, layers=["fc1", "fc3"])
    assert seen == [[], ["fc1"], ["fc3"]]  # the float graph, then each layer alone
    assert [e.layer for e in report.entries] == ["fc1", "fc3"]
    assert report.metric == "metric" and report.float_score == 1.0


def test_sensitivity_errors():
    g = outlier_weight_mlp()
    with pytest.raises(QuantizationError, match="unknown metric 'f1'"):
        quantize.sensitivity(g, X, "f1")
    with pytest.raises(QuantizationError, match="generator can be read only once"):
        quantize.sensitivity(g, (X[i:i + 50] for i in range(0, 300, 50)))
    with pytest.raises(QuantizationError, match="must return a finite number"):
        quantize.sensitivity(g, X, lambda graph: float("nan"))
    with pytest.raises(QuantizationError, match="no node or module named 'fc7'"):
        quantize.sensitivity(g, X, layers=["fc7"])


def test_mixed_precision_keeps_only_the_outlier_layer_in_float():
    g = outlier_weight_mlp()
    labels = predictions(g)
    result = quantize.auto_mixed_precision(g, X, accuracy_fn(labels), max_accuracy_drop=0.02)
    assert result.float_score == 1.0 and result.quantized_score < 0.8
    assert result.kept_layers == ["fc1"] and result.within_budget
    assert result.kept[0].drop > 0.2  # the reason: alone it costs that much
    assert [s.layer for s in result.sensitivities][0] == "fc1"
    assert result.trials[0] == (0, result.quantized_score) and result.trials[-1][0] == 1
    q = result.graph
    assert q.node("fc1").inputs[1].name == "fc1.weight"  # float weights
    assert q.node("fc2").inputs[1].producer.op_type == "DequantizeLinear"
    assert accuracy_fn(labels)(q) == result.score >= 0.98
    info = quantize.quantization_info(q)
    assert info["mixed_precision"]["kept"] == ["fc1"]
    text = str(result)
    assert "kept 1 layer in float" in text and "fc1 (Gemm): quantized alone it costs" in text


def test_mixed_precision_16x8_fallback_fixes_an_activation_outlier_with_one_layer():
    g = outlier_activation_mlp()
    x = np.random.default_rng(2).normal(0, 1, (300, 8)).astype(np.float32)
    labels = InferenceSession(g).run(None, {"input": x})[0].argmax(1)

    def accuracy(graph) -> float:
        return float(np.mean(InferenceSession(graph).run(None, {"input": x})[0].argmax(1)
                             == labels))

    result = quantize.auto_mixed_precision(g, x, accuracy, max_accuracy_drop=0.02,
                                           fallback="16x8")
    assert result.quantized_score < 0.9 and result.within_budget
    assert len(result.kept) == 1 and result.kept_layers[0] in ("fc2", "fc3")
    # the tensor between fc2 and fc3 takes the wider dtype: int16
    assert result.graph.value("relu2_quantized").dtype == "int16"
    assert result.graph.value("fc2.weight.quantized").dtype == "int8"
    # in float instead, both layers that read or write the crushed tensor must go
    as_float = quantize.auto_mixed_precision(g, x, accuracy, max_accuracy_drop=0.02)
    assert sorted(as_float.kept_layers) == ["fc2", "fc3"] and as_float.within_budget


def test_mixed_precision_within_budget_keeps_everything_quantized():
    g = mlp_graph([(R.normal(0, 0.5, (16, 8)), np.zeros(16)), (R.normal(0, 0.5, (4, 16)),
                                                               np.zeros(4))])
    labels = predictions(g)
    result = quantize.auto_mixed_precision(g, X, accuracy_fn(labels), max_accuracy_drop=0.05)
    assert result.kept == [] and result.sensitivities == [] and result.within_budget
    assert "every layer quantized" in str(result)


@pytest.mark.parametrize("kwargs, message", [
    ({"fallback": "bfloat16"}, "fallback must be one of float, 16x8"),
    ({"max_accuracy_drop": -1}, "max_accuracy_drop"),
    ({"fallback": "16x8", "activation_dtype": "int16"}, "already int16"),
])
def test_mixed_precision_errors(kwargs, message):
    g = outlier_weight_mlp()
    with pytest.raises(QuantizationError, match=message):
        quantize.auto_mixed_precision(g, X, accuracy_fn(predictions(g)), **kwargs)
    with pytest.raises(QuantizationError, match="eval_fn must be a function"):
        quantize.auto_mixed_precision(g, X, "accuracy")
