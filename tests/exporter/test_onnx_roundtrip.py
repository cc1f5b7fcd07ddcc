"""Every ONNX backend node test of an op the runtime claims, as a round trip through the
exporter: read the test model with ``runtime.load_onnx``, write it back with
``exporter.to_onnx(..., optimize="none")`` at the model's opset clamped into the exporter's
13..21, run the written file and compare with the test's expected outputs as onnx's own
runner does (shape, dtype, then the case's rtol/atol: 1e-3/1e-7 by default).

onnxruntime runs the written file. Where it fails, and also fails the test's original model
(a kernel it lacks: Max on int16, batch-first RNNs; or its own deviation: DFT's rounding,
Resize's downsampling with align_corners), ``onnx.reference.ReferenceEvaluator`` judges
instead; where it passes the original, the export broke the model and the test fails.

The cases are :func:`runtime.conformance.load_node_cases` of the claimed ops. A case is
skipped, with its reason:

- when :data:`EXCLUSIONS` lists it (the conformance table, plus what only the round trip
  cannot pass);
- when its model uses an op in a form ONNX defines only after opset 21 (Attention-23,
  BitShift-28 on signed integers, SpaceToDepth-28's CRD mode...) and ``to_onnx`` refuses it
  with an ExportError naming the node. Writing an equivalent older form instead is fine
  too, and then the written file must pass.

Models older than opset 13 are read into the IR's (newest) form by the loader and written
at 13; they all pass, so they need no rule of their own.

Default run: two cases per op (:func:`default_cases`). ``-m slow``: every case.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable, Iterable, Sequence
from functools import cache

import numpy as np
import onnx
import pytest
from onnx import defs, numpy_helper
from onnx.backend.test.runner import Runner
from onnx.reference import ReferenceEvaluator

import exporter
import runtime
from edgefw.errors import ExportError
from edgefw.ir import Graph
from exporter.onnx import SUPPORTED_OPSETS
from runtime import conformance
from runtime.conformance import NodeCase, claimed_ops, load_node_cases
from tests.exporter.onnx_checks import OPSETS, ort_session, run_onnxruntime

MIN_OPSET, MAX_OPSET = SUPPORTED_OPSETS.start, SUPPORTED_OPSETS.stop - 1
#: Cases per op in the default run (the slow run takes them all).
DEFAULT_CASES_PER_OP = 2

_NO_RANK_REDUCE = ("a Reduce with keepdims=0 and axes fed at run time: the IR infers no output "
                   "rank (it could: the input's rank minus the static length of axes), nor "
                   "does ONNX's shape inference")
_NO_RANK_RESHAPE = ("function-expanded LayerNormalization with a negative axis: Mean and "
                    "InvStdDev are Reshapes to a shape computed at run time whose rank neither "
                    "the IR nor ONNX's shape inference (with data propagation) infers")

#: Node tests the round trip does not run, each with the reason: the conformance table
#: (tests the runtime cannot load or run) and the tests only the round trip cannot pass.
#: Keys are test names or fnmatch patterns.
EXCLUSIONS: dict[str, str] = {
    **conformance.EXCLUSIONS,
    # Outputs whose rank the IR does not infer: ONNX requires every graph output to declare
    # a shape, so the exporter refuses them (ExportError naming the output).
    "test_reduce_*_do_not_keepdims_*": _NO_RANK_REDUCE,
    "test_reduce_log_sum_asc_axes*": _NO_RANK_REDUCE,
    "test_reduce_log_sum_desc_axes*": _NO_RANK_REDUCE,
    "test_layer_normalization_*_axis_negative_*_expanded*": _NO_RANK_RESHAPE,
    "test_layer_normalization_default_axis_expanded*": _NO_RANK_RESHAPE,
}


def _lookup(table: dict[str, str], name: str) -> str | None:
    if name in table:
        return table[name]
    return next((why for pattern, why in table.items()
                 if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(name, pattern)),
                None)


def exclusion_reason(case: NodeCase) -> str | None:
    return _lookup(EXCLUSIONS, case.name)


# ------------------------------------------------------------------------- opsets
def model_opset(model: onnx.ModelProto) -> int:
    return max(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def export_opset(model: onnx.ModelProto) -> int:
    """The test model's opset, clamped into what the exporter writes."""
    return min(max(model_opset(model), MIN_OPSET), MAX_OPSET)


