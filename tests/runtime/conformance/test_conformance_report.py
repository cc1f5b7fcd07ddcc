"""The conformance command: exclusion lookup, classification, the printed report, JSON."""

from __future__ import annotations

import json

import pytest

from runtime.conformance import (
    EXCLUSIONS,
    STATUSES,
    CaseResult,
    ConformanceReport,
    ModelResult,
    exclusion_reason,
    format_report,
    load_node_cases,
    main,
    run_node_suite,
)


def test_exclusions_are_names_or_patterns_with_reasons():
    assert EXCLUSIONS, "the table is empty"
    for pattern, reason in EXCLUSIONS.items():
        assert pattern.startswith("test_"), pattern
        assert isinstance(reason, str) and len(reason) > 15, pattern
    assert exclusion_reason("test_cast_FLOAT_to_BFLOAT16").startswith("bfloat16")
    assert exclusion_reason("test_maxpool_3d_default").startswith("3-D pooling")
    assert exclusion_reason("test_relu") is None
    assert exclusion_reason("test_reduce_sum_int64") is None  # "INT4"-style patterns are exact


def test_expanded_cases_belong_to_the_op_they_expand():
    cases = {c.name: c for c in load_node_cases(["Softmax", "Relu"])}
    assert cases["test_softmax_axis_0"].op_type == "Softmax"
    assert cases["test_softmax_axis_0_expanded"].op_type == "Softmax"
    assert cases["test_softmax_axis_0_expanded"].expanded
    assert cases["test_relu"].op_type == "Relu"
    assert {c.op_type for c in cases.values()} == {"Softmax", "Relu"}


def test_suite_classifies_claimed_excluded_and_unsupported_tests():
    results = {r.name: r for r in run_node_suite(["Relu", "MaxPool", "StringNormalizer"])}
    assert results["test_relu"].status == "passed"
    assert results["test_maxpool_3d_default"].status == "excluded"
    assert not results["test_maxpool_3d_default"].stale
    assert all(r.status == "not supported" for r in results.values()
               if r.op_type == "StringNormalizer")
    assert {r.status for r in results.values()} <= set(STATUSES)


def test_report_lists_counts_exclusions_failures_and_models():
    report = ConformanceReport(
        claimed=["Abs", "Relu"],
        cases=[CaseResult("test_relu", "Relu", "passed"),
               CaseResult("test_relu_x", "Relu", "failed", "AssertionError: mismatch"),
               CaseResult("test_abs_q", "Abs", "excluded", "no quaternions", stale=True),
               CaseResult("test_foo", "Foo", "not supported")],
        models=[ModelResult("tinynet", "passed", shipped_error=0.0, onnxruntime_error=1e-7,
                            seconds=0.5)])
    text = format_report(report)
    assert "Claimed ops (2): Abs, Relu" in text
    assert "Relu" in text and "not a valid claim" in text
    assert "test_relu_x: AssertionError: mismatch" in text
    assert "test_abs_q: no quaternions  [STALE: passes now]" in text
    assert "passed             1   25.0%" in text
    assert "not supported      1   25.0%" in text
    assert "Ops not claimed (1): Foo" in text
    assert "tinynet" in text and "1/1 passed" in text
    assert report.totals() == {"passed": 1, "failed": 1, "excluded": 1, "not supported": 1}


def test_command_prints_the_report_and_writes_json(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["--ops", "Relu,Abs", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Claimed ops" in printed and "Node tests:" in printed
    assert "Light models" not in printed  # --ops runs node tests only
    data = json.loads(out.read_text())
    assert data["totals"]["failed"] == 0
    assert data["per_op"]["Relu"]["passed"] >= 1
    assert {c["op_type"] for c in data["cases"]} == {"Relu", "Abs"}
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("flag", ["--bogus"])
def test_command_rejects_unknown_flags(flag):
    with pytest.raises(SystemExit):
        main([flag])
