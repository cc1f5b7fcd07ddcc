"""Run the ONNX backend test suite on edgefw's runtime and print what passes.

    python -m runtime.conformance                  # node suite + light models, full report
    python -m runtime.conformance --ops Relu,Gemm  # just those ops' node tests
    python -m runtime.conformance --models         # just the light models
    python -m runtime.conformance --json out.json  # also write the results as JSON

Node tests come from the generators the onnx wheel ships
(``onnx.backend.test.case.node``): each test case is a model plus inputs and expected
outputs. A test belongs to the op its node tests; a function-expanded variant
(``test_softmax_axis_0_expanded``) belongs to the op it expands. The runtime *claims* the
op types of the CPU provider's kernel registry; every test of a claimed op must pass or be
listed in :data:`EXCLUSIONS` with the reason. Tests of ops not claimed count as "not
supported". Outputs are compared as onnx's own runner does (shape, dtype, then
``assert_allclose`` with the case's rtol/atol: 1e-3 / 1e-7 by default).

The light models (``onnx/backend/test/data/light``: ResNet-50, DenseNet-121, ...) run on
the inputs onnx's runner generates for them (``arange(n) / n``) against the outputs shipped
next to them, then with random weights and inputs against onnxruntime.

    >>> from runtime.conformance import run_node_suite
    >>> {r.status for r in run_node_suite(["Relu"])}
    {'passed'}
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import os
import pkgutil
import re
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from runtime.onnx_backend import EdgeFWBackend

# --------------------------------------------------------------------------- exclusions
_BFLOAT16 = "bfloat16 tensors: the IR has no bfloat16 dtype"
_FLOAT8 = "float8 tensors (E4M3FN/E4M3FNUZ/E5M2/E5M2FNUZ/E8M0): the IR has no float8 dtypes"
_FLOAT4 = "float4 (E2M1) tensors: the IR has no 4-bit float dtype"
_INT4 = "int4/uint4 tensors: the IR has no 4-bit integer dtypes"
_INT2 = "int2/uint2 tensors: the IR has no 2-bit integer dtypes"
_STRING = "string tensors: the IR has numeric and bool dtypes only"
_NOT_TENSOR = "sequence/optional values: the IR has tensors only"
_TRAINING = "training mode: the runtime is inference-only (random Dropout masks, batch " \
    "statistics in BatchNormalization)"
_POOL_3D = "3-D pooling: the CPU pooling kernels cover 1-D and 2-D windows"
_AVGPOOL_DILATIONS = "AveragePool with dilations: not implemented by the CPU pooling kernel"
_LOOP = "the function-expanded body uses Loop: control flow (subgraphs) is not supported"
_SCAN = "the function-expanded body uses Scan: control flow (subgraphs) is not supported"
_IF = "the function-expanded body uses If: control flow (subgraphs) is not supported"
_BLOCKED = "blocked quantization (block_size): only per-tensor and per-axis are supported"

#: Node tests of claimed ops that are not expected to pass, each with the reason. Keys are
#: test names (as in onnx's suite, without the ``_cpu`` suffix) or fnmatch patterns.
EXCLUSIONS: dict[str, str] = {
    # Element types the IR does not have.
    "test_*BFLOAT16*": _BFLOAT16,
    "test_*bfloat16*": _BFLOAT16,
    "test_*_bf16*": _BFLOAT16,
    "test_*FLOAT8*": _FLOAT8,
    "test_*_e4m3fn*": _FLOAT8,
    "test_*_e5m2*": _FLOAT8,
    "test_cast*_e8m0_*": _FLOAT8,
    "test_*FLOAT4E2M1*": _FLOAT4,
    "test_*_float4e2m1*": _FLOAT4,
    "test_*INT4*": _INT4,
    "test_*_int4*": _INT4,
    "test_*_uint4*": _INT4,
    "test_*INT2_*": _INT2,
    "test_*_INT2*": _INT2,
    "test_*_UINT2*": _INT2,
    "test_*_int2": _INT2,
    "test_*_uint2": _INT2,
    "test_equal_string*": _STRING,
    "test_identity_opt": _NOT_TENSOR,
    "test_identity_sequence": _NOT_TENSOR,
    # Training-only behaviour.
    "test_training_dropout*": _TRAINING,
    "test_batchnorm_*_training_mode": _TRAINING,
    # Pooling features the CPU kernels lack.
    "test_averagepool_3d_*": _POOL_3D,
    "test_maxpool_3d_*": _POOL_3D,
    "test_averagepool_2d_dilations": _AVGPOOL_DILATIONS,
    "test_maxpool_with_argmax_2d_precomputed_strides":
        "MaxPool Indices with storage_order=1 (column-major): row-major indices only",
    # Quantization forms the IR does not express.
    "test_quantizelinear_blocked_*": _BLOCKED,
    "test_dequantizelinear_blocked": _BLOCKED,
    # Function-expanded tests whose bodies need ops outside the IR.
    "test_range_*_expanded": _LOOP,
    "test_linear_attention_*_expanded": _SCAN,
    "test_affine_grid_*_expanded": _IF,
    # Old operator forms the loader does not translate yet.
    "test_dft_*opset19": "DFT-17/19 (axis as an attribute): runtime.loaders has no rewrite to "
                         "DFT-20's axis input",
}

STATUSES = ("passed", "failed", "excluded", "not supported")
_NODE_PACKAGE = "onnx.backend.test.case.node"
_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


def exclusion_reason(test_name: str) -> str | None:
    """The reason ``test_name`` is excluded, or None."""
    reason = EXCLUSIONS.get(test_name)
    if reason is not None:
        return reason
    for pattern, why in EXCLUSIONS.items():
        if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(test_name, pattern):
            return why
    return None


def claimed_ops() -> list[str]:
    """The op types the runtime claims: those with a CPU kernel (default domain)."""
    from runtime.providers.cpu import supported_ops

    return supported_ops()


# --------------------------------------------------------------------------- node tests
@dataclass(frozen=True)
class NodeCase:
    """One node test: its name, the op (and domain) it tests, and onnx's TestCase."""

    name: str
    op_type: str
    domain: str
    case: object = field(repr=False, compare=False)

    @property
    def expanded(self) -> bool:
        return _EXPANDED.search(self.name) is not None