def _since(op_type: str, opset: int) -> int | None:
    try:
        return defs.get_schema(op_type, opset).since_version
    except defs.SchemaError:
        return None


def forms_newer_than_exporter(model: onnx.ModelProto) -> list[str]:
    """``Op-N`` for each op of the model whose form at the model's opset is newer than the
    newest opset the exporter writes (the op, or its form, does not exist there)."""
    opset = model_opset(model)
    return sorted({f"{n.op_type}-{_since(n.op_type, opset)}" for n in model.graph.node
                   if (_since(n.op_type, opset) or 0) > MAX_OPSET})


def _fits_opset(model: onnx.ModelProto, opset: int) -> bool:
    """Whether ONNX's schemas at ``opset`` hold every node of ``model`` as it is written:
    the op exists, knows the node's attributes and accepts its declared input types."""
    graph = model.graph
    types = {t.name: t.data_type for t in graph.initializer}
    types.update({v.name: v.type.tensor_type.elem_type
                  for v in [*graph.input, *graph.output, *graph.value_info]})
    for node in graph.node:
        try:
            schema = defs.get_schema(node.op_type, opset)
        except defs.SchemaError:
            return False
        if any(a.name not in schema.attributes for a in node.attribute):
            return False
        allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
        formals = list(schema.inputs)
        formals += formals[-1:] * max(0, len(node.input) - len(formals))
        for formal, name in zip(formals, node.input):
            if types.get(name):
                type_str = f"tensor({onnx.TensorProto.DataType.Name(types[name]).lower()})"
                if type_str not in allowed.get(formal.type_str, {formal.type_str}):
                    return False
    return True


# ------------------------------------------------------------------------- the cases
@cache
def claimed_cases() -> tuple[NodeCase, ...]:
    """The node tests of the ops the runtime claims (default ONNX domain), by name."""
    return tuple(c for c in load_node_cases(claimed_ops()) if c.domain in ("", "ai.onnx"))


def default_cases(cases: Iterable[NodeCase] = ()) -> list[NodeCase]:
    """Per op, the first :data:`DEFAULT_CASES_PER_OP` cases not excluded: direct tests before
    function-expanded ones, models that opset 21 can hold as written before the others (a
    fast sample of every op that round-trips where it can)."""
    chosen: dict[str, list[NodeCase]] = {}
    ordered = sorted(cases or claimed_cases(), key=lambda c: (
        c.expanded, not _fits_opset(c.case.model, MAX_OPSET), c.name))
    for case in ordered:
        picked = chosen.setdefault(case.op_type, [])
        if len(picked) < DEFAULT_CASES_PER_OP and exclusion_reason(case) is None:
            picked.append(case)
    return [c for op in sorted(chosen) for c in chosen[op]]


def round_trip_ops(cases: Iterable[NodeCase] = ()) -> set[str]:
    """The op types with at least one direct (not function-expanded, so the op is in the
    model) node test that the round trip runs: what ``test_every_ir_op_has_a_case`` counts
    as covered besides its own table. For an op ONNX defines only after opset 21 that test
    asserts the exporter's refusal instead of a round trip."""
    return {c.op_type for c in cases or claimed_cases()
            if not c.expanded and exclusion_reason(c) is None}


# ------------------------------------------------------------------------- running
def _array(x: object) -> np.ndarray:
    # The generators store some inputs as numpy scalars, which onnxruntime does not take.
    return numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.asarray(x)


def _feeds(model: onnx.ModelProto, written: onnx.ModelProto,
           inputs: Sequence[object]) -> dict[str, np.ndarray]:
    """The test's inputs by name, limited to those the written file still takes (an input
    the loader turned into a constant is not fed)."""
    weights = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in weights]
    taken = {i.name for i in written.graph.input}
    return {n: _array(x) for n, x in zip(names, inputs, strict=True) if n in taken}


def _check_outputs(case: NodeCase, model: onnx.ModelProto,
                   run: Callable[[dict[str, np.ndarray]], list]) -> None:
    """Run ``model`` (the test's or the written one) on every data set of ``case``."""
    test = case.case
    for inputs, expected in test.data_sets:
        with np.errstate(all="ignore"):
            outputs = run(_feeds(test.model, model, inputs))
        Runner.assert_similar_outputs([_array(x) for x in expected], list(outputs),
                                      rtol=test.rtol, atol=test.atol)


