"""Automatic mixed precision: quantize everything, and if that costs more than the budget,
keep the most sensitive layers in float (or 16x8) — as few as it takes.

1. Calibrate once; score the float graph and the fully quantized graph with ``eval_fn``.
2. Within ``max_accuracy_drop``: done, nothing kept back.
3. Otherwise rank the layers by sensitivity (the drop with that layer alone quantized,
   :func:`quantize.sensitivity` with ``eval_fn`` as the metric), then keep back the top 1,
   2, 3... layers until the drop is within budget. Each step is scored for real with
   ``eval_fn`` on the runtime, so the result's score is measured, not estimated.

The result says which layers were kept back and why (each one's own drop when quantized
alone), and every score tried on the way. TFLite, onnxruntime and PyTorch leave this search
to the user.

    >>> import numpy as np, edgefw
    >>> from edgefw import models
    >>> from runtime import InferenceSession
    >>> g = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    >>> x = np.random.default_rng(0).random((64, 1, 28, 28), np.float32)
    >>> y = InferenceSession(g).run(None, {"input": x})[0].argmax(1)
    >>> def accuracy(graph):
    ...     return float((InferenceSession(graph).run(None, {"input": x})[0].argmax(1) == y)
    ...                  .mean())
    >>> result = auto_mixed_precision(g, x, accuracy, max_accuracy_drop=0.05)
    >>> result.within_budget
    True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgefw.errors import QuantizationError
from edgefw.ir import Graph
from quantize.calibration import DEFAULT_BATCH_SIZE
from quantize.evaluation import finite_or_none
from quantize.ptq import _check_options, build_static, prepare, quantization_info
from quantize.qparams import check_activation_dtype
from quantize.sensitivity import LayerSensitivity, _calibrate, _call_metric, candidate_layers

FALLBACKS = ("float", "16x8")


@dataclass
class MixedPrecisionResult:
    """The chosen ``graph`` and how it was found: ``kept`` are the layers held in
    ``fallback`` (most sensitive first, with their solo drop as the reason), ``trials`` every
    ``(number of layers kept, score)`` evaluated, ``sensitivities`` the full ranking (empty
    when the fully quantized graph was already within budget)."""

    graph: Graph
    float_score: float
    quantized_score: float
    score: float
    max_accuracy_drop: float
    fallback: str
    kept: list[LayerSensitivity]
    sensitivities: list[LayerSensitivity] = field(default_factory=list)
    trials: list[tuple[int, float]] = field(default_factory=list)

    @property
    def drop(self) -> float:
        return self.float_score - self.score

    @property
    def within_budget(self) -> bool:
        return self.drop <= self.max_accuracy_drop

    @property
    def kept_layers(self) -> list[str]:
        return [k.layer for k in self.kept]

    def to_dict(self) -> dict[str, Any]:
        return {"float_score": self.float_score, "quantized_score": self.quantized_score,
                "score": self.score, "drop": self.drop,
                "max_accuracy_drop": self.max_accuracy_drop, "fallback": self.fallback,
                "within_budget": self.within_budget,
                "kept": [k.to_dict() for k in self.kept],
                "sensitivities": [s.to_dict() for s in self.sensitivities],
                "trials": [{"kept": k, "score": finite_or_none(s)} for k, s in self.trials]}

    def __str__(self) -> str:
        target = "float" if self.fallback == "float" else "16x8 (int16 activations)"
        lines = [f"float {self.float_score:.4g}, all quantized {self.quantized_score:.4g} "
                 f"(drop {self.float_score - self.quantized_score:.4g}), budget "
                 f"{self.max_accuracy_drop:.4g}"]
        if not self.kept:
            lines.append("every layer quantized: the drop is within budget")
        else:
            lines.append(f"kept {len(self.kept)} layer{'s' if len(self.kept) > 1 else ''} in "
                         f"{target}, most sensitive first:")
            for k in self.kept:
                lines.append(f"  {k.layer} ({k.op_type}): quantized alone it costs "
                             f"{k.drop:.4g}")
            state = "within" if self.within_budget else "NOT within"
            lines.append(f"result {self.score:.4g} (drop {self.drop:.4g}), {state} budget")
        return "\n".join(lines)


def auto_mixed_precision(graph: Graph, calibration_data: Any,
                         eval_fn: Callable[[Graph], float], max_accuracy_drop: float = 0.01,
                         fallback: str = "float", *, per_channel: bool = True,
                         activation_dtype: str = "int8", method: str = "minmax",
                         percentile: float = 99.99, exclude: Iterable[str] = (),
                         num_calibration_batches: int | None = None,
                         batch_size: int = DEFAULT_BATCH_SIZE, optimization: str = "all",
                         providers: Sequence[str] | None = None) -> MixedPrecisionResult:
    """Quantize ``graph`` statically, keeping the fewest most sensitive layers in
    ``fallback`` (``"float"`` or ``"16x8"``) so that ``eval_fn(float) - eval_fn(result) <=
    max_accuracy_drop``. ``eval_fn(graph) -> float`` scores a graph, higher is better
    (accuracy as a fraction: ``max_accuracy_drop=0.001`` is 0.1 pp). See the module
    docstring for the search."""
    _check_options(per_channel, method, percentile)
    check_activation_dtype(activation_dtype)
    if fallback not in FALLBACKS:
        raise QuantizationError(f"fallback must be one of {', '.join(FALLBACKS)}, got "
                                f"{fallback!r}")
    if not callable(eval_fn):
        raise QuantizationError(f"eval_fn must be a function graph -> score, got "
                                f"{type(eval_fn).__name__}")
    if isinstance(max_accuracy_drop, bool) or not isinstance(max_accuracy_drop, int | float) \
            or max_accuracy_drop < 0:
        raise QuantizationError(f"max_accuracy_drop must be a number >= 0, got "
                                f"{max_accuracy_drop!r}")
    if fallback == "16x8" and activation_dtype == "int16":
        raise QuantizationError("fallback '16x8' needs int8/uint8 activations to fall back "
                                "from; activation_dtype is already int16")
    prepared = prepare(graph, optimization)
    candidates, _ = candidate_layers(prepared, activation_dtype, exclude)
    calibration = _calibrate(prepared, calibration_data, method, percentile, batch_size,
                             num_calibration_batches, providers)
    setting = "float" if fallback == "float" else "int16"

    def build(layer_dtypes: dict[str, str]) -> Graph:
        return build_static(prepared, calibration, per_channel=per_channel,
                            activation_dtype=activation_dtype, exclude=exclude,
                            layer_dtypes=layer_dtypes, optimization=optimization)

    float_score = _call_metric(eval_fn, graph, "the float graph")
    full = build({})
    full_score = _call_metric(eval_fn, full, "the fully quantized graph")
    result = MixedPrecisionResult(full, float_score, full_score, full_score,
                                  float(max_accuracy_drop), fallback, [],
                                  trials=[(0, full_score)])
    if result.within_budget:
        return _recorded(result)

    ranking = []
    for d in candidates:
        alone = {c.name: "float" for c in candidates if c.name != d.name}
        score = _call_metric(eval_fn, build(alone), d.layer)
        ranking.append(LayerSensitivity(d.name, d.layer, d.op_type, score, float_score - score))
    order = {d.name: i for i, d in enumerate(candidates)}
    ranking.sort(key=lambda s: (-s.drop, order[s.name]))
    result.sensitivities = ranking
    for k in range(1, len(ranking) + 1):
        kept = ranking[:k]
        candidate = build({s.name: setting for s in kept})
        score = _call_metric(eval_fn, candidate, f"the graph keeping {k} layers back")
        result.trials.append((k, score))
        result.graph, result.score, result.kept = candidate, score, kept
        if result.within_budget:
            break
    return _recorded(result)


def _recorded(result: MixedPrecisionResult) -> MixedPrecisionResult:
    """Note the search in the graph's quantization metadata (exported with the model)."""
    info = quantization_info(result.graph) or {}
    info["mixed_precision"] = {"fallback": result.fallback, "kept": result.kept_layers,
                               "float_score": result.float_score, "score": result.score,
                               "max_accuracy_drop": result.max_accuracy_drop}
    result.graph.metadata["quantization"] = json.dumps(info, sort_keys=True)
    return result


__all__ = ["FALLBACKS", "MixedPrecisionResult", "auto_mixed_precision"]
