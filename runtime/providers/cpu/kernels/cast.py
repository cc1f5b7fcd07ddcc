"""Cast to the dtype named by the ONNX code in ``to`` (always a new array)."""

from __future__ import annotations

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Cast", since=13)
def cast(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()
    out = ctx.output_buffer()

    if out is not None:
        def cast_into(x):
            out[...] = x
            return out

        return cast_into

    def cast_(x):
        return x.astype(dtype)

    return cast_
