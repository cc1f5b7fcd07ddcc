"""The ONNX backend node tests, run through edgefw's ONNX backend.

Default run: every node test of the ops the tracer emits, one pytest case per ONNX test
case (excluded cases are strict xfails, so an exclusion that no longer fails is caught), and
one node test of every other claimed op (a smoke test of each kernel).
Slow run: every node test of every op the runtime claims.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from runtime.conformance import (
    claimed_ops,
    exclusion_reason,
    load_node_cases,
    run_node_case,
    run_node_suite,
)
from runtime.onnx_backend import EdgeFWBackend

#: The ops edgefw's tracer emits (and a few reductions beside ReduceMean/ReduceSum).
CORE_OPS = (
    "Gemm", "MatMul", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
    "BatchNormalization", "Relu", "Clip", "Sigmoid", "Tanh", "Gelu", "Erf", "Softmax",
    "LogSoftmax", "LayerNormalization", "Add", "Sub", "Mul", "Div", "Reshape", "Flatten",
    "Transpose", "Concat", "Pad", "Gather", "Slice", "Squeeze", "Unsqueeze",
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
)

_CLAIMED_CASES = load_node_cases(claimed_ops())
_CORE_CASES = [c for c in _CLAIMED_CASES if c.op_type in CORE_OPS]


def _first_case_per_op() -> list:
    """One runnable (not excluded, not function-expanded if avoidable) case per non-core op."""
    chosen: dict[str, object] = {}
    for case in sorted(_CLAIMED_CASES, key=lambda c: (c.expanded, c.name)):
        if case.op_type not in CORE_OPS and case.op_type not in chosen \
                and exclusion_reason(case.name) is None:
            chosen[case.op_type] = case
    return [chosen[op] for op in sorted(chosen)]


_SMOKE_CASES = _first_case_per_op()


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


def test_every_claimed_op_with_node_tests_gets_a_smoke_case():
    with_tests = {c.op_type for c in _CLAIMED_CASES}
    smoked = {c.op_type for c in _SMOKE_CASES}
    assert smoked | set(CORE_OPS) >= with_tests - {c.op_type for c in _CLAIMED_CASES
                                                   if exclusion_reason(c.name)}
    assert len(smoked) > 80


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.op_type}-{c.name}")
                                  for c in _SMOKE_CASES])
def test_one_node_test_per_claimed_op(case):
    run_node_case(case)
    # A kernel never writes into its inputs, and what it returns never aliases them (the
    # planner trusts a kernel registered as "fresh" to return new arrays).
    feed = [numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.array(x)
            for x in case.case.data_sets[0][0]]
    before = [x.copy() for x in feed]
    outputs = EdgeFWBackend.prepare(case.case.model).run(feed)
    for x, original in zip(feed, before, strict=True):
        np.testing.assert_array_equal(x, original)
        assert not any(np.shares_memory(x, y) for y in outputs)


@pytest.mark.slow
def test_every_claimed_op_passes_its_node_tests():
    results = run_node_suite()
    failed = [f"{r.name}: {r.detail}" for r in results if r.status == "failed"]
    stale = [r.name for r in results if r.stale]
    assert not failed, "claimed ops fail node tests:\n" + "\n".join(failed)
    assert not stale, f"exclusions that pass now (remove them): {stale}"
    claimed = set(claimed_ops())
    assert {r.op_type for r in results if r.status == "passed"} <= claimed
