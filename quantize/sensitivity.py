"""Per-layer sensitivity: the model's accuracy (or output fidelity) with each layer
quantized alone, every other layer float — which layer costs the accuracy.

Metrics (higher is better; rows are sorted by score, lowest first = most sensitive):

- ``"sqnr"``: SQNR (dB) of the model outputs against float on ``data``;
- ``"agreement"``: top-1 agreement (%) of the first output with float's;
- ``"accuracy"``: top-1 accuracy (%) of the first output against ``labels`` (or the labels
  in ``(inputs, labels)`` batches);
- a callable ``metric(graph) -> float``: any evaluation of a graph (e.g. accuracy on a
  validation set, run with ``runtime.InferenceSession``).

One calibration pass serves every layer; the string metrics evaluate every variant in one
more pass over ``data`` (sessions run side by side, batch by batch).

    >>> import numpy as np, edgefw
    >>> from edgefw import models
    >>> g = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    >>> data = np.random.default_rng(0).random((64, 1, 28, 28), np.float32)
    >>> report = sensitivity(g, data, "sqnr")
    >>> [e.layer for e in report.entries] == sorted([e.layer for e in report.entries],
    ...     key=lambda n: next(e.score for e in report.entries if e.layer == n))
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefw.errors import EdgeFWError, QuantizationError
from edgefw.ir import Graph
from quantize.calibration import DEFAULT_BATCH_SIZE, BatchReader, CalibrationResult, is_one_shot
from quantize.evaluation import ErrorStats, finite_or_none, format_db
from quantize.planning import NodeDecision, plan_quantization, resolve_layers
from quantize.ptq import _check_options, build_static, calibrate_graph, prepare
from quantize.qparams import check_activation_dtype

METRICS = ("sqnr", "agreement", "accuracy")


@dataclass
class LayerSensitivity:
    """``layer`` (module path or node name) quantized alone scores ``score``; ``drop`` is the
    float score minus it (None when the float score is infinite, as SQNR's is)."""

    name: str
    layer: str
    op_type: str
    score: float
    drop: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "layer": self.layer, "op_type": self.op_type,
                "score": finite_or_none(self.score), "drop": finite_or_none(self.drop)}


