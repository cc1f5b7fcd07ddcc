"""Check a model file against the golden data bundled in it, on every runtime present.

:func:`verify_model` runs the golden inputs on edgefw's CPU and GPU providers and on
onnxruntime (``.onnx``) or LiteRT's TFLite interpreter (``.tflite``), and compares each
output with the expected one recorded at export:

- max absolute error (integer outputs are dequantized first) against the tolerance stored
  with the record (:class:`exporter.golden.Tolerance`: float files ``1e-4 * max(1,
  max|expected|)``; quantized files a few output quantization steps, 3 by default);
- argmax agreement over the last axis (the predicted class), with the expected outputs
  and with the float model's reference outputs (for information: a quantized file may
  legitimately differ from float).

A runtime that is not installed or has no device is skipped with its reason; one that
cannot load or run the file, or exceeds the tolerance, fails the check.

    >>> report = verify_model("mlp_int8.tflite")   # doctest: +SKIP
    >>> report.passed, [r.runtime for r in report.results]  # doctest: +SKIP
    (True, ['edgefw cpu', 'edgefw gpu', 'TFLite interpreter'])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefw.errors import ConfigError, EdgeFWError, ModelFormatError


@dataclass
class OutputCheck:
    """One output on one runtime."""

    name: str
    max_error: float
    tolerance: float
    argmax_agree: int | None
    argmax_total: int | None
    reference_error: float | None = None
    reference_agree: int | None = None

    @property
    def passed(self) -> bool:
        return bool(self.max_error <= self.tolerance)


@dataclass
class RuntimeResult:
    """One runtime: its checks, or why it was skipped (``skipped``) or failed (``error``)."""

    runtime: str
    description: str = ""
    outputs: list[OutputCheck] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return self.skipped is not None or (self.error is None
                                            and all(o.passed for o in self.outputs))


@dataclass
class VerifyReport:
    """The outcome for one file: ``passed`` when every runtime that ran agreed."""

    path: Path
    format: str
    golden: Any
    results: list[RuntimeResult]

    @property
    def ran(self) -> list[RuntimeResult]:
        return [r for r in self.results if r.skipped is None]

    @property
    def passed(self) -> bool:
        return bool(self.ran) and all(r.passed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "passed": self.passed,
                "samples": len(self.golden.inputs[0]) if self.golden.inputs else 0,
                "tolerances": [t.to_dict() for t in self.golden.tolerances],
                "results": [{"runtime": r.runtime, "description": r.description,
                             "passed": r.passed, "error": r.error, "skipped": r.skipped,
                             "outputs": [o.__dict__ | {"passed": o.passed}
                                         for o in r.outputs]}
                            for r in self.results]}


def verify_model(path: str | os.PathLike, runtimes: Sequence[str] | None = None,
                 tolerance_steps: int | None = None, atol: float | None = None) -> VerifyReport:
    """Run ``path``'s golden data on every runtime (``runtimes`` narrows them, by name
    from :data:`edgefw.demo.runners.RUNTIMES`). ``tolerance_steps`` re-scales quantized
    tolerances to that many output steps; ``atol`` replaces every tolerance.
    ModelFormatError when the file carries no golden data."""
    from edgefw.demo.runners import load_graph, model_format, open_runners
    from exporter.golden import GOLDEN_KEY, make_tolerance, read_golden

    path = Path(path)
    fmt = model_format(path)
    graph = load_graph(path)
    golden = read_golden(graph.metadata)
    if golden is None:
        raise ModelFormatError(f"{path} carries no golden data (metadata {GOLDEN_KEY!r}); "
                               "files exported by `edgefw demo` or "
                               "edgefw.demo.artifacts.export_with_golden have it")
    _check_fits(golden, graph, path)
    targets = [_real(y, v) for y, v in zip(golden.targets, graph.outputs)]
    tolerances = list(golden.tolerances) or [
        make_tolerance("float", t) for t in targets]
    if tolerance_steps is not None:
        if tolerance_steps <= 0:
            raise ConfigError(f"--tolerance-steps must be positive, got {tolerance_steps}")
        tolerances = [make_tolerance(t.kind, y, t.step, tolerance_steps)
                      if t.kind == "quantized" else t for t, y in zip(tolerances, targets)]
    if atol is not None:
        if not atol >= 0:
            raise ConfigError(f"--atol must be >= 0, got {atol}")
        tolerances = [type(t)(t.kind, float(atol)) for t in tolerances]
    golden.tolerances = tolerances
    references = None if golden.reference is None else \
        [_real(y, v) for y, v in zip(golden.reference, graph.outputs)]
    # A GPU session logs its CPU fallbacks as a warning; the report states them instead.
    runtime_logger = logging.getLogger("edgefw.runtime")
    level = runtime_logger.level
    runtime_logger.setLevel(logging.ERROR)
    try:
        results = [_check_runtime(status, golden, graph, targets, references, tolerances)
                   for status in open_runners(path, runtimes, graph=graph)]
    finally:
        runtime_logger.setLevel(level)
    return VerifyReport(path, fmt, golden, results)


def _check_fits(golden: Any, graph: Any, path: Path) -> None:
    names = [v.name for v in graph.inputs]
    if len(golden.inputs) != len(names) or len(golden.output_names) != len(graph.outputs):
        raise ModelFormatError(f"{path}: golden data for {len(golden.inputs)} inputs / "
                               f"{len(golden.output_names)} outputs, but the model has "
                               f"{len(names)} / {len(graph.outputs)}")
    for x, value in zip(golden.inputs, graph.inputs):
        if str(x.dtype) != (value.dtype or str(x.dtype)):
            raise ModelFormatError(f"{path}: golden input {value.name!r} is {x.dtype}, the model "
                                   f"takes {value.dtype}")


def _real(y: np.ndarray, value: Any) -> np.ndarray:
    """Outputs in real units: integer outputs dequantized with the file's parameters."""
    y = np.asarray(y)
    if y.dtype.kind != "f" and value.quant is not None:
        return ((y.astype(np.float64) - np.asarray(value.quant.zero_point, np.float64))
                * np.asarray(value.quant.scale, np.float64))
    return y.astype(np.float64)


