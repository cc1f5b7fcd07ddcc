"""Identity and inference-mode Dropout: the input itself (plus an all-true mask)."""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("Identity", output_alias="view")
def identity(ctx: KernelContext) -> Kernel:
    def identity_(x):
        return x

    return identity_


@cpu_kernel("Dropout", since=12, output_alias="view")
def dropout(ctx: KernelContext) -> Kernel:
    # training_mode (input 2) true would mean sampling a mask; the IR is inference-only.
    if len(ctx.node.outputs) == 1:
        def dropout_(x, ratio=None, training_mode=None):
            return x

        return dropout_

    def dropout_with_mask(x, ratio=None, training_mode=None):
        return x, np.ones(x.shape, dtype=bool)

    return dropout_with_mask
