"""Op schemas: for each ONNX op type the IR knows, its arity, attributes with defaults, and
shape/dtype inference that keeps symbolic dims such as ``"batch"``.

>>> from edgefw.ir.schema import get_schema, infer_types, TensorType
>>> infer_types("Flatten", [TensorType("float32", ("batch", 1, 28, 28))], [None], {})
[TensorType(dtype='float32', shape=('batch', 784))]
>>> get_schema("Conv").default("group")
1
"""

from __future__ import annotations

# The family modules register their schemas on import.
from edgefw.ir.schema import (  # noqa: F401
    activations,
    conv_transpose,
    creation,
    detection,
    elementwise,
    elementwise_math,
    fused_ops,
    grid_sample,
    indexing,
    integer_ops,
    linalg,
    losses,
    nn,
    normalization,
    pooling,
    quantization,
    quantized,
    rearrange,
    recurrent,
    reduce,
    reductions,
    resize,
    signal,
    tensor,
    transformer,
)
from edgefw.ir.schema.registry import (
    REQUIRED,
    Attr,
    InferenceContext,
    OpSchema,
    TensorType,
    get_schema,
    has_schema,
    infer_types,
    known_ops,
    op_schema,
)

__all__ = [
    "REQUIRED",
    "Attr",
    "InferenceContext",
    "OpSchema",
    "TensorType",
    "get_schema",
    "has_schema",
    "infer_types",
    "known_ops",
    "op_schema",
]