def _in_onnxruntime(model: onnx.ModelProto) -> Callable[[dict[str, np.ndarray]], list]:
    session = ort_session(model, optimized=False)
    return lambda feed: session.run(None, feed)


@cache
def onnxruntime_passes_original(case: NodeCase) -> bool:
    """Whether onnxruntime reproduces the expected outputs from the test's own model (it
    lacks some kernels: Max on int16, batch-first RNNs...; and deviates on a few tests)."""
    try:
        _check_outputs(case, case.case.model, _in_onnxruntime(case.case.model))
    except Exception:  # noqa: BLE001 - any failure: onnxruntime cannot judge this test
        return False
    return True


def run_written(case: NodeCase, written: onnx.ModelProto) -> str:
    """Run the written file on every data set of ``case`` and compare; returns the judge.

    onnxruntime judges. Where it fails the written file and also fails the test's original
    model, the failure is onnxruntime's, and ``onnx.reference.ReferenceEvaluator`` judges;
    where it passes the original, the export broke the model and the failure stands.
    """
    try:
        _check_outputs(case, written, _in_onnxruntime(written))
        return "onnxruntime"
    except Exception:
        if onnxruntime_passes_original(case):
            raise
    evaluator = ReferenceEvaluator(written)
    _check_outputs(case, written, lambda feed: evaluator.run(None, feed))
    return "onnx.reference"


def check_round_trip(case: NodeCase) -> None:
    """Load, export, run and compare ``case`` (skips with the reason when it cannot be)."""
    reason = exclusion_reason(case)
    if reason is not None:
        pytest.skip(reason)
    model = case.case.model
    opset = export_opset(model)
    newer = forms_newer_than_exporter(model)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        graph = runtime.load_onnx(model)
        try:
            written = exporter.to_onnx(graph, opset=opset, optimize="none")
        except ExportError as exc:
            if not newer:
                raise
            message = str(exc)
            assert "cannot export node '" in message and f"opset {opset}" in message, message
            pytest.skip(f"needs {', '.join(newer)} (the exporter writes opsets up to "
                        f"{MAX_OPSET}): {message}")
    assert model_opset(written) == opset
    run_written(case, written)


def _param(case: NodeCase):
    return pytest.param(case, id=case.name)


