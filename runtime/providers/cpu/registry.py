"""The CPU provider's kernel registry: builders registered by decorator into a plain dict.

    @cpu_kernel("Relu")
    def relu(ctx: KernelContext) -> Kernel:
        def run(x):
            return np.maximum(x, 0)
        return run

A builder receives the node (attributes resolved with schema defaults through
``ctx.attr``), the types the planner knows and the constant inputs; it returns the
callable the session runs. Everything that can be decided once (attribute parsing,
transposed weights, folded scales, preallocated outputs) is decided in the builder.

Op semantics that changed across opsets are registered with ``since``/``until``. IR nodes
always use the newest form, so the session asks for ``opset=None`` (newest kernel) unless a
loader kept an old-form node and marked it with ``node.meta["opset"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgefw.errors import UnsupportedOpError
from runtime.providers.base import Kernel, KernelContext

KernelBuilder = Callable[[KernelContext], Kernel]
OUTPUT_ALIASES = ("fresh", "view", "const")


@dataclass(frozen=True)
class KernelSpec:
    """One registered kernel builder.

    ``output_alias``: "fresh" (new arrays every call), "view" (outputs may be views of
    input 0, or input 0 itself) or "const" (returns arrays it holds across calls).
    """

    op_type: str
    domain: str
    since: int
    until: int | None
    build: KernelBuilder
    output_alias: str = "fresh"


_KERNELS: dict[tuple[str, str], list[KernelSpec]] = {}


def cpu_kernel(
    *op_types: str,
    domain: str = "",
    since: int = 1,
    until: int | None = None,
    output_alias: str = "fresh",
) -> Callable[[KernelBuilder], KernelBuilder]:
    """Register the decorated builder for each of ``op_types`` (opsets ``since..until``)."""
    if output_alias not in OUTPUT_ALIASES:
        raise ValueError(f"output_alias must be one of {OUTPUT_ALIASES}, got {output_alias!r}")

    def register(build: KernelBuilder) -> KernelBuilder:
        for op_type in op_types:
            specs = _KERNELS.setdefault((domain, op_type), [])
            for other in specs:
                if _overlap(other, since, until):
                    raise ValueError(f"CPU kernel for {op_type} opsets {since}..{until} overlaps "
                                     f"one registered for {other.since}..{other.until}")
            specs.append(KernelSpec(op_type, domain, since, until, build, output_alias))
            specs.sort(key=lambda s: s.since)
        return build

    return register


def _overlap(spec: KernelSpec, since: int, until: int | None) -> bool:
    a_hi = spec.until if spec.until is not None else 10**9
    b_hi = until if until is not None else 10**9
    return spec.since <= b_hi and since <= a_hi


def find_kernel(op_type: str, domain: str = "", opset: int | None = None) -> KernelSpec | None:
    """The kernel for ``op_type`` at ``opset`` (None: the newest form), or None."""
    specs = _KERNELS.get((domain, op_type))
    if not specs:
        return None
    if opset is None:
        return specs[-1]
    for spec in reversed(specs):
        if spec.since <= opset and (spec.until is None or opset <= spec.until):
            return spec
    return None


def get_kernel(op_type: str, domain: str = "", opset: int | None = None) -> KernelSpec:
    """Like :func:`find_kernel`, but UnsupportedOpError listing the supported ops."""
    spec = find_kernel(op_type, domain, opset)
    if spec is None:
        at = f" at opset {opset}" if opset is not None else ""
        raise UnsupportedOpError(
            f"the CPU provider has no kernel for {op_type!r}{at}; supported: "
            + ", ".join(supported_ops(domain))
        )
    return spec


def supported_ops(domain: str = "") -> list[str]:
    """Sorted op types with a CPU kernel in ``domain``."""
    return sorted(op for d, op in _KERNELS if d == domain)


__all__ = ["KernelSpec", "cpu_kernel", "find_kernel", "get_kernel", "supported_ops"]
