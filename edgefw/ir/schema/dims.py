"""Arithmetic on shapes whose dims may be ints, symbols (``"batch"``) or unknown (``None``).

Shape inference has to keep a symbolic batch symbolic through Gemm, Conv, Flatten and
Reshape, so the rules here track symbols exactly where the answer is still a single symbol
and give ``None`` (unknown) only when it is not (e.g. ``"batch" * 3``).

>>> broadcast_shapes((("batch"), 1, 4), (3, 1))
('batch', 3, 4)
>>> product_dim(Product.of(("batch", 16, 5, 5)) / Product.of((400,)))
'batch'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edgefw.errors import ShapeError

Dim = int | str | None
Shape = tuple[Dim, ...]


def is_static(shape: Shape | None) -> bool:
    """True when ``shape`` is known and every dim is an int."""
    return shape is not None and all(isinstance(d, int) for d in shape)


def format_shape(shape: Shape | None) -> str:
    """``[batch,128]``; ``?`` for an unknown dim, ``[...]`` for an unknown rank."""
    if shape is None:
        return "[...]"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """Map a possibly negative ``axis`` into ``[0, rank)``; ShapeError if out of range."""
    if not -rank <= axis < rank:
        raise ShapeError(f"{what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def broadcast_dims(a: Dim, b: Dim) -> Dim:
    """numpy broadcasting of two dims; a symbol broadcast with an int > 1 becomes that int."""
    if a == b:
        return a
    if a == 1:
        return b
    if b == 1:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise ShapeError(f"dims {a} and {b} do not broadcast")
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    return None


def broadcast_shapes(*shapes: Shape | None) -> Shape | None:
    """numpy-style multidirectional broadcasting; ``None`` when any rank is unknown."""
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out: list[Dim] = []
    for axis in range(rank):
        dim: Dim = 1
        for shape in padded:
            try:
                dim = broadcast_dims(dim, shape[axis])
            except ShapeError:
                listing = " and ".join(format_shape(s) for s in shapes)
                raise ShapeError(f"shapes {listing} do not broadcast (axis {axis})") from None
        out.append(dim)
    return tuple(out)


@dataclass(frozen=True)
class Product:
    """A product of dims: an int coefficient times a multiset of symbols, or unknown.

    Used for Reshape/Flatten: ``[batch,16,5,5]`` is ``400 * batch``, so reshaping it to
    ``[-1, 400]`` gives ``batch`` for the ``-1``.
    """

    coef: int
    symbols: tuple[str, ...] = ()
    known: bool = True

    @staticmethod
    def of(dims: Iterable[Dim]) -> Product:
        coef = 1
        symbols: list[str] = []
        for d in dims:
            if d is None:
                return Product(1, (), known=False)
            if isinstance(d, str):
                symbols.append(d)
            else:
                coef *= int(d)
        return Product(coef, tuple(sorted(symbols)))

    def __truediv__(self, other: Product) -> Product:
        """Exact division; unknown when it does not divide or a symbol is missing."""
        if not (self.known and other.known) or other.coef == 0 or self.coef % other.coef:
            return Product(1, (), known=False)
        remaining = list(self.symbols)
        for s in other.symbols:
            if s not in remaining:
                return Product(1, (), known=False)
            remaining.remove(s)
        return Product(self.coef // other.coef, tuple(remaining))


def product_dim(p: Product) -> Dim:
    """A product as a single dim: an int, a lone symbol, or None (unknown / compound)."""
    if not p.known:
        return None
    if not p.symbols:
        return p.coef
    if p.coef == 1 and len(p.symbols) == 1:
        return p.symbols[0]
    return None


def pool_output_dim(
    size: Dim,
    kernel: int,
    stride: int,
    pad_begin: int,
    pad_end: int,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> Dim:
    """Output length of a conv/pool window sweep (ONNX rule, incl. ceil_mode's last-window drop)."""
    if not isinstance(size, int):
        return None
    span = dilation * (kernel - 1) + 1
    padded = size + pad_begin + pad_end
    if padded < span:
        raise ShapeError(
            f"window of extent {span} (kernel {kernel}, dilation {dilation}) does not fit in "
            f"input length {size} padded by ({pad_begin}, {pad_end})"
        )
    if ceil_mode:
        out = math.ceil((padded - span) / stride) + 1
        # The last window must start inside the input or the begin padding, never in the
        # end padding only (the rule PyTorch and onnxruntime share).
        if (out - 1) * stride >= size + pad_begin:
            out -= 1
        return out
    return (padded - span) // stride + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int, upper: bool) -> tuple[int, int]:
    """(begin, end) padding for auto_pad SAME_UPPER / SAME_LOWER on one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def resolve_pads(
    auto_pad: str,
    pads: Sequence[int] | None,
    spatial: Sequence[Dim],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[tuple[int, int]] | None:
    """Per spatial axis (begin, end) padding, resolving ``auto_pad``; None if it needs an
    unknown spatial size (SAME_* with a symbolic dim)."""
    n = len(kernel)
    if auto_pad in ("NOTSET", ""):
        pads = list(pads) if pads else [0] * (2 * n)
        if len(pads) != 2 * n:
            raise ShapeError(f"pads has {len(pads)} values, expected {2 * n} for {n}-D")
        return [(pads[i], pads[i + n]) for i in range(n)]
    if auto_pad == "VALID":
        return [(0, 0)] * n
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if not all(isinstance(d, int) for d in spatial):
            return None
        upper = auto_pad == "SAME_UPPER"
        return [
            same_pads(int(spatial[i]), kernel[i], strides[i], dilations[i], upper) for i in range(n)
        ]
    raise ShapeError(
        f"auto_pad {auto_pad!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"
    )


__all__ = [
    "Dim",
    "Product",
    "Shape",
    "broadcast_dims",
    "broadcast_shapes",
    "format_shape",
    "is_static",
    "normalize_axis",
    "pool_output_dim",
    "product_dim",
    "resolve_pads",
    "same_pads",
]
