"""Quantization: post-training quantization of IR graphs to QDQ form, calibration
observers, float16 conversion, and the reports that explain what quantization costs.

    >>> import numpy as np, edgefw, quantize
    >>> from edgefw import models
    >>> graph = edgefw.trace(models.build("lenet"), np.zeros((1, 1, 28, 28), np.float32))
    >>> data = np.random.default_rng(0).random((64, 1, 28, 28), np.float32)
    >>> int8 = quantize.quantize_static(graph, data, per_channel=True)
    >>> report = quantize.layer_report(graph, int8, data)
    >>> len(report.layers) > 0
    True

Public API:

- :func:`quantize_dynamic`, :func:`quantize_static`, :func:`quantize_16x8`,
  :func:`convert_float16` — graph in, new graph out (the input graph is never changed);
- :func:`layer_report` -> :class:`QuantizationReport` (per-layer SQNR and max error);
- :func:`sensitivity` -> :class:`SensitivityReport`; :func:`auto_mixed_precision` ->
  :class:`MixedPrecisionResult`;
- :func:`compare` -> :class:`ComparisonReport`: every variant (float32, float16, dynamic,
  static int8, mixed, QAT) measured for accuracy, size, latency and onnxruntime agreement;
- quantization-aware training: :func:`prepare_qat` (fake-quant nn model), fine-tune with
  ``fit``, :func:`convert_qat` -> QDQ graph; :func:`save_qat` / :func:`load_qat`;
- observers (:class:`MinMaxObserver`, :class:`PercentileObserver`,
  :class:`EntropyObserver`, :class:`MSEObserver`) and the scale/zero-point arithmetic
  (:func:`compute_qparams`, :func:`weight_qparams`).
"""

from __future__ import annotations

from edgefw.errors import QuantizationError
from quantize.calibration import CalibrationResult, calibrate
from quantize.compare import ComparisonReport, VariantResult, compare
from quantize.float16 import convert_float16
from quantize.mixed_precision import MixedPrecisionResult, auto_mixed_precision
from quantize.observers import (
    EntropyObserver,
    HistogramObserver,
    MinMaxObserver,
    MSEObserver,
    Observer,
    PercentileObserver,
    make_observer,
)
from quantize.ptq import (
    prepare,
    quantization_info,
    quantize_16x8,
    quantize_dynamic,
    quantize_static,
)
from quantize.qat import convert_qat, load_qat, prepare_qat, save_qat
from quantize.qparams import QParams, compute_qparams, weight_qparams
from quantize.report import LayerError, QuantizationReport, layer_report
from quantize.sensitivity import LayerSensitivity, SensitivityReport, sensitivity

__all__ = [
    "CalibrationResult",
    "ComparisonReport",
    "EntropyObserver",
    "HistogramObserver",
    "LayerError",
    "LayerSensitivity",
    "MSEObserver",
    "MinMaxObserver",
    "MixedPrecisionResult",
    "Observer",
    "PercentileObserver",
    "QParams",
    "QuantizationError",
    "QuantizationReport",
    "SensitivityReport",
    "VariantResult",
    "auto_mixed_precision",
    "calibrate",
    "compare",
    "compute_qparams",
    "convert_float16",
    "convert_qat",
    "layer_report",
    "load_qat",
    "make_observer",
    "prepare",
    "prepare_qat",
    "quantization_info",
    "quantize_16x8",
    "quantize_dynamic",
    "quantize_static",
    "save_qat",
    "sensitivity",
    "weight_qparams",
]
