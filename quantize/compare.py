"""The comparison users ask for: what each way of shipping a model costs, measured.

:func:`compare` builds every variant of a float model — float32, float16 weights, dynamic
int8, static int8 per tensor and per channel, automatic mixed precision and, given a QAT
model, its QDQ conversion — and measures each the same way:

- accuracy on labelled data, its delta against float in percentage points, and top-1
  agreement with the float model (the fraction of inputs whose predicted class is unchanged);
- the exported ONNX file (``exporter.to_onnx``) in bytes and as a ratio of the float file;
- latency on the runtime's CPU provider at batch 1 and at a large batch (p50 over runs that
  interleave the variants, so a change in machine load hits all of them alike);
- "ort agrees": onnxruntime runs the exported file and its output stays within one
  quantization step of our runtime executing the file's QDQ semantics (optimization
  "none": Q/DQ computed in float, as the ONNX spec defines them). The step is the output's
  when a DequantizeLinear produces it; one int8 step of the output's range for a float
  output computed from quantized tensors (dynamic int8, or a last layer that mixed
  precision kept float); float rounding (1e-4 of the range) for the float variants.
  The deployed path (integer kernels with TFLite's fixed-point requantization) is compared
  too: "ort Δ int kernels" is its largest difference from onnxruntime, in those steps —
  rounding differences of 1 LSB per layer can add up in deep networks.

The :class:`ComparisonReport` prints as a Markdown table and is written (atomically) as
``comparison.md`` and ``comparison.json`` into ``output_dir``, with the ONNX files under
``models/`` and, when matplotlib is installed (``pip install edgefw[plot]``), a chart
``comparison.png`` of accuracy against size and latency.

    >>> import numpy as np, edgefw, quantize
    >>> from edgefw import models
    >>> x = np.random.default_rng(0).random((64, 1, 28, 28), np.float32)
    >>> y = np.arange(64) % 10
    >>> report = quantize.compare(models.build("mlp"), (x, y), variants=("float32", "dynamic"),
    ...                           latency=False)
    >>> [row.variant for row in report.rows], report.row("dynamic").size_ratio < 0.3
    (['float32', 'dynamic'], True)
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefw.errors import EdgeFWError, QuantizationError
from edgefw.ir import Graph
from quantize.compare_report import ComparisonReport, VariantResult

#: Variant names in report order; "qat" joins when a QAT model is given.
VARIANTS = ("float32", "float16", "dynamic", "int8_per_tensor", "int8_per_channel", "mixed",
            "qat")
DEFAULT_VARIANTS = VARIANTS[:-1]
DESCRIPTIONS = {"float32": "float32", "float16": "float16 weights", "dynamic": "dynamic int8",
                "int8_per_tensor": "static int8 per-tensor",
                "int8_per_channel": "static int8 per-channel", "mixed": "mixed precision",
                "qat": "QAT int8 per-channel"}
FLOAT_RTOL = 1e-4  # float32 vs float32 in another summation order, relative to the range
STEP_MARGIN = 1e-3
DEFAULT_CALIBRATION_SAMPLES = 512


@dataclass
class _Variant:
    name: str
    graph: Graph | None
    note: str = ""
    error: str | None = None
    predictions: np.ndarray | None = None
    head: np.ndarray | None = None  # our outputs on the samples onnxruntime checks
    extra: dict[str, Any] = field(default_factory=dict)


def compare(model_or_graph: Any, data: tuple[Any, Any], calibration_data: Any = None,
            variants: Sequence[str] = DEFAULT_VARIANTS, qat_model: Any = None,
            eval_batch: int = 256, output_dir: str | os.PathLike | None = None, *,
            mixed_max_drop: float = 0.001, mixed_eval_data: tuple[Any, Any] | None = None,
            latency: bool = True, latency_batch: int = 256, latency_runs: tuple[int, int] = (30, 7),
            ort_samples: int = 256, name: str | None = None) -> ComparisonReport:
    """Measure every variant of ``model_or_graph`` (an edgefw Module or float Graph) on
    ``data = (x, labels)`` (see the module docstring).

    ``calibration_data``: images for static quantization (default: the first
    512 of ``x``, noted in the report — prefer training images). ``qat_model``: a model
    from :func:`quantize.prepare_qat` after fine-tuning, or its converted Graph; adds the
    "qat" row. ``mixed``: :func:`quantize.auto_mixed_precision` with a budget of
    ``mixed_max_drop`` (a fraction: 0.001 = 0.1 pp), scored on ``mixed_eval_data``
    (labelled) or, without it, by top-1 agreement with float on the calibration data —
    never on ``data``. ``latency_runs``: timed runs at batch 1 and at ``latency_batch``.
    """
    import edgefw

    x, labels = _check_data(data, "data")
    variants = _check_variants(variants, qat_model)
    for what, value in (("eval_batch", eval_batch), ("latency_batch", latency_batch),
                        ("ort_samples", ort_samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise QuantizationError(f"{what} must be a positive integer, got {value!r}")
    if not isinstance(latency_runs, tuple | list) or len(latency_runs) != 2 or any(
            isinstance(r, bool) or not isinstance(r, int) or r <= 0 for r in latency_runs):
        raise QuantizationError(f"latency_runs must be two positive run counts (batch 1, "
                                f"batch {latency_batch}), got {latency_runs!r}")
    graph = _float_graph(model_or_graph, x)
    input_name = graph.inputs[0].name
    x = _fit_input(x, graph.inputs[0])
    notes = []
    if calibration_data is None:
        calibration_data = x[:DEFAULT_CALIBRATION_SAMPLES]
        notes.append(f"calibrated on the first {len(calibration_data)} evaluation images "
                     "(pass calibration_data= to use training images)")
    calibration = _fit_input(np.asarray(calibration_data), graph.inputs[0])

    built = [_build(v, graph, calibration, qat_model, x, mixed_max_drop, mixed_eval_data,
                    eval_batch, input_name) for v in variants]
    float_variant = next((b for b in built if b.name == "float32"), None) or \
        _build("float32", graph, calibration, None, x, 0, None, eval_batch, input_name)
    for v in [float_variant] + built:
        if v.graph is not None and v.predictions is None:
            _evaluate(v, x, eval_batch, input_name, ort_samples)
    ref_pred = float_variant.predictions
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(output_dir) / "models" if output_dir is not None else Path(scratch)
        float_bytes = _export_size(float_variant, folder)
        rows = [_row(v, labels, ref_pred, float_variant, float_bytes, folder, ort_samples, x,
                     input_name) for v in built]
    if latency:
        _measure_latency([v for v in built if v.predictions is not None], rows, x, input_name,
                         latency_batch, latency_runs)
    report = ComparisonReport(
        model=name or graph.name, samples=len(x), calibration_samples=len(calibration),
        rows=rows, notes=notes,
        settings={"eval_batch": eval_batch, "latency_batch": latency_batch if latency else None,
                  "latency_runs": list(latency_runs) if latency else None,
                  "providers": ["cpu"], "ort_samples": min(ort_samples, len(x)),
                  "mixed_max_drop": mixed_max_drop, "numpy": np.__version__,
                  "edgefw": edgefw.__version__})
    if output_dir is not None:
        report.save(output_dir)
    return report


# ---------------------------------------------------------------------------- inputs
def _check_data(data: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise QuantizationError(f"{what} must be a pair (inputs, labels), got "
                                f"{type(data).__name__}")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim < 2 or len(x) == 0:
        raise QuantizationError(f"{what}: inputs must be a non-empty batch (N, ...), got shape "
                                f"{x.shape}")
    if y.ndim == 2:  # one-hot
        y = y.argmax(axis=1)
    if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
        raise QuantizationError(f"{what}: labels must be {len(x)} integer class indices (or "
                                f"one-hot rows), got {y.dtype} of shape {y.shape}")
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype(np.float32)
    return x, y


def _check_variants(variants: Sequence[str], qat_model: Any) -> list[str]:
    chosen = [variants] if isinstance(variants, str) else list(variants)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown or not chosen:
        raise QuantizationError(f"unknown variant(s) {unknown or chosen}; choose from "
                                f"{', '.join(VARIANTS)}")
    if len(set(chosen)) != len(chosen):
        raise QuantizationError(f"variants listed twice: {chosen}")
    if "qat" in chosen and qat_model is None:
        raise QuantizationError("variant 'qat' needs qat_model= (quantize.prepare_qat + fit)")
    if qat_model is not None and "qat" not in chosen:
        chosen.append("qat")
    return sorted(chosen, key=VARIANTS.index)


def _float_graph(model_or_graph: Any, x: np.ndarray) -> Graph:
    """The optimized float graph (BatchNorm folded, activations fused), as PTQ sees it."""
    import edgefw
    from quantize.ptq import prepare

    if isinstance(model_or_graph, Graph):
        graph = model_or_graph
    elif callable(getattr(model_or_graph, "named_parameters", None)):
        if "_qat_config" in model_or_graph.__dict__:
            raise QuantizationError("compare() takes the float model; pass the QAT model as "
                                    "qat_model=")
        graph = edgefw.trace(model_or_graph, x[:1])
    else:
        raise QuantizationError(f"compare() takes an edgefw Module or Graph, got "
                                f"{type(model_or_graph).__name__}")
    if len(graph.inputs) != 1:
        raise QuantizationError(f"compare() handles models with one input; graph "
                                f"'{graph.name}' has {len(graph.inputs)}")
    return prepare(graph)


def _fit_input(x: np.ndarray, value: Any) -> np.ndarray:
    """``x`` reshaped to the model input's static dims when only the layout differs
    (e.g. (N, 1, 28, 28) images for a (batch, 784) input); ShapeError-like message else."""
    shape = value.shape or ()
    dims = shape[1:]
    if all(isinstance(d, int) for d in dims) and tuple(x.shape[1:]) != tuple(dims):
        if int(np.prod(x.shape[1:])) == int(np.prod(dims)):
            return x.reshape((len(x),) + tuple(dims))
        raise QuantizationError(f"inputs of shape {x.shape} do not fit the model input "
                                f"'{value.name}' {list(shape)}")
    return x


# ------------------------------------------------------------------------- variants
def _build(name: str, graph: Graph, calibration: np.ndarray, qat_model: Any, x: np.ndarray,
           mixed_max_drop: float, mixed_eval_data: Any, eval_batch: int,
           input_name: str) -> _Variant:
    import quantize

    try:
        if name == "float32":
            return _Variant(name, graph)
        if name == "float16":
            return _Variant(name, quantize.convert_float16(graph))
        if name == "dynamic":
            return _Variant(name, quantize.quantize_dynamic(graph))
        if name in ("int8_per_tensor", "int8_per_channel"):
            return _Variant(name, quantize.quantize_static(
                graph, calibration, per_channel=name == "int8_per_channel"))
        if name == "mixed":
            return _mixed(graph, calibration, mixed_max_drop, mixed_eval_data, eval_batch,
                          input_name)
        return _Variant(name, _qat_graph(qat_model, x))
    except EdgeFWError as exc:
        return _Variant(name, None, error=f"{type(exc).__name__}: {exc}")


def _qat_graph(qat_model: Any, x: np.ndarray) -> Graph:
    import quantize

    if isinstance(qat_model, Graph):
        if not any(n.op_type == "QuantizeLinear" for n in qat_model.nodes):
            raise QuantizationError(f"qat_model graph '{qat_model.name}' is not quantized; "
                                    "pass quantize.convert_qat(model) or the QAT model")
        return qat_model
    return quantize.convert_qat(qat_model, x[:1])


def _predict(graph: Graph, x: np.ndarray, batch: int, input_name: str) -> np.ndarray:
    from runtime import InferenceSession

    session = InferenceSession(graph, providers=["cpu"])
    return np.concatenate([session.run(None, {input_name: x[i:i + batch]})[0]
                           for i in range(0, len(x), batch)])


def _mixed(graph: Graph, calibration: np.ndarray, max_drop: float, eval_data: Any,
           eval_batch: int, input_name: str) -> _Variant:
    import quantize

    if eval_data is not None:
        xv, yv = _check_data(eval_data, "mixed_eval_data")
        xv = _fit_input(xv, graph.inputs[0])
        how = f"accuracy on {len(xv)} held-out labelled images"
    else:
        xv = calibration
        yv = _predict(graph, xv, eval_batch, input_name).argmax(1)
        how = f"top-1 agreement with float on the {len(xv)} calibration images"

    def score(g: Graph) -> float:
        return float(np.mean(_predict(g, xv, eval_batch, input_name).argmax(1) == yv))

    result = quantize.auto_mixed_precision(graph, calibration, score, max_accuracy_drop=max_drop)
    kept = ", ".join(result.kept_layers) or "none"
    note = (f"budget {100 * max_drop:.2g} pp of {how}; layers kept float: {kept}")
    return _Variant("mixed", result.graph, note=note,
                    extra={"kept_layers": result.kept_layers, "search_score": result.score,
                           "within_budget": result.within_budget})


def _evaluate(v: _Variant, x: np.ndarray, batch: int, input_name: str, ort_samples: int) -> None:
    try:
        outputs = _predict(v.graph, x, batch, input_name)
    except EdgeFWError as exc:
        v.error = f"runtime failed: {type(exc).__name__}: {exc}"
        return
    v.predictions = outputs.argmax(1) if outputs.ndim == 2 else outputs.reshape(len(x), -1) \
        .argmax(1)
    v.head = outputs[:ort_samples]


# -------------------------------------------------------------------- measurements
def _opset(graph: Graph) -> int:
    wide = any(v.dtype in ("int16", "uint16") for v in graph.values()
               if v.producer is not None and v.producer.op_type == "QuantizeLinear")
    return 21 if wide else 17


def _export_size(v: _Variant, folder: Path) -> int | None:
    import exporter

    if v.graph is None:
        return None
    path = folder / f"{v.name}.onnx"
    try:
        exporter.to_onnx(v.graph, path, opset=_opset(v.graph), optimize="none")
    except EdgeFWError as exc:
        v.error = f"ONNX export failed: {type(exc).__name__}: {exc}"
        return None
    v.extra["onnx_path"] = path
    return path.stat().st_size


def _output_step(graph: Graph) -> float | None:
    """The quantization step of the (first) output when a DequantizeLinear produces it."""
    out = graph.outputs[0]
    node = out.producer
    if node is None or node.op_type != "DequantizeLinear":
        return None
    scale = np.asarray(node.inputs[1].data if node.inputs[1].data is not None else np.nan)
    return float(scale.max()) if scale.size else None


def _ort_check(v: _Variant, x: np.ndarray, input_name: str) -> dict[str, Any]:
    """onnxruntime on the exported file against our runtime on the same samples: our
    reference QDQ path (optimization "none": the file's exact semantics, Q/DQ in float) and
    the deployed path (integer kernels). Errors are also given in tolerance units."""
    path = v.extra.get("onnx_path")
    if path is None or v.head is None:
        return {}
    import onnxruntime as ort

    from runtime import InferenceSession

    head = x[:len(v.head)]
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        theirs = session.run(None, {session.get_inputs()[0].name: head})[0].astype(np.float64)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        return {"ort_agrees": False, "ort_tolerance_kind": f"onnxruntime failed: {exc}"[:300]}
    reference = InferenceSession(v.graph, providers=["cpu"], optimization="none") \
        .run(None, {input_name: head})[0]
    error = float(np.max(np.abs(theirs - reference.astype(np.float64))))
    deployed = float(np.max(np.abs(theirs - v.head.astype(np.float64))))
    step = _output_step(v.graph)
    span = float(np.max(np.abs(theirs))) if theirs.size else 0.0
    if step is not None:
        tolerance, what = step, "one output quantization step"
    elif v.name not in ("float32", "float16"):
        # A float output computed from quantized tensors (a layer kept float, or dynamic
        # int8 whose kernels quantize activations on the fly): one int8 step of its range.
        tolerance, what = span / 127.0, "one int8 step of the output range"
    else:
        tolerance, what = FLOAT_RTOL * max(span, 1.0), "float rounding (1e-4 of the range)"
    # Outputs on a grid differ by whole steps; the margin only absorbs float32 rounding.
    return {"ort_agrees": error <= tolerance * (1 + STEP_MARGIN), "ort_max_error": error,
            "ort_max_error_deployed": deployed, "ort_tolerance": tolerance,
            "ort_tolerance_kind": what}


def _row(v: _Variant, labels: np.ndarray, ref_pred: np.ndarray | None, float_variant: _Variant,
         float_bytes: int | None, folder: Path, ort_samples: int, x: np.ndarray,
         input_name: str) -> VariantResult:
    size = float_bytes if v is float_variant else _export_size(v, folder)
    row = VariantResult(variant=v.name, description=DESCRIPTIONS[v.name], note=v.note,
                        details={k: val for k, val in v.extra.items() if k != "onnx_path"})
    if v.error is not None or v.predictions is None:
        row.error = v.error or "not evaluated"
        return row
    float_acc = None if float_variant.predictions is None else \
        100.0 * float(np.mean(float_variant.predictions == labels))
    row.accuracy = 100.0 * float(np.mean(v.predictions == labels))
    row.delta_pp = None if float_acc is None else row.accuracy - float_acc
    row.agreement = None if ref_pred is None else 100.0 * float(np.mean(v.predictions == ref_pred))
    row.file_bytes = size
    row.size_ratio = size / float_bytes if size and float_bytes else None
    for key, value in _ort_check(v, x, input_name).items():
        setattr(row, key, value)
    if v.error is not None:  # the export failed after evaluation
        row.error = v.error
    return row


def _measure_latency(variants: list[_Variant], rows: list[VariantResult], x: np.ndarray,
                     input_name: str, batch: int, runs: tuple[int, int]) -> None:
    """p50 latency per variant at batch 1 and ``batch``, runs interleaved across variants."""
    from runtime import InferenceSession

    big = x[:batch] if len(x) >= batch else np.resize(x, (batch,) + x.shape[1:])
    sessions = {v.name: InferenceSession(v.graph, providers=["cpu"]) for v in variants}
    by_name = {r.variant: r for r in rows}
    for feed_x, count, attr in ((x[:1], runs[0], "latency_b1_ms"),
                                (big, runs[1], "latency_batch_ms")):
        timings = _interleaved({n: _runner(s, input_name, feed_x) for n, s in sessions.items()},
                               count)
        for n, times in timings.items():
            row = by_name[n]
            setattr(row, attr, 1000.0 * float(np.median(times)))
            # The fastest run is what the kernels cost without interference from other
            # processes; kept in the JSON next to the p50 the table shows.
            row.latency_best_ms = {**(row.latency_best_ms or {}),
                                   f"batch_{len(feed_x)}": 1000.0 * float(min(times))}


def _runner(session: Any, input_name: str, x: np.ndarray) -> Callable[[], Any]:
    feed = {input_name: np.ascontiguousarray(x)}
    return lambda: session.run(None, feed)


def _interleaved(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, list[float]]:
    for fn in fns.values():  # warm up: plans specialise to the shape on the first run
        fn()
        fn()
    times: dict[str, list[float]] = {n: [] for n in fns}
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for i in range(runs):
            names = list(fns)
            names = names[i % len(names):] + names[:i % len(names)]  # rotate who goes first
            for n in names:
                t0 = time.perf_counter()
                fns[n]()
                times[n].append(time.perf_counter() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return times


__all__ = ["DEFAULT_VARIANTS", "VARIANTS", "ComparisonReport", "VariantResult", "compare"]