@dataclass
class SensitivityReport:
    """Layers sorted most sensitive first, under ``metric``; ``float_score`` is the float
    model's score (+inf for SQNR)."""

    metric: str
    float_score: float
    entries: list[LayerSensitivity]
    settings: dict[str, Any] = field(default_factory=dict)

    def most_sensitive(self, n: int = 1) -> list[LayerSensitivity]:
        return self.entries[:n]

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "float_score": finite_or_none(self.float_score),
                "settings": dict(self.settings),
                "entries": [e.to_dict() for e in self.entries]}

    def _score(self, x: float | None) -> str:
        if x is None:
            return "-"
        return format_db(x) if self.metric == "sqnr" else f"{x:.4g}"

    def _rows(self) -> list[list[str]]:
        return [[str(i), e.layer, e.op_type, self._score(e.score), self._score(e.drop)]
                for i, e in enumerate(self.entries, 1)]

    def __str__(self) -> str:
        header = ["#", "layer (quantized alone)", "op", self.metric, "drop"]
        rows = self._rows()
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
        lines = [f"Sensitivity by {self.metric} (float: {self._score(self.float_score)}), "
                 "most sensitive first"]
        for cells in [header, ["-" * w for w in widths]] + rows:
            lines.append("  ".join(c.rjust(w) if i in (0, 3, 4) else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [f"**Sensitivity by {self.metric}** (float: {self._score(self.float_score)})",
                 "", f"| # | layer | op | {self.metric} | drop |", "|---|---|---|---:|---:|"]
        lines += ["| " + " | ".join(r) + " |" for r in self._rows()]
        return "\n".join(lines) + "\n"


def _layer_settings(plan_layers: list[NodeDecision], alone: NodeDecision,
                    setting: str) -> dict[str, str]:
    """Every layer float except ``alone``, which gets ``setting``."""
    settings = {d.name: "float" for d in plan_layers if d.name != alone.name}
    settings[alone.name] = setting
    return settings


def candidate_layers(prepared: Graph, activation_dtype: str, exclude: Iterable[str],
                     layers: Iterable[str] | None = None
                     ) -> tuple[list[NodeDecision], list[NodeDecision]]:
    """``(all quantizable layers of prepared minus exclude, the candidates among them)``:
    all of them, or those ``layers`` names."""
    plan = plan_quantization(prepared, activation_dtype, exclude=exclude)
    everything = candidates = plan.layers()
    if layers is not None:
        chosen = resolve_layers(prepared, layers, "layers")
        candidates = [d for d in everything if d.name in chosen]
    if not candidates:
        raise QuantizationError(f"graph '{prepared.name}' has no quantizable layer to rank")
    return everything, candidates


def sensitivity(graph: Graph, data: Any, metric: str | Callable[[Graph], float] = "sqnr", *,
                labels: Any = None, calibration_data: Any = None, per_channel: bool = True,
                activation_dtype: str = "int8", method: str = "minmax",
                percentile: float = 99.99, exclude: Iterable[str] = (),
                layers: Iterable[str] | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                num_batches: int | None = None, optimization: str = "all",
                providers: Sequence[str] | None = None) -> SensitivityReport:
    """Score the model with each quantizable layer quantized alone (see the module
    docstring). ``data`` calibrates (unless ``calibration_data`` is given) and evaluates;
    ``layers`` restricts the candidates; the other options are :func:`quantize_static`'s.
    """
    _check_options(per_channel, method, percentile)
    check_activation_dtype(activation_dtype)
    if not callable(metric) and metric not in METRICS:
        raise QuantizationError(f"unknown metric {metric!r}; choose one of "
                                f"{', '.join(METRICS)} or pass a function graph -> score")
    if calibration_data is None and is_one_shot(data):
        raise QuantizationError("sensitivity reads data twice (calibration, then evaluation) "
                                "and a generator can be read only once: pass a list, an array "
                                "or a DataLoader, or give calibration_data separately")
    prepared = prepare(graph, optimization)
    everything, candidates = candidate_layers(prepared, activation_dtype, exclude, layers)
    calibration = _calibrate(prepared, data if calibration_data is None else calibration_data,
                             method, percentile, batch_size, num_batches, providers)
    variants = [build_static(prepared, calibration, per_channel=per_channel,
                             activation_dtype=activation_dtype, optimization=optimization,
                             exclude=exclude,
                             layer_dtypes=_layer_settings(everything, d, activation_dtype))
                for d in candidates]
    if callable(metric):
        float_score = _call_metric(metric, graph, "the float graph")
        scores = [_call_metric(metric, v, d.layer) for v, d in zip(variants, candidates)]
        name = getattr(metric, "__name__", "metric")
    else:
        float_score, scores = _output_metric(prepared, variants, data, metric, labels,
                                             batch_size, num_batches, providers)
        name = metric
    entries = [LayerSensitivity(d.name, d.layer, d.op_type, s,
                                None if math.isinf(float_score) else float_score - s)
               for d, s in zip(candidates, scores, strict=True)]
    order = {d.name: i for i, d in enumerate(candidates)}
    entries.sort(key=lambda e: (e.score, order[e.name]))
    settings = {"activation_dtype": activation_dtype, "per_channel": per_channel,
                "calibration_method": method, "calibration_samples": calibration.num_samples}
    return SensitivityReport(name, float_score, entries, settings)


def _calibrate(prepared: Graph, data: Any, method: str, percentile: float, batch_size: int,
               num_batches: int | None, providers: Sequence[str] | None) -> CalibrationResult:
    try:
        return calibrate_graph(prepared, data, method=method, percentile=percentile,
                               num_calibration_batches=num_batches, batch_size=batch_size,
                               providers=providers)
    except QuantizationError:
        raise
    except EdgeFWError as exc:
        raise QuantizationError(f"calibration failed: {exc}") from exc


def _call_metric(metric: Callable[[Graph], float], graph: Graph, what: str) -> float:
    score = metric(graph)
    if isinstance(score, bool) or not isinstance(score, int | float | np.number) \
            or not math.isfinite(float(score)):
        raise QuantizationError(f"the metric returned {score!r} for {what}; it must return a "
                                "finite number (higher is better)")
    return float(score)


def _output_metric(prepared: Graph, variants: list[Graph], data: Any, metric: str, labels: Any,
                   batch_size: int, num_batches: int | None,
                   providers: Sequence[str] | None) -> tuple[float, list[float]]:
    """Float score and per-variant scores of a string metric, in one pass over ``data``."""
    from runtime import InferenceSession

    sessions = [InferenceSession(g, providers=providers) for g in [prepared] + variants]
    stats = [ErrorStats() for _ in variants]
    correct = [0] * len(sessions)
    seen = 0
    label_array = None if labels is None else np.asarray(labels).reshape(-1)
    reader = BatchReader(prepared.inputs, data, batch_size=batch_size, max_batches=num_batches,
                         what="data")
    for feed, targets in reader.with_targets():
        outputs = [s.run(None, feed) for s in sessions]
        n = BatchReader._batch_len(feed)
        if metric == "accuracy":
            if label_array is not None:
                if seen + n > len(label_array):
                    raise QuantizationError(f"labels has {len(label_array)} entries, fewer "
                                            "than the samples in data")
                targets = label_array[seen:seen + n]
            if targets is None:
                raise QuantizationError("metric 'accuracy' needs labels: pass labels=... or "
                                        "data batches (inputs, labels)")
            targets = np.asarray(targets).reshape(-1)
            for i, out in enumerate(outputs):
                correct[i] += int(np.sum(np.argmax(out[0], axis=-1).reshape(-1) == targets))
        for s, out in zip(stats, outputs[1:], strict=True):
            # SQNR over every output; agreement compares the first (the class scores).
            pairs = zip(outputs[0], out, strict=True) if metric == "sqnr" else \
                [(outputs[0][0], out[0])]
            for ref, got in pairs:
                s.update(ref, got)
        seen += n
    if metric == "sqnr":
        return math.inf, [s.sqnr_db for s in stats]
    if metric == "agreement":
        if any(s.agreement is None for s in stats):
            raise QuantizationError("metric 'agreement' needs an output with a class axis "
                                    "(shape (N, classes))")
        return 100.0, [float(s.agreement) for s in stats]
    return 100.0 * correct[0] / seen, [100.0 * c / seen for c in correct[1:]]


__all__ = ["METRICS", "LayerSensitivity", "SensitivityReport", "candidate_layers",
           "sensitivity"]
