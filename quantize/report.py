"""The per-layer report: how far each quantized layer's output drifts from float.

For every quantized layer (named by module path) it runs the float graph and the quantized
graph side by side on the same data and compares the layer's output — the dequantized
value the next layer reads — with the float graph's: SQNR in dB (signal power over error
power; each 6 dB is about one bit) and the largest and mean absolute error. Rows are sorted
worst first, so the layer to look at (keep in float, calibrate differently, move to 16x8)
is on top. Errors accumulate through the network: the report shows where they become
large; :func:`quantize.sensitivity` shows which layer causes them.

    >>> import numpy as np, edgefw, quantize
    >>> from edgefw import models
    >>> g = edgefw.trace(models.build("lenet"), np.zeros((1, 1, 28, 28), np.float32))
    >>> data = np.random.default_rng(0).random((32, 1, 28, 28), np.float32)
    >>> report = layer_report(g, quantize.quantize_static(g, data), data)
    >>> [row.layer for row in report.layers][:1] != []  # worst first
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgefw.errors import EdgeFWError, QuantizationError
from edgefw.ir import Graph
from edgefw.ir.graph import Node, Value
from quantize.calibration import DEFAULT_BATCH_SIZE, BatchReader
from quantize.evaluation import ErrorStats, finite_or_none, format_db
from quantize.ptq import prepare, quantization_info

_QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class LayerError:
    """One row: layer ``layer`` (module path, else node name) of op ``op_type`` quantized to
    ``dtype``, and the error of its output (float tensor ``output``; in the quantized graph,
    the DequantizeLinear after it) against float."""

    name: str
    layer: str
    op_type: str
    dtype: str | None
    output: str
    sqnr_db: float
    max_abs_error: float
    mean_abs_error: float
    agreement: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "layer": self.layer, "op_type": self.op_type,
                "dtype": self.dtype, "output": self.output,
                "sqnr_db": finite_or_none(self.sqnr_db), "max_abs_error": self.max_abs_error,
                "mean_abs_error": self.mean_abs_error, "top1_agreement": self.agreement}


@dataclass
class QuantizationReport:
    """Per-layer errors (``layers``, worst first), the model outputs' errors (``outputs``),
    the layers left float and why (``float_layers``), and the data it was measured on."""

    graph_name: str
    layers: list[LayerError]
    outputs: list[LayerError]
    float_layers: dict[str, str] = field(default_factory=dict)
    num_samples: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    def worst(self, n: int = 5) -> list[LayerError]:
        return self.layers[:n]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (infinite SQNR, i.e. no error at all, is None)."""
        return {"graph": self.graph_name, "num_samples": self.num_samples,
                "settings": dict(self.settings),
                "layers": [row.to_dict() for row in self.layers],
                "outputs": [row.to_dict() for row in self.outputs],
                "float_layers": dict(self.float_layers)}

    def _rows(self) -> list[list[str]]:
        return [[str(i), row.layer, row.op_type, row.dtype or "-", format_db(row.sqnr_db),
                 f"{row.max_abs_error:.4g}", f"{row.mean_abs_error:.4g}"]
                for i, row in enumerate(self.layers, 1)]

    def _header(self) -> str:
        s = self.settings
        mode = ", ".join(str(s[k]) for k in ("activation_dtype", "granularity",
                                             "calibration_method") if s.get(k))
        return (f"Quantization report for '{self.graph_name}' on {self.num_samples} samples"
                + (f" ({mode})" if mode else ""))

    def _output_lines(self) -> list[str]:
        lines = []
        for row in self.outputs:
            agreement = "" if row.agreement is None else \
                f", top-1 agreement {row.agreement:.2f}%"
            lines.append(f"model output {row.output!r}: SQNR {format_db(row.sqnr_db)} dB, "
                         f"max |error| {row.max_abs_error:.4g}{agreement}")
        return lines

    def __str__(self) -> str:
        header = ["#", "layer", "op", "dtype", "SQNR dB", "max |err|", "mean |err|"]
        rows = self._rows()
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
        right = {0, 4, 5, 6}

        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        out = [self._header(), line(header), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        out += self._output_lines()
        if self.float_layers:
            out.append("kept float:")
            out += [f"  {name}: {why}" for name, why in self.float_layers.items()]
        return "\n".join(out)

    def to_markdown(self) -> str:
        header = ["#", "layer", "op", "dtype", "SQNR (dB)", "max abs error", "mean abs error"]
        out = [f"**{self._header()}**", "", "| " + " | ".join(header) + " |",
               "|" + "---|" * 3 + "---|" + "---:|" * 3]
        out += ["| " + " | ".join(r) + " |" for r in self._rows()]
        out += [""] + [f"- {line}" for line in self._output_lines()]
        if self.float_layers:
            out += ["", "Kept float:", ""]
            out += [f"- `{name}`: {why}" for name, why in self.float_layers.items()]
        return "\n".join(out) + "\n"


# ------------------------------------------------------------------------- build
def _dequantized_output(graph: Graph, value: Value) -> Value | None:
    """The DequantizeLinear output after ``value -> QuantizeLinear``, if there is one."""
    for q in graph.consumers(value):
        if q.op_type == "QuantizeLinear" and q.inputs[0] is value:
            for dq in graph.consumers(q.output):
                if dq.op_type == "DequantizeLinear":
                    return dq.output
    return None


def _layers(quant_graph: Graph, info: dict[str, Any] | None) -> list[tuple[Node, str, str | None]]:
    """``(node, float reference value name, dtype)`` of every quantized layer."""
    found = []
    if info and isinstance(info.get("nodes"), list):
        for rec in info["nodes"]:
            if rec.get("kind") in ("weighted", "activation") and _has_node(quant_graph,
                                                                          rec["name"]):
                found.append((quant_graph.node(rec["name"]), rec["output"], rec.get("dtype")))
        return found
    for node in quant_graph.nodes:  # a QDQ graph from elsewhere: layers feed a QuantizeLinear
        if node.op_type in _QDQ or not node.outputs:
            continue
        dq = _dequantized_output(quant_graph, node.outputs[0])
        if dq is not None:
            q_value = dq.producer.inputs[0]
            name = node.outputs[0].name
            if name.endswith("_float") and quant_graph.is_output(dq):
                name = dq.name
            found.append((node, name, q_value.dtype))
    return found


def layer_report(float_graph: Graph, quant_graph: Graph, data: Any, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, num_batches: int | None = None,
                 providers: Sequence[str] | None = None) -> QuantizationReport:
    """Compare every quantized layer of ``quant_graph`` with ``float_graph`` on ``data``
    (any calibration-data form; at most ``num_batches`` batches), in one pass over the
    data; see the module docstring."""
    from runtime import InferenceSession

    if not isinstance(quant_graph, Graph):
        raise QuantizationError(f"quant_graph must be an edgefw.ir.Graph, got "
                                f"{type(quant_graph).__name__}")
    info = quantization_info(quant_graph)
    reference = prepare(float_graph, (info or {}).get("optimization", "all"))
    rows: list[tuple[Node, str, Value, str | None]] = []
    skipped: list[str] = []
    for node, ref_name, dtype in _layers(quant_graph, info):
        output = _dequantized_output(quant_graph, node.outputs[0]) or node.outputs[0]
        if not reference.has_value(ref_name):
            skipped.append(node.name)
            continue
        rows.append((node, ref_name, output, dtype))
    if not rows:
        raise QuantizationError(f"graph '{quant_graph.name}' has no quantized layer that "
                                f"matches a tensor of float graph '{float_graph.name}'")
    if [v.name for v in reference.inputs] != [v.name for v in quant_graph.inputs]:
        raise QuantizationError("the float and quantized graphs have different inputs: "
                                f"{[v.name for v in reference.inputs]} vs "
                                f"{[v.name for v in quant_graph.inputs]}")

    float_outputs = [v.name for v in reference.outputs]
    quant_outputs = [v.name for v in quant_graph.outputs]
    if len(float_outputs) != len(quant_outputs):
        raise QuantizationError("the float and quantized graphs have different numbers of "
                                "outputs")
    float_view, float_index = _with_outputs(reference,
                                            float_outputs + [ref for _, ref, _, _ in rows])
    quant_view, quant_index = _with_outputs(quant_graph,
                                            quant_outputs + [out.name for *_, out, _ in rows])
    try:
        float_session = InferenceSession(float_view, providers=providers, optimization="none")
        quant_session = InferenceSession(quant_view, providers=providers, optimization="none")
    except EdgeFWError as exc:
        raise QuantizationError(f"cannot run the graphs for the report: {exc}") from exc
    stats = [ErrorStats() for _ in range(len(float_outputs) + len(rows))]
    reader = BatchReader(reference.inputs, data, batch_size=batch_size, max_batches=num_batches,
                         what="data")
    samples = 0
    for feed in reader:
        float_results = float_session.run(None, feed)
        quant_results = quant_session.run(None, feed)
        for s, i, j in zip(stats, float_index, quant_index, strict=True):
            s.update(float_results[i], quant_results[j])
        samples += BatchReader._batch_len(feed)

    n_out = len(float_outputs)
    layers = [LayerError(node.name, node.module_path or node.name, node.op_type, dtype,
                         ref, s.sqnr_db, s.max_abs_error, s.mean_abs_error)
              for (node, ref, _, dtype), s in zip(rows, stats[n_out:], strict=True)]
    order = {node.name: i for i, node in enumerate(quant_graph.nodes)}
    layers.sort(key=lambda r: (r.sqnr_db, -r.max_abs_error, order.get(r.name, 0)))
    outputs = [LayerError(name, name, "output", None, name, s.sqnr_db, s.max_abs_error,
                          s.mean_abs_error, s.agreement)
               for name, s in zip(quant_outputs, stats[:n_out], strict=True)]
    float_layers = {}
    if info:
        for rec in info.get("nodes", []):
            if rec.get("kind") == "float" and rec.get("reason"):
                float_layers[rec.get("module_path") or rec["name"]] = rec["reason"]
    for name in skipped:
        float_layers.setdefault(name, "no matching tensor in the float graph; not compared")
    settings = {}
    if info:
        settings = {"mode": info.get("mode"), "activation_dtype": info.get("activation_dtype"),
                    "granularity": "per-channel" if info.get("per_channel") else "per-tensor",
                    "calibration_method": info.get("calibration_method")}
    return QuantizationReport(quant_graph.name, layers, outputs, float_layers, samples, settings)


def _has_node(graph: Graph, name: str) -> bool:
    return any(n.name == name for n in graph.nodes)


def _with_outputs(graph: Graph, names: list[str]) -> tuple[Graph, list[int]]:
    """A copy of ``graph`` returning each of ``names`` once, and the position of each name
    among its outputs."""
    unique = list(dict.fromkeys(names))
    copy = graph.copy()
    copy.set_outputs([copy.value(n) for n in unique])
    position = {n: i for i, n in enumerate(unique)}
    return copy, [position[n] for n in names]


__all__ = ["LayerError", "QuantizationReport", "layer_report"]