@pytest.mark.parametrize("case", [_param(c) for c in default_cases()])
def test_round_trip(case: NodeCase) -> None:
    check_round_trip(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", [_param(c) for c in claimed_cases()])
def test_round_trip_all(case: NodeCase) -> None:
    check_round_trip(case)


@pytest.mark.slow
def test_round_trip_exclusions_are_not_stale() -> None:
    """The exclusions only the round trip has must still fail (else: remove them)."""
    own = {k: v for k, v in EXCLUSIONS.items() if k not in conformance.EXCLUSIONS}
    stale = []
    for case in claimed_cases():
        if _lookup(own, case.name) is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                written = exporter.to_onnx(runtime.load_onnx(case.case.model),
                                           opset=export_opset(case.case.model), optimize="none")
            run_written(case, written)
        except Exception:  # noqa: BLE001 - failing is what an exclusion claims
            continue
        stale.append(case.name)
    assert not stale, f"excluded round trips that pass now: {stale}"


# ------------------------------------------------------------ the exporter's fixes
MODULE = "block.op"


def _one_node(op_type: str, inputs: dict[str, np.ndarray], constants: dict[str, np.ndarray],
              attrs: dict) -> Graph:
    graph = Graph(op_type)
    values = [graph.add_input(name, x.dtype.name, x.shape) for name, x in inputs.items()]
    values += [graph.add_constant(name, x) for name, x in constants.items()]
    node = graph.add_node(op_type, values, attrs, module_path=MODULE)
    graph.set_outputs(node.outputs)
    return graph


def _refusal(graph: Graph, opset: int) -> str:
    with pytest.raises(ExportError) as err:
        exporter.to_onnx(graph, opset=opset, optimize="none")
    message = str(err.value)
    assert f"node '{graph.nodes[0].name}'" in message and f"module '{MODULE}'" in message
    return message


@pytest.mark.parametrize("opset", OPSETS)
def test_scatter_is_written_as_scatter_elements(opset: int) -> None:
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    indices = np.array([[2, 0], [1, 3]], np.int64)
    updates = np.array([[-1.0, -2.0], [-3.0, -4.0]], np.float32)
    graph = _one_node("Scatter", {"data": data}, {"indices": indices, "updates": updates},
                      {"axis": 1})
    model = exporter.to_onnx(graph, opset=opset, optimize="none")
    assert [n.op_type for n in model.graph.node] == ["ScatterElements"]
    want = data.copy()
    want[0, 2], want[0, 0], want[1, 1], want[1, 3] = -1.0, -2.0, -3.0, -4.0
    np.testing.assert_array_equal(run_onnxruntime(model, {"data": data})[0], want)


def test_space_to_depth_dcr_mode_is_the_only_mode_before_opset_28() -> None:
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    dcr = _one_node("SpaceToDepth", {"x": x}, {}, {"blocksize": 2, "mode": "DCR"})
    model = exporter.to_onnx(dcr, opset=21, optimize="none")
    assert not model.graph.node[0].attribute[1:]  # blocksize only
    got = run_onnxruntime(model, {"x": x})[0]
    # Block (i, j) of the 2x2 grid goes to channel 2 * i + j.
    np.testing.assert_array_equal(got[0, :, 0, 0], [0, 1, 4, 5])
    crd = _one_node("SpaceToDepth", {"x": x}, {}, {"blocksize": 2, "mode": "CRD"})
    assert "mode 'CRD' exists from opset 28 on" in _refusal(crd, 21)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_floor_mod_of_floats_is_refused_before_opset_28(dtype) -> None:
    a, b = np.array([-4.0, 7.0], dtype), np.array([3.0, -2.0], dtype)
    graph = _one_node("Mod", {"a": a, "b": b}, {}, {"fmod": 0})
    assert "fmod=0" in _refusal(graph, 21) and "opset 28" in _refusal(graph, 13)
    fmod = _one_node("Mod", {"a": a, "b": b}, {}, {"fmod": 1})
    model = exporter.to_onnx(fmod, opset=13, optimize="none")
    np.testing.assert_array_equal(run_onnxruntime(model, {"a": a, "b": b})[0],
                                  np.fmod(a, b))


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool", "LpPool"])
def test_ceil_mode_windows_starting_in_the_end_padding_need_opset_22(op_type: str) -> None:
    # Length 2, kernel 1, stride 2: ceil((2 - 1) / 2) + 1 = 2 windows before opset 22, but
    # the second starts past the input, so from 22 on (and in the IR) there is one.
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    attrs = {"kernel_shape": [1, 1], "strides": [2, 2], "ceil_mode": 1}
    graph = _one_node(op_type, {"x": x}, {}, attrs)
    assert graph.nodes[0].outputs[0].shape == (1, 1, 1, 1)
    assert "output size is 1 from opset 22 on" in _refusal(graph, 21)
    # Where both rules agree (length 3: windows at 0 and 2), the node is written.
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    graph = _one_node(op_type, {"x": x}, {}, attrs)
    model = exporter.to_onnx(graph, opset=21, optimize="none")
    np.testing.assert_allclose(run_onnxruntime(model, {"x": x})[0],
                               x[:, :, ::2, ::2] if op_type != "LpPool" else np.abs(
                                   x[:, :, ::2, ::2]))


def test_output_of_unknown_rank_takes_onnx_inference_or_is_refused() -> None:
    # Col2Im to an image shape fed at run time: the IR knows no rank; ONNX infers 4.
    cols = np.arange(25, dtype=np.float32).reshape(1, 1, 25)
    image_shape, block = np.array([5, 5], np.int64), np.array([1, 1], np.int64)
    graph = _one_node("Col2Im", {"cols": cols, "image_shape": image_shape},
                      {"block": block}, {})
    assert graph.outputs[0].shape is None
    model = exporter.to_onnx(graph, opset=18, optimize="none")
    assert len(model.graph.output[0].type.tensor_type.shape.dim) == 4
    got = run_onnxruntime(model, {"cols": cols, "image_shape": image_shape})[0]
    np.testing.assert_array_equal(got, cols.reshape(1, 1, 5, 5))
    # ReduceSum with keepdims=0 over axes fed at run time: no one knows the rank.
    x, axes = np.ones((2, 3), np.float32), np.array([1], np.int64)
    graph = _one_node("ReduceSum", {"x": x, "axes": axes}, {}, {"keepdims": 0})
    with pytest.raises(ExportError, match=r"output '.*' \(from node '.*' \(ReduceSum\) in "
                                          r"module 'block.op'\) has an unknown rank"):
        exporter.to_onnx(graph, opset=18, optimize="none")
