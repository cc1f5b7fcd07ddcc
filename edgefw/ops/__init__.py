"""Every differentiable op of edgefw: one Function class each, registered by name.

``REGISTRY`` maps the op's name to its class; the registry test checks that each has a
backward and an IR mapping.
"""

from __future__ import annotations

from edgefw.ops import (  # noqa: F401 - importing registers the ops
    activation,
    binary,
    compare,
    conv,
    dropout,
    embedding,
    loss,
    matmul,
    norm,
    pool,
    reduce,
    shape,
    unary,
)
from edgefw.ops.function import REGISTRY, Function, no_grad, register

__all__ = ["REGISTRY", "Function", "no_grad", "register"]
