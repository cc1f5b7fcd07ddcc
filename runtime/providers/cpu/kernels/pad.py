"""Pad: constant, reflect, edge and wrap modes; negative pads crop."""

from __future__ import annotations

import numpy as np

from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel

_NUMPY_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def pad_array(x: np.ndarray, pads: list[int], mode: str, value, axes: list[int] | None
              ) -> np.ndarray:
    rank = x.ndim
    axes = list(range(rank)) if axes is None else [normalize_axis(a, rank, "Pad axis")
                                                   for a in axes]
    width = [(0, 0)] * rank
    for j, a in enumerate(axes):
        width[a] = (pads[j], pads[j + len(axes)])
    # Negative pads crop first; numpy's pad only grows.
    crop = tuple(slice(-b if b < 0 else 0, e if e < 0 else None) for b, e in width)
    x = x[crop]
    width = [(max(b, 0), max(e, 0)) for b, e in width]
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode=_NUMPY_MODES[mode])


@cpu_kernel("Pad", since=18)
def pad(ctx: KernelContext) -> Kernel:
    mode = ctx.attr("mode")
    dtype = ctx.output_dtype()
    const_pads = ctx.const(1)
    const_value = ctx.const(2) if ctx.has_input(2) else None
    const_axes = ctx.const(3) if ctx.has_input(3) else None

    def pad_(x, pads, value=None, axes=None):
        p = const_pads if const_pads is not None else pads
        v = const_value if const_value is not None else value
        ax = const_axes if const_axes is not None else axes
        fill = dtype.type(0) if v is None or v.size == 0 else v.reshape(-1)[0]
        return pad_array(x, [int(d) for d in p.reshape(-1)], mode, fill,
                         None if ax is None else [int(a) for a in ax.reshape(-1)])

    return pad_