def _argmax_agree(a: np.ndarray, b: np.ndarray) -> tuple[int | None, int | None]:
    if a.ndim < 2 or a.shape[-1] < 2 or a.shape != b.shape:
        return None, None
    same = a.argmax(axis=-1) == b.argmax(axis=-1)
    return int(same.sum()), int(same.size)


def _check_runtime(status: Any, golden: Any, graph: Any, targets: list[np.ndarray],
                   references: list[np.ndarray] | None, tolerances: list[Any]) -> RuntimeResult:
    result = RuntimeResult(status.name, status.reason if status.available else "")
    if not status.available:
        if status.refused:
            result.error = status.reason
        else:
            result.skipped = status.reason
        return result
    try:
        outputs = status.runner.run(golden.inputs)
    except Exception as exc:  # noqa: BLE001 - any runtime's failure is a failed check
        kind = "" if isinstance(exc, EdgeFWError) else f"{type(exc).__name__}: "
        result.error = f"failed to run the golden inputs: {kind}{str(exc)[:300]}"
        return result
    for i, (y, value) in enumerate(zip(outputs, graph.outputs)):
        got = _real(y, value)
        target = targets[i]
        if got.shape != target.shape:
            result.error = (f"output {value.name!r} has shape {list(got.shape)}, expected "
                            f"{list(target.shape)}")
            return result
        agree, total = _argmax_agree(got, target)
        check = OutputCheck(golden.output_names[i], float(np.max(np.abs(got - target)))
                            if got.size else 0.0, tolerances[i].atol, agree, total)
        if references is not None and references[i].shape == got.shape:
            check.reference_error = float(np.max(np.abs(got - references[i]))) \
                if got.size else 0.0
            check.reference_agree, _ = _argmax_agree(got, references[i])
        result.outputs.append(check)
    return result


def format_report(report: VerifyReport) -> str:
    """The table ``edgefw verify`` prints."""
    golden = report.golden
    inputs = ", ".join(f"{name} {x.dtype}{list(x.shape)}"
                       for name, x in zip(golden.input_names, golden.inputs))
    lines = [f"{report.path}: {len(golden.inputs[0])} golden samples ({inputs}), recorded by "
             f"{golden.producer or 'an unknown producer'}"]
    for name, tol in zip(golden.output_names, golden.tolerances):
        lines.append(f"tolerance for {name!r}: max |error| <= {tol.describe()} ({tol.kind})")
    header = ("runtime", "output", "max |error|", "tolerance", "argmax", "vs float ref",
              "result")
    rows = []
    for r in report.results:
        if r.skipped is not None:
            rows.append((r.runtime, "-", "-", "-", "-", "-", "skipped"))
            continue
        if r.error is not None and not r.outputs:
            rows.append((r.runtime, "-", "-", "-", "-", "-", "FAILED"))
            continue
        for o in r.outputs:
            argmax = "-" if o.argmax_total is None else f"{o.argmax_agree}/{o.argmax_total}"
            ref = "-" if o.reference_error is None else (
                f"{o.reference_error:.2g}" + ("" if o.reference_agree is None or
                                               o.argmax_total is None
                                               else f", {o.reference_agree}/{o.argmax_total}"))
            rows.append((r.runtime, o.name, f"{o.max_error:.3g}", f"{o.tolerance:.3g}", argmax,
                         ref, "ok" if o.passed else "MISMATCH"))
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines.append("")
    for row in (header, *rows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    notes = [f"{r.runtime}: {r.skipped}" for r in report.results if r.skipped is not None]
    notes += [f"{r.runtime}: {r.error}" for r in report.results if r.error is not None]
    notes += [f"{r.runtime}: {r.description}" for r in report.results
              if r.skipped is None and r.error is None and r.description]
    if notes:
        lines.append("")
        lines += notes
    lines.append("")
    if report.passed:
        lines.append(f"OK: {len(report.ran)} runtime(s) reproduce the expected outputs within "
                     "tolerance")
    elif not report.ran:
        lines.append("FAILED: no runtime could run the file")
    else:
        bad = [r.runtime for r in report.results if not r.passed]
        lines.append(f"FAILED: {', '.join(bad)} "
                     f"{'does' if len(bad) == 1 else 'do'} not reproduce the expected outputs")
    return "\n".join(lines)


__all__ = ["OutputCheck", "RuntimeResult", "VerifyReport", "format_report", "verify_model"]
