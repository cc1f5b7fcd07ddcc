"""Per-node timing collected by ``InferenceSession(..., enable_profiling=True)``.

>>> report = session.profile()          # doctest: +SKIP
>>> print(report)                       # doctest: +SKIP
profile of graph 'mlp': 100 runs, 9.8 us/run (8.9 us in kernels)
op type   nodes  calls  total ms  mean us     %
Gemm          2    200     0.791     3.95  88.9
...
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeProfile:
    """Time spent in one node's kernel, accumulated over ``calls`` runs."""

    name: str
    op_type: str
    module_path: str | None
    provider: str
    calls: int
    total_s: float

    @property
    def mean_us(self) -> float:
        return 1e6 * self.total_s / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class OpTypeProfile:
    op_type: str
    nodes: int
    calls: int
    total_s: float
    percent: float


@dataclass(frozen=True)
class ProfileReport:
    """Records per node (graph order) and per op type (most expensive first)."""

    graph_name: str
    runs: int
    run_total_s: float
    records: list[NodeProfile]
    by_op_type: list[OpTypeProfile]

    @property
    def kernel_total_s(self) -> float:
        return sum(r.total_s for r in self.records)

    def table(self, top_nodes: int = 10) -> str:
        """The summary table: op type totals with % of kernel time, then the top nodes."""
        per_run = 1e6 * self.run_total_s / self.runs if self.runs else 0.0
        in_kernels = 1e6 * self.kernel_total_s / self.runs if self.runs else 0.0
        lines = [f"profile of graph '{self.graph_name}': {self.runs} runs, {per_run:.1f} us/run "
                 f"({in_kernels:.1f} us in kernels)"]
        rows = [("op type", "nodes", "calls", "total ms", "mean us", "%")]
        for op in self.by_op_type:
            mean = 1e6 * op.total_s / op.calls if op.calls else 0.0
            rows.append((op.op_type, str(op.nodes), str(op.calls), f"{1e3 * op.total_s:.3f}",
                         f"{mean:.2f}", f"{op.percent:.1f}"))
        lines += _align(rows, left=1)
        if self.records:
            total = self.kernel_total_s or 1.0
            lines.append(f"top nodes (of {len(self.records)}):")
            rows = [("node", "op type", "module", "mean us", "%")]
            for r in sorted(self.records, key=lambda r: -r.total_s)[:top_nodes]:
                rows.append((r.name, r.op_type, r.module_path or "-", f"{r.mean_us:.2f}",
                             f"{100 * r.total_s / total:.1f}"))
            lines += _align(rows, left=3)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _align(rows: list[tuple[str, ...]], left: int) -> list[str]:
    """Columns padded to width: the first ``left`` left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) if i < left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows]


def summarize(graph_name: str, runs: int, run_total_s: float,
              records: list[NodeProfile]) -> ProfileReport:
    """Group node records by op type, most expensive first."""
    total = sum(r.total_s for r in records) or 1.0
    groups: dict[str, list[NodeProfile]] = {}
    for r in records:
        groups.setdefault(r.op_type, []).append(r)
    by_op = [
        OpTypeProfile(op, len(rs), sum(r.calls for r in rs), sum(r.total_s for r in rs),
                      100.0 * sum(r.total_s for r in rs) / total)
        for op, rs in groups.items()
    ]
    by_op.sort(key=lambda o: -o.total_s)
    return ProfileReport(graph_name, runs, run_total_s, records, by_op)


__all__ = ["NodeProfile", "OpTypeProfile", "ProfileReport", "summarize"]