def _module_key(name: str) -> str:
    return name.lower().replace("_", "").removesuffix("op")


def _import_generators(op_types: Iterable[str] | None) -> None:
    """Import the generator modules (each import runs its test exports). With ``op_types``
    only the modules named after those ops are imported, which is much faster."""
    package = importlib.import_module(_NODE_PACKAGE)
    if op_types is None:
        from onnx.backend.test.case.utils import import_recursive

        import_recursive(package)
        return
    modules = {_module_key(m.name): m.name for m in pkgutil.iter_modules(package.__path__)}
    wanted = [_module_key(op) for op in op_types]
    if not all(w in modules for w in wanted):  # an op without its own module: take them all
        _import_generators(None)
        return
    for key in wanted:
        importlib.import_module(f"{_NODE_PACKAGE}.{modules[key]}")


def load_node_cases(op_types: Iterable[str] | None = None) -> list[NodeCase]:
    """The node tests (all, or those of ``op_types``), sorted by name."""
    wanted = None if op_types is None else set(op_types)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        _import_generators(wanted)
    generated = importlib.import_module(_NODE_PACKAGE)._NodeTestCases
    by_name = {c.name: c for c in generated}
    # An expanded test's op is the op of the test it expands (same name without suffix).
    direct = {name: (c.model.graph.node[0].op_type, c.model.graph.node[0].domain)
              for name, c in by_name.items() if not _EXPANDED.search(name)}
    cases = []
    for name, c in sorted(by_name.items()):
        op_type, domain = direct.get(_EXPANDED.sub("", name), ("?", ""))
        if wanted is None or op_type in wanted:
            cases.append(NodeCase(name, op_type, domain, c))
    return cases


def _normalize(value: object) -> object:
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return value


