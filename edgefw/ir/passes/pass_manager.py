"""The pass manager: run passes to a fixed point, verify the graph after each, report.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 8))
    >>> fc = g.add_node("Gemm", [x, np.ones((4, 8), np.float32)], {"transB": 1}, name="fc")
    >>> relu = g.add_node("Relu", [g.add_node("Identity", [fc.output]).output], name="relu")
    >>> g.set_outputs([relu.output])
    >>> report = PassManager.for_level("all").run(g)
    >>> report.summary()
    'remove_identity: 1, fuse_activation: 1'
    >>> print(g)  # doctest: +NORMALIZE_WHITESPACE
    graph graph(%x: float32[batch,8]) -> (%relu)  opset 17
      constants (1 constants, 128 B): fc.in1 float32[4,8]
      %relu = Gemm[+Relu](%x, fc.in1, transB=1)  # float32[batch,4]
      return %relu

:func:`optimize` is what ``runtime.InferenceSession(graph, optimization=level)`` calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgefw.errors import ConfigError, EdgeFWError, GraphError
from edgefw.ir.passes.base import Pass, PassResult
from edgefw.ir.passes.eliminate_dead_code_pass import EliminateDeadCodePass
from edgefw.ir.passes.fold_batch_norm_pass import FoldBatchNormPass
from edgefw.ir.passes.fold_constants_pass import FoldConstantsPass
from edgefw.ir.passes.fold_layer_norm_affine_pass import FoldLayerNormAffinePass
from edgefw.ir.passes.fuse_activation_pass import FuseActivationPass
from edgefw.ir.passes.fuse_dense_pass import FuseDensePass
from edgefw.ir.passes.fuse_gelu_pass import FuseGeluPass
from edgefw.ir.passes.fuse_matmul_add_pass import FuseMatMulAddPass
from edgefw.ir.passes.fuse_pad_into_conv_pass import FusePadIntoConvPass
from edgefw.ir.passes.infer_shapes_pass import InferShapesPass
from edgefw.ir.passes.integer_execution import integer_execution_passes
from edgefw.ir.passes.mark_sequential_sums_pass import MarkSequentialSumsPass
from edgefw.ir.passes.remove_identity_pass import RemoveIdentityPass

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph

#: Optimization levels, from none to most.
LEVELS = ("none", "basic", "all")
#: When the manager verifies the graph: after each pass that changed it, after every pass,
#: or never (the runtime still verifies the final graph).
CHECK_MODES = ("changed", "each", "none")
DEFAULT_MAX_ITERATIONS = 10


def runtime_passes() -> list[Pass]:
    """The passes that rewrite into edgefw-internal ops, for the runtime session's own copy
    of a graph: TFLite's summation order marked in quantized graphs, the integer-execution
    passes, then MatMul + bias -> ``Dense`` and LayerNorm scale/bias folded into it."""
    return [MarkSequentialSumsPass(), *integer_execution_passes(), FuseDensePass(),
            FoldLayerNormAffinePass()]


def passes_for_level(level: str, *, integer_kernels: bool = False) -> list[Pass]:
    """Fresh pass instances for optimization ``level`` (see :data:`LEVELS`).

    ``basic`` keeps every op the model had but cleans the graph: shape inference, constant
    folding, identity removal, dead code. ``all`` adds the rewrites that change op types:
    Pad -> Conv padding, BatchNorm folding, MatMul + Add -> Gemm, the GELU decompositions ->
    Gelu, activation fusion, and
    with ``integer_kernels=True`` (what the runtime's session asks for on its own copy of the
    graph), QDQ groups -> the runtime's integer kernels
    (:mod:`~edgefw.ir.passes.integer_execution`) and stacked MatMul + bias -> ``Dense``
    (:class:`~edgefw.ir.passes.FuseDensePass`). Those ops are edgefw-internal, so the default
    leaves QDQ groups as they are: the graph stays portable (exporters write the QDQ form).
    """
    if level not in LEVELS:
        raise ConfigError(f"unknown optimization level {level!r}; choose one of "
                          f"{', '.join(LEVELS)}")
    if level == "none":
        return []
    fusions: list[Pass] = []
    if level == "all":
        fusions = [FusePadIntoConvPass(), FoldBatchNormPass(), FuseMatMulAddPass(),
                   FuseGeluPass(), FuseActivationPass(),
                   *(runtime_passes() if integer_kernels else [])]
    return [InferShapesPass(), FoldConstantsPass(), RemoveIdentityPass(), *fusions,
            EliminateDeadCodePass()]


@dataclass
class PassRecord:
    """One run of one pass: which pass, in which iteration (from 1), what it did."""

    pass_name: str
    iteration: int
    result: PassResult


@dataclass
class OptimizationReport:
    """Every pass run by :meth:`PassManager.run`, and whether a fixed point was reached."""

    records: list[PassRecord] = field(default_factory=list)
    iterations: int = 0
    converged: bool = True

    @property
    def changed(self) -> bool:
        return any(r.result.changed for r in self.records)

    def rewrites_by_pass(self) -> dict[str, int]:
        """``{pass name: rewrites}`` for the passes that changed the graph, in first-change
        order."""
        counts: dict[str, int] = {}
        for r in self.records:
            if r.result.changed:
                counts[r.pass_name] = counts.get(r.pass_name, 0) + max(r.result.rewrites, 1)
        return counts

    def summary(self) -> str:
        """``"fold_batch_norm: 13, fuse_activation: 13"``; empty when nothing changed."""
        return ", ".join(f"{name}: {n}" for name, n in self.rewrites_by_pass().items())

    def notes(self) -> list[str]:
        """Every rewrite note, prefixed with its pass name."""
        return [f"{r.pass_name}: {note}" for r in self.records for note in r.result.notes]

    def __str__(self) -> str:
        state = "converged" if self.converged else "stopped at the iteration limit"
        return (f"{self.iterations} iteration{'s' if self.iterations != 1 else ''}, {state}; "
                f"{self.summary() or 'no changes'}")


class PassManager:
    """Run ``passes`` in order, repeatedly, until an iteration changes nothing (or
    ``max_iterations`` is reached), verifying the graph as ``check`` says.

    ``check``: ``"changed"`` (default; True) verifies before the first pass and after each
    pass that changed the graph, ``"each"`` after every pass, ``"none"`` (False) never. A
    pass that leaves an invalid graph, or fails, raises GraphError naming the pass.
    """

    def __init__(self, passes: Sequence[Pass], *, max_iterations: int = DEFAULT_MAX_ITERATIONS,
                 check: bool | str = "changed") -> None:
        if max_iterations < 1:
            raise ConfigError(f"max_iterations must be >= 1, got {max_iterations}")
        mode = ("changed" if check else "none") if isinstance(check, bool) else check
        if mode not in CHECK_MODES:
            raise ConfigError(f"check must be a bool or one of {', '.join(CHECK_MODES)}, "
                              f"got {check!r}")
        for p in passes:
            if not isinstance(p, Pass):
                raise ConfigError(f"{p!r} is not a Pass (subclass edgefw.ir.passes.Pass)")
        self.passes = list(passes)
        self.max_iterations = max_iterations
        self.check = mode

    @classmethod
    def for_level(cls, level: str, **kwargs) -> PassManager:
        """The manager running :func:`passes_for_level` ``(level)``."""
        return cls(passes_for_level(level), **kwargs)

    def run(self, graph: Graph) -> OptimizationReport:
        """Optimize ``graph`` in place; returns what each pass did."""
        report = OptimizationReport()
        if not self.passes:
            return report
        if self.check != "none":
            _verify(graph, "before optimization (the input graph is invalid)")
        report.converged = False
        for iteration in range(1, self.max_iterations + 1):
            report.iterations = iteration
            changed = False
            for p in self.passes:
                result = _run_pass(p, graph)
                report.records.append(PassRecord(p.name, iteration, result))
                changed = changed or result.changed
                if self.check == "each" or (self.check == "changed" and result.changed):
                    _verify(graph, f"after pass '{p.name}' (iteration {iteration})")
            if not changed:
                report.converged = True
                break
        return report


def _run_pass(p: Pass, graph: Graph) -> PassResult:
    try:
        result = p.run(graph)
    except EdgeFWError as exc:
        raise GraphError(f"pass '{p.name}' failed on graph '{graph.name}': {exc}") from exc
    if not isinstance(result, PassResult):
        raise GraphError(f"pass '{p.name}' returned {type(result).__name__}, not a PassResult")
    return result


def _verify(graph: Graph, when: str) -> None:
    try:
        graph.check()
    except GraphError as exc:
        raise GraphError(f"graph does not verify {when}: {exc}") from exc


def optimize(graph: Graph, level: str = "all", *, integer_kernels: bool = False,
             check: bool | str = "changed",
             max_iterations: int = DEFAULT_MAX_ITERATIONS) -> Graph:
    """Optimize ``graph`` in place at ``level`` (``"none"``, ``"basic"``, ``"all"``) and
    return it. What changed is recorded in ``graph.metadata["passes"]`` (e.g.
    ``"fold_batch_norm: 13, fuse_activation: 13"``); use :class:`PassManager` directly for
    the full :class:`OptimizationReport`. ``integer_kernels=False``: see
    :func:`passes_for_level` (the runtime's session sets it; the default keeps the graph
    portable).

    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", (2,))
    >>> g.set_outputs([g.add_node("Identity", [g.add_node("Relu", [x]).output]).output])
    >>> [n.op_type for n in optimize(g, "basic").nodes], g.metadata["passes"]
    (['Relu'], 'remove_identity: 1')
    """
    manager = PassManager(passes_for_level(level, integer_kernels=integer_kernels), check=check,
                          max_iterations=max_iterations)
    if level == "none":
        return graph
    report = manager.run(graph)
    graph.metadata["optimization_level"] = level
    graph.metadata["passes"] = report.summary()
    return graph


__all__ = [
    "CHECK_MODES",
    "DEFAULT_MAX_ITERATIONS",
    "LEVELS",
    "OptimizationReport",
    "PassManager",
    "PassRecord",
    "optimize",
    "passes_for_level",
    "runtime_passes",
]
