"""The passes that make a quantized graph run on integer kernels, in the order they run
(part of optimization level ``"all"``, after activation fusion):

1. :class:`FuseQDQPass` — QDQ groups around Conv/Gemm/MatMul/Add/average pooling become
   the edgefw integer ops (TFLite semantics);
2. :class:`DropQDQPairPass` — data movement between equal Q/DQ parameters runs on the
   integers;
3. :class:`FuseDynamicQuantPass` — float-activation layers with int8 weights become
   TFLite's dynamic-range kernels;
4. :class:`FoldQDQWeightsPass` — DequantizeLinear of constants nothing fused becomes a
   float constant.

A float graph has none of these patterns, so the passes leave it alone.

    >>> [p.name for p in integer_execution_passes()]
    ['fuse_qdq', 'drop_qdq_pair', 'fuse_dynamic_quant', 'fold_qdq_weights']
"""

from __future__ import annotations

from edgefw.ir.passes.base import Pass
from edgefw.ir.passes.drop_qdq_pair_pass import DropQDQPairPass
from edgefw.ir.passes.fold_qdq_weights_pass import FoldQDQWeightsPass
from edgefw.ir.passes.fuse_dynamic_quant_pass import FuseDynamicQuantPass
from edgefw.ir.passes.fuse_qdq_pass import FuseQDQPass


def integer_execution_passes() -> list[Pass]:
    """Fresh instances of the integer-execution passes, in order."""
    return [FuseQDQPass(), DropQDQPairPass(), FuseDynamicQuantPass(), FoldQDQWeightsPass()]


__all__ = ["integer_execution_passes"]
