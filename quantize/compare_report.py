"""The result of :func:`quantize.compare`: one row per variant, as a Markdown table, JSON,
and (with matplotlib) a PNG chart. Files are written atomically.

    >>> row = VariantResult("float32", "float32", accuracy=98.1, delta_pp=0.0, agreement=100.0,
    ...                     file_bytes=409_600, size_ratio=1.0)
    >>> print(ComparisonReport("mlp", 10000, 1000, [row]).table().splitlines()[2])
    | float32 | 98.10 | +0.00 | 100.00 | 400.0 | 1.00 | - | - | - | - |
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefw.fileio import write_report

MARKDOWN_FILE, JSON_FILE, CHART_FILE = "comparison.md", "comparison.json", "comparison.png"
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")
COLUMNS = ("variant", "accuracy %", "Δ vs float (pp)", "top-1 agreement %", "ONNX KiB",
           "size × float", "p50 batch 1 (ms)", "p50 batch {batch} (ms)", "ort agrees",
           "ort Δ int kernels (steps)")


@dataclass
class VariantResult:
    """One variant's measurements (None where not measured; ``error`` when it failed)."""

    variant: str
    description: str
    accuracy: float | None = None
    delta_pp: float | None = None
    agreement: float | None = None
    file_bytes: int | None = None
    size_ratio: float | None = None
    latency_b1_ms: float | None = None
    latency_batch_ms: float | None = None
    latency_best_ms: dict[str, float] | None = None  # fastest run per batch size (JSON only)
    ort_agrees: bool | None = None
    ort_max_error: float | None = None  # vs our QDQ reference path
    ort_max_error_deployed: float | None = None  # vs our integer kernels
    ort_tolerance: float | None = None
    ort_tolerance_kind: str = ""
    note: str = ""
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def deployed_steps(self) -> float | None:
        """The deployed path's largest difference from onnxruntime, in tolerance units."""
        if self.ort_max_error_deployed is None or not self.ort_tolerance:
            return None
        return self.ort_max_error_deployed / self.ort_tolerance

    def to_dict(self) -> dict[str, Any]:
        out = {k: _json_value(v) for k, v in self.__dict__.items()}
        out["ort_deployed_steps"] = _json_value(self.deployed_steps)
        out["details"] = {k: _json_value(v) for k, v in self.details.items()}
        return out

    def cells(self) -> list[str]:
        if self.error is not None:
            return [self.variant, "failed"] + ["-"] * (len(COLUMNS) - 2)
        return [self.variant, _num(self.accuracy, "{:.2f}"), _num(self.delta_pp, "{:+.2f}"),
                _num(self.agreement, "{:.2f}"),
                _num(None if self.file_bytes is None else self.file_bytes / 1024, "{:.1f}"),
                _num(self.size_ratio, "{:.2f}"), _num(self.latency_b1_ms, "{:.3f}"),
                _num(self.latency_batch_ms, "{:.2f}"),
                "-" if self.ort_agrees is None else ("yes" if self.ort_agrees else "NO"),
                _num(self.deployed_steps, "{:.1f}")]


@dataclass
class ComparisonReport:
    """Rows per variant plus what was measured on (see :func:`quantize.compare`)."""

    model: str
    samples: int
    calibration_samples: int
    rows: list[VariantResult]
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def row(self, variant: str) -> VariantResult:
        for r in self.rows:
            if r.variant == variant:
                return r
        raise KeyError(f"no variant {variant!r} in the report; it has "
                       f"{[r.variant for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "samples": self.samples,
                "calibration_samples": self.calibration_samples,
                "rows": [r.to_dict() for r in self.rows], "notes": self.notes,
                "settings": {k: _json_value(v) for k, v in self.settings.items()},
                "files": dict(self.files)}

    def table(self) -> str:
        batch = self.settings.get("latency_batch") or "N"
        header = [c.format(batch=batch) for c in COLUMNS]
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r.cells()) + " |" for r in self.rows]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [f"# Quantization comparison: {self.model}", "",
                 f"{self.samples} evaluation images, {self.calibration_samples} calibration "
                 "images; latency on edgefw's CPU provider (p50).", "", self.table(), ""]
        for r in self.rows:
            if r.error:
                lines.append(f"- **{r.variant}** failed: {r.error}")
            if r.note:
                lines.append(f"- **{r.variant}**: {r.note}")
            if r.ort_max_error is not None:
                lines.append(f"- **{r.variant}** vs onnxruntime: max |difference| "
                             f"{r.ort_max_error:.3g} from our QDQ reference path, "
                             f"{r.ort_max_error_deployed:.3g} from our integer kernels "
                             f"(tolerance {r.ort_tolerance:.3g}, {r.ort_tolerance_kind})")
            elif r.ort_agrees is False:
                lines.append(f"- **{r.variant}**: {r.ort_tolerance_kind}")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def __str__(self) -> str:
        return self.table()

    def save(self, output_dir: str | os.PathLike) -> dict[str, str]:
        """Write comparison.md, comparison.json and (with matplotlib) comparison.png into
        ``output_dir``; returns and records their paths."""
        self.files = write_report(output_dir, markdown=(MARKDOWN_FILE, self.to_markdown()),
                                  json_data=(JSON_FILE, self.to_dict()),
                                  chart=(CHART_FILE, render_chart(self)))
        return dict(self.files)


def render_chart(report: ComparisonReport) -> bytes | None:
    """PNG bytes of accuracy vs ONNX size and vs latency, or None without matplotlib.
    Uses matplotlib's object API (no pyplot), so the caller's backend is left alone."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    rows = [r for r in report.rows if r.accuracy is not None]
    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    panels = [("file_bytes", "ONNX file size (KiB)", 1 / 1024),
              ("latency_batch_ms",
               f"p50 latency at batch {report.settings.get('latency_batch')} (ms)", 1.0)]
    for i, (attr, label, factor) in enumerate(panels, 1):
        axes = figure.add_subplot(1, 2, i)
        for r in rows:
            value = getattr(r, attr)
            if value is None:
                continue
            # One colour and marker per variant (listed in the legend): neighbouring int8
            # variants sit on top of each other, where text labels would collide.
            axes.scatter(value * factor, r.accuracy, label=r.variant, s=40,
                         marker=_MARKERS[report.rows.index(r) % len(_MARKERS)])
        axes.set_xlabel(label)
        axes.set_ylabel("accuracy (%)")
        axes.grid(True, alpha=0.3)
    handles, names = figure.axes[0].get_legend_handles_labels()
    if handles:
        figure.axes[0].legend(handles, names, fontsize=8, loc="best")
    figure.suptitle(f"{report.model}: accuracy vs size and latency")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


__all__ = ["CHART_FILE", "JSON_FILE", "MARKDOWN_FILE", "ComparisonReport", "VariantResult",
           "render_chart"]