def run_node_case(case: NodeCase, optimization: str = "all") -> None:
    """Run one node test through the backend; AssertionError (or the runtime's error) when
    it does not match the expected outputs."""
    from onnx.backend.test.runner import Runner

    test = case.case
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        rep = EdgeFWBackend.prepare(test.model, optimization=optimization)
        for inputs, expected in test.data_sets:
            outputs = rep.run([_normalize(x) for x in inputs])
            Runner.assert_similar_outputs([_normalize(x) for x in expected], list(outputs),
                                          rtol=test.rtol, atol=test.atol)


@dataclass
class CaseResult:
    name: str
    op_type: str
    status: str  # one of STATUSES
    detail: str = ""  # failure message or exclusion reason
    stale: bool = False  # excluded, yet it passes


def _short_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def run_node_suite(op_types: Iterable[str] | None = None, *, run_excluded: bool = True,
                   optimization: str = "all") -> list[CaseResult]:
    """Run the node tests (of ``op_types``, or all) and classify each one.

    Excluded tests are still run when ``run_excluded`` so a stale exclusion (the test
    passes now) shows up in the report.
    """
    claimed = set(claimed_ops())
    results = []
    for case in load_node_cases(op_types):
        if case.domain not in ("", "ai.onnx") or case.op_type not in claimed:
            results.append(CaseResult(case.name, case.op_type, "not supported"))
            continue
        reason = exclusion_reason(case.name)
        if reason is not None and not run_excluded:
            results.append(CaseResult(case.name, case.op_type, "excluded", reason))
            continue
        try:
            run_node_case(case, optimization)
            error = None
        except Exception as exc:  # noqa: BLE001 - any failure is a failed test, recorded
            error = _short_error(exc)
        if reason is not None:
            results.append(CaseResult(case.name, case.op_type, "excluded", reason,
                                      stale=error is None))
        else:
            results.append(CaseResult(case.name, case.op_type,
                                      "passed" if error is None else "failed", error or ""))
    return results


# ------------------------------------------------------------------------ light models
@dataclass(frozen=True)
class LightModel:
    """A real-model test shipped in the onnx wheel (small weights, real architecture)."""

    name: str
    path: str
    expected_paths: tuple[str, ...]
    rtol: float
    atol: float


def _data_dir() -> str:
    import onnx.backend.test

    return os.path.join(os.path.dirname(onnx.backend.test.__file__), "data")


def light_models() -> list[LightModel]:
    """The light models in the onnx wheel, with the tolerances of their ``data.json``."""
    light = os.path.join(_data_dir(), "light")
    found = []
    for file in sorted(os.listdir(light)):
        if not (file.startswith("light_") and file.endswith(".onnx")):
            continue
        name = file[len("light_"):-len(".onnx")]
        rtol, atol = 1e-3, 1e-7
        info = os.path.join(_data_dir(), "real", f"test_{name}", "data.json")
        if os.path.exists(info):
            with open(info) as f:
                data = json.load(f)
            rtol, atol = data.get("rtol", rtol), data.get("atol", atol)
        prefix = os.path.join(light, file[:-len(".onnx")])
        expected = []
        while os.path.exists(f"{prefix}_output_{len(expected)}.pb"):
            expected.append(f"{prefix}_output_{len(expected)}.pb")
        found.append(LightModel(name, os.path.join(light, file), tuple(expected), rtol, atol))
    return found


@dataclass
class ModelResult:
    name: str
    status: str  # "passed" or "failed"
    detail: str = ""
    #: Max |ours - expected| on the shipped outputs, and against onnxruntime with random
    #: weights and inputs (None when that step did not get as far as comparing).
    shipped_error: float | None = None
    onnxruntime_error: float | None = None
    seconds: float = 0.0


def light_model_inputs(model: onnx.ModelProto) -> list[np.ndarray]:
    """The inputs onnx's runner feeds a light model: ``arange(n) / n`` in each input shape."""
    from onnx.backend.test.runner import Runner

    initializers = {t.name for t in model.graph.initializer}
    return [Runner.generate_dummy_data(x, random=False) for x in model.graph.input
            if x.name not in initializers]


