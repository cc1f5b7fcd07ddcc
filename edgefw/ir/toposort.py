"""Stable topological ordering (Kahn's algorithm, smallest index first), shared by
``Graph.topological_sort`` and the model loaders."""

from __future__ import annotations

import heapq
from collections.abc import Sequence


def stable_order(deps: Sequence[set[int]]) -> tuple[list[int], list[int]]:
    """Order items ``0..n-1`` so each comes after the items in ``deps[i]``, keeping the
    original order where the dependencies allow. Returns ``(order, unresolved)``:
    ``unresolved`` lists the items on or behind a cycle (empty when ``order`` is complete).

    >>> stable_order([set(), {2}, {0}])
    ([0, 2, 1], [])
    """
    readers: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for j in d:
            readers.setdefault(j, []).append(i)
    remaining = [len(d) for d in deps]
    ready = [i for i, r in enumerate(remaining) if r == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in readers.get(i, ()):
            remaining[j] -= 1
            if remaining[j] == 0:
                heapq.heappush(ready, j)
    return order, [i for i, r in enumerate(remaining) if r > 0]
