"""The ONNX backend node tests, run through edgefw's ONNX backend.

Default run: every node test of the ops the tracer emits, one pytest case per ONNX test
case (excluded cases are strict xfails, so an exclusion that no longer fails is caught).
Slow run: every node test of every op the runtime claims.
"""

from __future__ import annotations

import pytest

from runtime.conformance import (
    claimed_ops,
    exclusion_reason,
    load_node_cases,
    run_node_case,
    run_node_suite,
)

#: The ops edgefw's tracer emits (and a few reductions beside ReduceMean/ReduceSum).
CORE_OPS = (
    "Gemm", "MatMul", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
    "BatchNormalization", "Relu", "Clip", "Sigmoid", "Tanh", "Gelu", "Erf", "Softmax",
    "LogSoftmax", "LayerNormalization", "Add", "Sub", "Mul", "Div", "Reshape", "Flatten",
    "Transpose", "Concat", "Pad", "Gather", "Slice", "Squeeze", "Unsqueeze",
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
)

_CORE_CASES = load_node_cases(CORE_OPS)


def _param(case):
    reason = exclusion_reason(case.name)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case.name, marks=marks)


def test_core_ops_are_claimed_and_have_tests():
    claimed = set(claimed_ops())
    assert set(CORE_OPS) <= claimed
    tested = {c.op_type for c in _CORE_CASES}
    assert tested == set(CORE_OPS), f"ops without node tests: {set(CORE_OPS) - tested}"
    assert len(_CORE_CASES) > 400


@pytest.mark.parametrize("case", [_param(c) for c in _CORE_CASES])
def test_core_node(case):
    run_node_case(case)


@pytest.mark.slow
def test_every_claimed_op_passes_its_node_tests():
    results = run_node_suite()
    failed = [f"{r.name}: {r.detail}" for r in results if r.status == "failed"]
    stale = [r.name for r in results if r.stale]
    assert not failed, "claimed ops fail node tests:\n" + "\n".join(failed)
    assert not stale, f"exclusions that pass now (remove them): {stale}"
    claimed = set(claimed_ops())
    assert {r.op_type for r in results if r.status == "passed"} <= claimed
