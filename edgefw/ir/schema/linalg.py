"""Schemas of Einsum and Det."""

from __future__ import annotations

import re

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES, INT_DTYPES
from edgefw.ir.schema.dims import Dim, broadcast_shapes, format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

_TERM = re.compile(r"^[A-Za-z]*(\.\.\.)?[A-Za-z]*$")


def parse_einsum(equation: str, n_inputs: int) -> tuple[list[str], str]:
    """Input terms and the output term (explicit, or numpy's implicit one: the labels used
    once, sorted, after the ellipsis)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != n_inputs or not all(_TERM.match(t) for t in terms) or (
            arrow and not _TERM.match(rhs)):
        raise ShapeError(f"Einsum equation {equation!r} does not fit {n_inputs} inputs")
    if not arrow:
        letters = "".join(t.replace("...", "") for t in terms)
        once = sorted(c for c in set(letters) if letters.count(c) == 1)
        rhs = ("..." if any("..." in t for t in terms) else "") + "".join(once)
    return terms, rhs


@op_schema("Einsum", inputs=(1, 2**31 - 1), attrs=[Attr("equation", "string")],
           since_version=12, doc="Einstein summation over the inputs (numpy.einsum semantics)")
def _einsum(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(*range(ctx.num_inputs))
    ctx.require_dtype(0, FLOAT_DTYPES | INT_DTYPES)
    terms, out_term = parse_einsum(ctx.attr("equation"), ctx.num_inputs)
    shapes = [ctx.shape(i) for i in range(ctx.num_inputs)]
    if any(s is None for s in shapes):
        return [TensorType(dtype, None)]
    dims: dict[str, Dim] = {}
    ellipsis: list[tuple[Dim, ...]] = []
    for term, shape in zip(terms, shapes, strict=True):
        head, _, tail = term.partition("...")
        n_ellipsis = len(shape) - len(head) - len(tail)
        if ("..." in term and n_ellipsis < 0) or ("..." not in term and n_ellipsis != 0):
            raise ShapeError(f"Einsum term {term!r} does not fit input {format_shape(shape)}")
        labelled = list(zip(head, shape[:len(head)], strict=True)) + list(
            zip(tail, shape[len(shape) - len(tail):], strict=True))
        if "..." in term:
            ellipsis.append(tuple(shape[len(head):len(shape) - len(tail)]))
        for label, d in labelled:
            known = dims.get(label)
            if isinstance(known, int) and isinstance(d, int) and known != d and 1 not in (
                    known, d):
                raise ShapeError(f"Einsum label {label!r} has sizes {known} and {d}")
            dims[label] = d if known in (None, 1) else known
    head, _, tail = out_term.partition("...")
    broadcast = broadcast_shapes(*ellipsis) if ellipsis else ()
    out = [dims.get(c) for c in head] + list(broadcast or ()) + [dims.get(c) for c in tail]
    return [TensorType(dtype, tuple(out))]


@op_schema("Det", since_version=11, doc="determinant of each [M, M] matrix in [..., M, M]")
def _det(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if len(x) < 2 or (isinstance(x[-1], int) and isinstance(x[-2], int) and x[-1] != x[-2]):
        raise ShapeError(f"Det input must be [..., M, M], got {format_shape(x)}")
    return [TensorType(ctx.dtype(0), tuple(x[:-2]))]
