"""The demo's result: one row per (model variant, file format, runtime), printed as one
table and written as Markdown, JSON and (with matplotlib) a PNG chart.

    >>> row = DemoRow("int8", "static int8 per-channel", "tflite", "mlp_int8.tflite", 104_448,
    ...               "TFLite interpreter", accuracy=97.6, delta_pp=-0.1, agreement=100.0,
    ...               max_diff=0.0, latency_ms=0.012)
    >>> format_table([row]).splitlines()[2].split()[:6]
    ['int8', '.tflite', '102.0', 'KiB', 'TFLite', 'interpreter']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefw.fileio import write_report

MARKDOWN_FILE, JSON_FILE, CHART_FILE = "report.md", "report.json", "chart.png"
HEADER = ("model", "file", "size", "runtime", "accuracy", "Δ vs float", "top-1 = edgefw cpu",
          "max |Δ|", "latency b1")


@dataclass
class DemoRow:
    """One file on one runtime. ``agreement``: % of test images whose predicted class
    equals edgefw CPU's on the same file; ``max_diff``: the largest output difference from
    it; ``delta_pp``: accuracy minus the float32 file's on the same runtime and format
    (percentage points); ``latency_ms``: p50 at batch 1. ``status``: why there are no
    numbers (runtime missing, export failed...)."""

    variant: str
    description: str
    format: str
    file: str | None
    file_bytes: int | None
    runtime: str
    accuracy: float | None = None
    delta_pp: float | None = None
    agreement: float | None = None
    max_diff: float | None = None
    latency_ms: float | None = None
    float_agreement: float | None = None
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in self.__dict__.items()}

    def cells(self, first_of_variant: bool, first_of_file: bool) -> list[str]:
        size = "-" if self.file_bytes is None else f"{self.file_bytes / 1024:.1f} KiB"
        head = [self.variant if first_of_variant else "",
                f".{self.format}" if first_of_file else "", size if first_of_file else ""]
        if self.status is not None:
            return head + [self.runtime, self.status, "", "", "", ""]
        agreement = "(reference)" if self.runtime == "edgefw cpu" else _num(self.agreement,
                                                                           "{:.2f}%")
        return head + [self.runtime, _num(self.accuracy, "{:.2f}%"),
                       _num(self.delta_pp, "{:+.2f} pp"), agreement,
                       "" if self.runtime == "edgefw cpu" else _num(self.max_diff, "{:.2g}"),
                       _latency(self.latency_ms)]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3f} ms" if ms < 1 else f"{ms:.2f} ms" if ms < 100 else f"{ms:.0f} ms"


def _grid(rows: list[DemoRow]) -> list[list[str]]:
    grid = []
    for i, row in enumerate(rows):
        prev = rows[i - 1] if i else None
        first_variant = prev is None or prev.variant != row.variant
        first_file = first_variant or prev.format != row.format
        grid.append(row.cells(first_variant, first_file))
    return grid


def format_table(rows: list[DemoRow]) -> str:
    """The aligned plain-text table the demo prints (a status spans the numeric columns)."""
    grid = _grid(rows)
    # A status (e.g. "TFLite export failed: ...") spans the numeric columns: it does not
    # widen them.
    widths = [max([len(HEADER[c])] + [len(g[c]) for g, r in zip(grid, rows)
                                        if r.status is None or c < 4])
              for c in range(len(HEADER))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for cells, row in zip(grid, rows):
        if row.status is not None:
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells[:4], widths[:4]))
                         + "  " + row.status)
        else:
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines)


def markdown_table(rows: list[DemoRow]) -> str:
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in HEADER) + " |",
             "|" + "|".join("---" for _ in HEADER) + "|"]
    for cells, row in zip(_grid(rows), rows):
        if row.status is not None:
            cells = cells[:5] + [""] * (len(HEADER) - 5)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


@dataclass
class DemoReport:
    """Everything the demo measured, and where it wrote it."""

    title: str
    rows: list[DemoRow]
    settings: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    runtimes: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def row(self, variant: str, fmt: str, runtime: str) -> DemoRow:
        for r in self.rows:
            if (r.variant, r.format, r.runtime) == (variant, fmt, runtime):
                return r
        raise KeyError(f"no row ({variant}, {fmt}, {runtime}) in the report")

    def table(self) -> str:
        return format_table(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "settings": self.settings, "facts": self.facts,
                "rows": [r.to_dict() for r in self.rows], "notes": self.notes,
                "runtimes": self.runtimes, "timings_s": self.timings, "files": self.files}

    def to_markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        lines += [f"- {k}: {v}" for k, v in self.facts.items()]
        lines += ["", markdown_table(self.rows), "",
                  "Columns: accuracy on the test images; Δ vs float: against the float32 file "
                  "on the same runtime, in percentage points; top-1 = edgefw cpu: the share of "
                  "test images whose predicted class equals edgefw's CPU provider's on the same "
                  "file, and max |Δ| the largest output difference from it; latency: p50 of "
                  "one image (batch 1) in this process.", ""]
        if self.runtimes:
            lines += ["## Runtimes", ""] + [f"- {k}: {v}" for k, v in self.runtimes.items()]
            lines.append("")
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        if self.timings:
            lines += ["## Time", ""] + [f"- {k}: {v:.1f} s" for k, v in self.timings.items()]
            lines.append("")
        return "\n".join(lines)

    def save(self, folder: str | Path) -> dict[str, str]:
        """Write report.md, report.json and (with matplotlib) chart.png into ``folder``."""
        png = render_chart(self)
        if png is None:
            self.notes.append("no chart: matplotlib is not installed (pip install "
                              "'edgefw[plot]')")
        self.files.update(write_report(folder, markdown=(MARKDOWN_FILE, self.to_markdown()),
                                       json_data=(JSON_FILE, self.to_dict()),
                                       chart=(CHART_FILE, png)))
        return dict(self.files)


def render_chart(report: DemoReport) -> bytes | None:
    """Accuracy against file size and against batch-1 latency, per variant on edgefw's CPU
    provider — the chart of :func:`quantize.compare`, drawn from the demo's ``.onnx`` rows.
    None without matplotlib."""
    try:
        from quantize.compare_report import ComparisonReport, VariantResult, render_chart
    except ImportError:
        return None
    rows = [VariantResult(r.variant, r.description, accuracy=r.accuracy,
                          file_bytes=r.file_bytes, latency_batch_ms=r.latency_ms)
            for r in report.rows if r.runtime == "edgefw cpu" and r.format == "onnx"
            and r.accuracy is not None]
    if not rows:
        return None
    return render_chart(ComparisonReport(report.title, 0, 0, rows,
                                         settings={"latency_batch": 1}))


__all__ = ["CHART_FILE", "JSON_FILE", "MARKDOWN_FILE", "DemoReport", "DemoRow", "format_table",
           "markdown_table", "render_chart"]