def randomized_weights(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """A copy of a light model whose ConstantOfShape weights are random arrays instead.

    The shipped light models fill every weight with one constant, so their softmax output is
    uniform (0.001 everywhere) whatever a runtime computes; random weights (scaled by
    1/sqrt(fan-in); BatchNorm scales and variances in [0.5, 1.5]) make the output depend on
    every layer, which is what the onnxruntime comparison checks.
    """
    rng = np.random.default_rng(seed)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    shapes = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    positive = set()
    for node in m.graph.node:
        if node.op_type == "BatchNormalization":
            positive.update([node.input[1], node.input[4]])
    kept, weights, replaced = [], [], set()
    for node in m.graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in shapes:
            kept.append(node)
            continue
        shape = tuple(int(d) for d in shapes[node.input[0]])
        replaced.add(node.input[0])
        if node.output[0] in positive:
            array = rng.uniform(0.5, 1.5, shape)
        elif len(shape) >= 2:
            array = rng.standard_normal(shape) / np.sqrt(max(1, int(np.prod(shape[1:]))))
        else:
            array = rng.standard_normal(shape) * 0.1
        weights.append(numpy_helper.from_array(array.astype(np.float32), node.output[0]))
    del m.graph.node[:]
    m.graph.node.extend(kept)
    initializers = [t for t in m.graph.initializer if t.name not in replaced] + weights
    del m.graph.initializer[:]
    m.graph.initializer.extend(initializers)
    inputs = [i for i in m.graph.input if i.name not in replaced]
    del m.graph.input[:]
    m.graph.input.extend(inputs)
    return m


def _max_error(outputs: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> float | None:
    pairs = [(o, e) for o, e in zip(outputs, expected) if o.shape == e.shape and o.size]
    if not pairs:
        return None
    return max(float(np.max(np.abs(o.astype(np.float64) - e))) for o, e in pairs)


def run_light_model(light: LightModel, optimization: str = "all") -> ModelResult:
    """Run one light model two ways: on onnx's runner inputs against the shipped outputs
    (exactly onnx's test), and with random weights and inputs against onnxruntime."""
    import onnxruntime as ort
    from onnx.backend.test.runner import Runner

    start = time.perf_counter()
    result = ModelResult(light.name, "failed")
    try:
        model = onnx.load(light.path)
        expected = []
        for path in light.expected_paths:
            tensor = onnx.TensorProto()
            with open(path, "rb") as f:
                tensor.ParseFromString(f.read())
            expected.append(numpy_helper.to_array(tensor))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            outputs = list(EdgeFWBackend.prepare(model, optimization=optimization)
                           .run(light_model_inputs(model)))
            result.shipped_error = _max_error(outputs, expected)
            Runner.assert_similar_outputs(expected, outputs, rtol=light.rtol, atol=light.atol)

            random_model = randomized_weights(model)
            rng = np.random.default_rng(1)
            feed = [rng.standard_normal(x.shape).astype(x.dtype)
                    for x in light_model_inputs(random_model)]
            ours = list(EdgeFWBackend.prepare(random_model, optimization=optimization)
                        .run(feed))
            options = ort.SessionOptions()
            options.log_severity_level = 3
            session = ort.InferenceSession(random_model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
            theirs = session.run(None, dict(zip([i.name for i in session.get_inputs()], feed)))
            result.onnxruntime_error = _max_error(ours, theirs)
            for mine, ref in zip(ours, theirs, strict=True):
                np.testing.assert_allclose(mine, ref, rtol=light.rtol, atol=1e-6,
                                           err_msg="vs onnxruntime (random weights)")
        result.status = "passed"
    except Exception as exc:  # noqa: BLE001 - recorded as a failed model
        result.detail = _short_error(exc)
    result.seconds = time.perf_counter() - start
    return result


# ------------------------------------------------------------------------------ report
@dataclass
class ConformanceReport:
    claimed: list[str]
    cases: list[CaseResult]
    models: list[ModelResult]

    def totals(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for r in self.cases:
            counts[r.status] += 1
        return counts

    def per_op(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for r in self.cases:
            table.setdefault(r.op_type, dict.fromkeys(STATUSES, 0))[r.status] += 1
        return table

    def to_json(self) -> dict:
        return {"claimed_ops": self.claimed, "totals": self.totals(), "per_op": self.per_op(),
                "cases": [asdict(r) for r in self.cases],
                "models": [asdict(m) for m in self.models]}


def format_report(report: ConformanceReport) -> str:
    """The text report: claimed ops, per-op counts with exclusions, totals, light models."""
    lines = []
    if report.cases:
        per_op = report.per_op()
        claimed = set(report.claimed)
        lines.append(f"Claimed ops ({len(report.claimed)}): {', '.join(report.claimed)}")
        lines.append("")
        lines.append(f"{'op':<28}{'passed':>8}{'failed':>8}{'excluded':>10}")
        for op in sorted(o for o in per_op if o in claimed):
            c = per_op[op]
            flag = "   <-- failing tests: not a valid claim" if c["failed"] else ""
            lines.append(f"{op:<28}{c['passed']:>8}{c['failed']:>8}{c['excluded']:>10}{flag}")
        no_tests = sorted(claimed - set(per_op))
        if no_tests and len(per_op) > len(claimed) // 2:
            lines.append(f"(claimed ops without node tests in this onnx: {', '.join(no_tests)})")
        failed = [r for r in report.cases if r.status == "failed"]
        if failed:
            lines += ["", f"Failed ({len(failed)}):"]
            lines += [f"  {r.name}: {r.detail}" for r in failed]
        excluded = [r for r in report.cases if r.status == "excluded"]
        if excluded:
            lines += ["", f"Excluded ({len(excluded)}):"]
            for r in excluded:
                stale = "  [STALE: passes now]" if r.stale else ""
                lines.append(f"  {r.name}: {r.detail}{stale}")
        totals = report.totals()
        total = len(report.cases)
        lines += ["", f"Node tests: {total}"]
        for status in STATUSES:
            share = 100.0 * totals[status] / total
            lines.append(f"  {status:<14}{totals[status]:>6}  {share:5.1f}%")
        unsupported = sorted({r.op_type for r in report.cases if r.status == "not supported"})
        if unsupported:
            lines.append(f"Ops not claimed ({len(unsupported)}): {', '.join(unsupported)}")
    if report.models:
        lines += ["", "Light models (shipped outputs, as onnx's runner; then random weights and "
                      "inputs vs onnxruntime):"]
        for m in report.models:
            errors = "".join(
                f"  {label} {value:.1e}" if value is not None else f"  {label} -"
                for label, value in (("|err| shipped", m.shipped_error),
                                     ("vs onnxruntime", m.onnxruntime_error)))
            detail = f"  {m.detail}" if m.detail else ""
            lines.append(f"  {m.name:<14}{m.status:<8}{m.seconds:6.2f} s{errors}{detail}")
        passed = sum(m.status == "passed" for m in report.models)
        lines.append(f"  {passed}/{len(report.models)} passed")
    return "\n".join(lines)


def run_conformance(op_types: Sequence[str] | None = None, *, node_tests: bool = True,
                    models: bool = True, optimization: str = "all") -> ConformanceReport:
    cases = run_node_suite(op_types, optimization=optimization) if node_tests else []
    model_results = [run_light_model(m, optimization) for m in light_models()] if models else []
    return ConformanceReport(claimed_ops(), cases, model_results)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.conformance",
                                     description="Run the ONNX backend tests on edgefw's "
                                                 "runtime and print the report.")
    parser.add_argument("--ops", help="comma-separated op types: run only their node tests")
    parser.add_argument("--models", action="store_true", help="run only the light models")
    parser.add_argument("--no-models", action="store_true", help="skip the light models")
    parser.add_argument("--optimization", default="all", choices=("none", "basic", "all"))
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()] if args.ops else None
    report = run_conformance(ops, node_tests=not args.models,
                             models=args.models or (ops is None and not args.no_models),
                             optimization=args.optimization)
    print(format_report(report))
    if args.json:
        tmp = f"{args.json}.tmp"
        with open(tmp, "w") as f:
            json.dump(report.to_json(), f, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
