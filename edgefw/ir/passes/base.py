"""What every graph pass is: a small object with a ``name`` whose ``run(graph)`` rewrites the
graph in place and says, in a :class:`PassResult`, whether it changed anything.

    >>> from edgefw.ir import Graph
    >>> class CountNodesPass(Pass):
    ...     name = "count_nodes"
    ...     def run(self, graph: Graph) -> PassResult:
    ...         return PassResult(False, notes=[f"{len(graph.nodes)} nodes"])
    >>> CountNodesPass().run(Graph()).changed
    False

A pass must leave a graph that verifies (``graph.check()``); the
:class:`~edgefw.ir.passes.PassManager` checks that after each pass that changed the graph.
Passes share a few small graph queries, kept here so each pass file reads as its pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value


@dataclass
class PassResult:
    """What one run of a pass did: ``changed`` (the graph differs), how many rewrites it made
    and a human-readable note per rewrite (``"folded bn1 into conv1"``)."""

    changed: bool
    rewrites: int = 0
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_notes(cls, notes: list[str]) -> PassResult:
        """A result with one rewrite per note; changed when there is at least one."""
        return cls(bool(notes), len(notes), list(notes))


class Pass:
    """Base class of graph passes: subclasses set ``name`` and implement :meth:`run`."""

    #: Short snake_case name used in reports and errors (``"fold_batch_norm"``).
    name: str = "pass"

    def run(self, graph: Graph) -> PassResult:
        """Rewrite ``graph`` in place; say whether it changed."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run()")

    def __call__(self, graph: Graph) -> PassResult:
        return self.run(graph)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# ---------------------------------------------------------------- shared graph queries
def single_consumer(graph: Graph, value: Value,
                    uses: dict[int, list[tuple[Node, int]]] | None = None) -> Node | None:
    """The only node reading ``value`` (read once), provided ``value`` is not also a graph
    output; else None. Fusions use it: rewriting a value that someone else also reads
    would change what that reader sees."""
    if graph.is_output(value):
        return None
    readers = uses.get(id(value), []) if uses is not None else [
        (n, i) for n in graph.nodes for i, v in enumerate(n.inputs) if v is value
    ]
    if len(readers) != 1:
        return None
    return readers[0][0]


def carries_quant(*values: Value | None) -> bool:
    """True when any of ``values`` has quantization parameters: fusions that merge values
    skip those, since the parameters describe the unfused value's range."""
    return any(v is not None and v.quant is not None for v in values)


def absorb_node(graph: Graph, node: Node, replacement: Value) -> None:
    """Remove single-output ``node`` after pointing its readers (and graph outputs) at
    ``replacement``, which then takes the removed output's name: a fused Conv's output is
    called after the last op it absorbed (``features.0.relu``), as users of the unfused graph
    knew it."""
    old = node.output
    name = old.name
    graph.replace_all_uses(old, replacement)
    graph.remove_node(node)
    if replacement.name != name and not graph.has_value(name):
        graph.rename_value(replacement, name)


__all__ = ["Pass", "PassResult", "absorb_node", "carries_quant", "single_consumer"]
