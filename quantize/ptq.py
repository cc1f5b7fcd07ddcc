"""Post-training quantization: float graph in, QDQ graph out (the caller's graph is never
changed).

- :func:`quantize_dynamic`: int8 weights, float activations (no calibration).
- :func:`quantize_static`: int8 weights, int8/uint8/int16 activations calibrated on data,
  int32 biases.
- :func:`quantize_16x8`: :func:`quantize_static` with int16 activations (TFLite's 16x8).

The float graph is first optimized (``edgefw.ir.passes.optimize``, level ``"all"``):
BatchNorm folds into the Conv before it, and Relu/Clip fuse into the Conv/Gemm before them,
so the quantizer observes and quantizes the activation's output — the activation is
absorbed into the quantization range instead of being quantized twice.

    >>> import numpy as np, edgefw, quantize
    >>> from edgefw import models
    >>> graph = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    >>> data = np.random.default_rng(0).random((64, 1, 28, 28), np.float32)
    >>> qgraph = quantize.quantize_static(graph, data)
    >>> sorted({n.op_type for n in qgraph.nodes})
    ['DequantizeLinear', 'Flatten', 'Gemm', 'QuantizeLinear']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edgefw.errors import EdgeFWError, QuantizationError
from edgefw.ir import Graph
from quantize.calibration import DEFAULT_BATCH_SIZE, CalibrationResult, calibrate
from quantize.observers import DEFAULT_BINS, METHODS
from quantize.planning import QuantizationPlan, plan_quantization
from quantize.qdq import build_qdq, quantize_weights_only
from quantize.qparams import check_activation_dtype

OPTIMIZATION_LEVELS = ("none", "basic", "all")
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def prepare(graph: Graph, optimization: str = "all") -> Graph:
    """A verified, optimized copy of float ``graph``, ready to be calibrated and quantized."""
    if not isinstance(graph, Graph):
        raise QuantizationError(f"expected an edgefw.ir.Graph, got {type(graph).__name__}; "
                                "trace a model first: edgefw.trace(model, example_inputs)")
    if optimization not in OPTIMIZATION_LEVELS:
        raise QuantizationError(f"optimization must be one of {', '.join(OPTIMIZATION_LEVELS)},"
                                f" got {optimization!r}")
    quantized = [n.describe() for n in graph.nodes if n.op_type in _QDQ_OPS]
    if quantized:
        raise QuantizationError(f"graph '{graph.name}' is already quantized ({quantized[0]}); "
                                "quantize the float graph")
    copy = graph.copy()
    if optimization != "none":
        from edgefw.ir.passes import optimize

        copy = optimize(copy, optimization)
    copy.check()
    return copy


def _check_options(per_channel: Any, method: str, percentile: Any) -> None:
    if not isinstance(per_channel, bool):
        raise QuantizationError(f"per_channel must be True or False, got {per_channel!r}")
    if method not in METHODS:
        raise QuantizationError(f"unknown calibration method {method!r}; choose one of "
                                f"{', '.join(METHODS)}")
    if isinstance(percentile, bool) or not isinstance(percentile, int | float) \
            or not 50.0 < float(percentile) <= 100.0:
        raise QuantizationError(f"percentile must be in (50, 100], got {percentile!r}")


def _record(graph: Graph, info: dict[str, Any]) -> None:
    graph.metadata["quantization"] = json.dumps(info, sort_keys=True)


def quantization_info(graph: Graph) -> dict[str, Any] | None:
    """What the quantizer recorded in ``graph.metadata["quantization"]`` (mode, dtypes,
    calibration, per-node decisions and notes), or None for a graph it did not write.

    >>> quantization_info(Graph()) is None
    True
    """
    text = graph.metadata.get("quantization")
    if not isinstance(text, str):
        return None
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return None
    return info if isinstance(info, dict) else None


def _node_records(graph: Graph, plan: QuantizationPlan) -> list[dict[str, Any]]:
    records = []
    for node in graph.nodes:
        d = plan.decisions[node.name]
        if d.kind == "float" and not d.reason:
            continue  # shape arithmetic and the like: nothing a user asked about
        records.append({"name": d.name, "op_type": d.op_type, "module_path": d.module_path,
                        "kind": d.kind, "dtype": d.dtype, "output": node.outputs[0].name,
                        "reason": d.reason})
    return records


# ------------------------------------------------------------------------ dynamic
def quantize_dynamic(graph: Graph, per_channel: bool = True, *, exclude: Iterable[str] = (),
                     optimization: str = "all") -> Graph:
    """int8 weights (symmetric, per output channel or per tensor) of every Conv, Gemm and
    MatMul with a constant weight; activations and biases stay float.

    >>> import numpy as np, edgefw
    >>> from edgefw import models
    >>> g = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    >>> q = quantize_dynamic(g)
    >>> q.value("1.weight.quantized").dtype, q.value("1.weight.scale").shape
    ('int8', (128,))
    """
    _check_options(per_channel, "minmax", 99.99)
    prepared = prepare(graph, optimization)
    plan = plan_quantization(prepared, "int8", exclude=exclude)
    records = _node_records(prepared, plan)
    result = quantize_weights_only(prepared, plan, per_channel)
    _record(result, {"mode": "dynamic", "weight_dtype": "int8", "activation_dtype": "float32",
                     "per_channel": per_channel, "optimization": optimization,
                     "nodes": [r for r in records if r["kind"] in ("weighted", "float")]})
    return result


# ------------------------------------------------------------------------- static
def calibrate_graph(prepared: Graph, calibration_data: Any, *, method: str = "minmax",
                    percentile: float = 99.99, num_calibration_batches: int | None = None,
                    batch_size: int = DEFAULT_BATCH_SIZE, num_bins: int = DEFAULT_BINS,
                    providers: Sequence[str] | None = None) -> CalibrationResult:
    """Calibrate every tensor any static quantization of ``prepared`` could need, so that
    several plans (sensitivity, mixed precision) share one calibration pass."""
    # Every tensor of the all-quantized plan: a pass-through output that shares its input's
    # range there is a group root of its own when a plan keeps the pass-through node float.
    everything = plan_quantization(prepared, "int8")
    return calibrate(prepared, calibration_data, list(everything.tensors), method=method,
                     percentile=percentile, num_bins=num_bins, batch_size=batch_size,
                     num_batches=num_calibration_batches, providers=providers)


def build_static(prepared: Graph, calibration: CalibrationResult, *, per_channel: bool = True,
                 activation_dtype: str = "int8", exclude: Iterable[str] = (),
                 layer_dtypes: Mapping[str, str] | None = None, optimization: str = "all",
                 percentile: float | None = None) -> Graph:
    """The QDQ graph of ``prepared`` (not modified) from an existing calibration."""
    graph = prepared.copy()
    plan = plan_quantization(graph, activation_dtype, exclude=exclude, layer_dtypes=layer_dtypes)
    records = _node_records(graph, plan)
    result = build_qdq(graph, plan, calibration.range, per_channel)
    info = {"mode": "static", "weight_dtype": "int8", "activation_dtype": activation_dtype,
            "per_channel": per_channel, "calibration_method": calibration.method,
            "calibration_batches": calibration.num_batches,
            "calibration_samples": calibration.num_samples, "optimization": optimization,
            "nodes": records}
    if activation_dtype == "int16" or any(d.dtype == "int16" for d in plan.decisions.values()):
        info["note"] = "int16 QuantizeLinear/DequantizeLinear need ONNX opset 21"
    if percentile is not None and calibration.method == "percentile":
        info["percentile"] = percentile
    _record(result, info)
    return result


def quantize_static(graph: Graph, calibration_data: Any, per_channel: bool = True,
                    activation_dtype: str = "int8", method: str = "minmax",
                    percentile: float = 99.99, num_calibration_batches: int | None = None,
                    exclude: Iterable[str] = (), *, layer_dtypes: Mapping[str, str] | None = None,
                    batch_size: int = DEFAULT_BATCH_SIZE, num_bins: int = DEFAULT_BINS,
                    optimization: str = "all", providers: Sequence[str] | None = None) -> Graph:
    """Static post-training quantization to QDQ form.

    Weights: int8 symmetric, per output channel (``per_channel``) or per tensor; biases
    int32 at ``input_scale * weight_scale``. Activations: per tensor, asymmetric for
    ``"int8"``/``"uint8"``, symmetric int16 with zero point 0 for ``"int16"`` (16x8).
    Ranges come from running the float graph on ``calibration_data`` (an array, a list of
    batches, a dict by input name, a DataLoader or any iterable of batches; arrays are cut
    into ``batch_size`` batches, at most ``num_calibration_batches`` are read) with the
    observer of ``method``: ``"minmax"``, ``"percentile"`` (``percentile``), ``"entropy"``
    (KL) or ``"mse"``.

    ``exclude``: layers kept float (node names, module paths or module prefixes);
    ``layer_dtypes``: per-layer ``"float"``/``"int8"``/``"uint8"``/``"int16"``. Ops without
    a quantized form stay float; ``quantization_info(result)["nodes"]`` says why.

    >>> import numpy as np, edgefw
    >>> from edgefw import models
    >>> g = edgefw.trace(models.build("lenet"), np.zeros((1, 1, 28, 28), np.float32))
    >>> data = np.random.default_rng(0).random((32, 1, 28, 28), np.float32)
    >>> q = quantize_static(g, data, method="percentile", exclude=["classifier.4"])
    >>> q.value("features.0.weight.scale").shape, q.value("classifier.4.weight").dtype
    ((6,), 'float32')
    """
    _check_options(per_channel, method, percentile)
    check_activation_dtype(activation_dtype)
    prepared = prepare(graph, optimization)
    # Validate layer names before the (slower) calibration runs.
    plan_quantization(prepared, activation_dtype, exclude=exclude, layer_dtypes=layer_dtypes)
    try:
        calibration = calibrate_graph(prepared, calibration_data, method=method,
                                      percentile=percentile,
                                      num_calibration_batches=num_calibration_batches,
                                      batch_size=batch_size, num_bins=num_bins,
                                      providers=providers)
    except QuantizationError:
        raise
    except EdgeFWError as exc:
        raise QuantizationError(f"calibration failed while running graph '{graph.name}': "
                                f"{exc}") from exc
    return build_static(prepared, calibration, per_channel=per_channel,
                        activation_dtype=activation_dtype, exclude=exclude,
                        layer_dtypes=layer_dtypes, optimization=optimization,
                        percentile=percentile)


def quantize_16x8(graph: Graph, calibration_data: Any, per_channel: bool = True,
                  **kwargs: Any) -> Graph:
    """:func:`quantize_static` with int16 activations (zero point 0) and int8 weights —
    TFLite's "16x8" mode, for models whose activations need more than 8 bits.

    >>> import numpy as np, edgefw
    >>> from edgefw import models
    >>> g = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    >>> q = quantize_16x8(g, np.random.default_rng(0).random((8, 1, 28, 28), np.float32))
    >>> q.value("input_quantized").dtype, int(q.value("input.zero_point").data)
    ('int16', 0)
    """
    if "activation_dtype" in kwargs:
        raise QuantizationError("quantize_16x8 sets activation_dtype='int16'; use "
                                "quantize_static for other dtypes")
    return quantize_static(graph, calibration_data, per_channel, activation_dtype="int16",
                           **kwargs)


__all__ = [
    "build_static",
    "calibrate_graph",
    "prepare",
    "quantization_info",
    "quantize_16x8",
    "quantize_dynamic",
    "quantize_static",
]
