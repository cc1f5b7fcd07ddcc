"""Graph passes: small rewrites of an :class:`~edgefw.ir.Graph`, one per file, each saying
whether it changed the graph; a :class:`PassManager` runs them to a fixed point and verifies
the graph after each.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> from edgefw.ir.passes import optimize
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 3, 8, 8))
    >>> conv = g.add_node("Conv", [x, np.ones((4, 3, 3, 3), np.float32)], name="conv")
    >>> p = np.ones(4, np.float32)
    >>> bn = g.add_node("BatchNormalization", [conv.output, p, p, p, p], name="bn")
    >>> g.set_outputs([g.add_node("Relu", [bn.output], name="relu").output])
    >>> [str(n.op_type) for n in optimize(g, "all").nodes], conv.meta["fused_activation"]
    (['Conv'], 'Relu')

Levels (:func:`optimize`): ``"none"``; ``"basic"`` = shape inference, constant folding,
identity removal, dead-code elimination; ``"all"`` = basic + Pad folding into Conv,
BatchNorm folding, MatMul + Add -> Gemm, GELU decompositions -> Gelu, activation fusion,
and for the runtime's own copy QDQ groups -> integer kernels
(:mod:`~edgefw.ir.passes.integer_execution`) and stacked MatMul + bias -> ``Dense``.
"""

from __future__ import annotations

from edgefw.ir.passes.base import Pass, PassResult
from edgefw.ir.passes.drop_qdq_pair_pass import DropQDQPairPass
from edgefw.ir.passes.eliminate_dead_code_pass import EliminateDeadCodePass
from edgefw.ir.passes.fold_batch_norm_pass import FoldBatchNormPass
from edgefw.ir.passes.fold_constants_pass import FoldConstantsPass
from edgefw.ir.passes.fold_layer_norm_affine_pass import FoldLayerNormAffinePass
from edgefw.ir.passes.fold_qdq_weights_pass import FoldQDQWeightsPass
from edgefw.ir.passes.fuse_activation_pass import FuseActivationPass
from edgefw.ir.passes.fuse_dense_pass import FuseDensePass
from edgefw.ir.passes.fuse_dynamic_quant_pass import FuseDynamicQuantPass
from edgefw.ir.passes.fuse_gelu_pass import FuseGeluPass
from edgefw.ir.passes.fuse_matmul_add_pass import FuseMatMulAddPass
from edgefw.ir.passes.fuse_pad_into_conv_pass import FusePadIntoConvPass
from edgefw.ir.passes.fuse_qdq_pass import FuseQDQPass
from edgefw.ir.passes.infer_shapes_pass import InferShapesPass
from edgefw.ir.passes.mark_sequential_sums_pass import MarkSequentialSumsPass
from edgefw.ir.passes.pass_manager import (
    LEVELS,
    OptimizationReport,
    PassManager,
    PassRecord,
    optimize,
    passes_for_level,
)
from edgefw.ir.passes.remove_identity_pass import RemoveIdentityPass

__all__ = [
    "LEVELS",
    "DropQDQPairPass",
    "EliminateDeadCodePass",
    "FoldBatchNormPass",
    "FoldConstantsPass",
    "FoldLayerNormAffinePass",
    "FoldQDQWeightsPass",
    "FuseActivationPass",
    "FuseDensePass",
    "FuseDynamicQuantPass",
    "FuseGeluPass",
    "FuseMatMulAddPass",
    "FusePadIntoConvPass",
    "FuseQDQPass",
    "InferShapesPass",
    "MarkSequentialSumsPass",
    "OptimizationReport",
    "Pass",
    "PassManager",
    "PassRecord",
    "PassResult",
    "RemoveIdentityPass",
    "optimize",
    "passes_for_level",
]
