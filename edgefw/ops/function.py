"""The autograd engine: the Function base class, grad mode and the backward walk.

A Function computes on numpy arrays. ``forward`` receives the inputs' arrays (attributes as
keyword arguments) and may save what ``backward`` needs on ``self``; ``backward`` receives the
gradient of the output and returns one gradient per input, or ``None`` for an input that
needs none (``self.needs_input_grad`` says which).

While a model is being traced (:mod:`edgefw.ir.tracer`) every application is also reported to
the tracer, which asks the Function's ``to_ir`` how to record it in the graph.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from edgefw.errors import DTypeError, EdgeFWError, ShapeError, TraceError  # noqa: F401

_grad_enabled = True
_tensor_cls: Any = None  # set by edgefw.autograd (breaks the import cycle)
_tracer: Any = None  # set by edgefw.ir.tracer while tracing
_ops_namespace: types.SimpleNamespace | None = None

REGISTRY: dict[str, type[Function]] = {}


def register(cls: type[Function]) -> type[Function]:
    """Class decorator: make a Function findable as ``edgefw.ops.REGISTRY[name]``."""
    REGISTRY[cls.__name__] = cls
    return cls


def ops() -> types.SimpleNamespace:
    """All registered Functions as attributes (imports every op module on first use)."""
    global _ops_namespace
    if _ops_namespace is None:
        import edgefw.ops  # noqa: F401 - registers every op

        _ops_namespace = types.SimpleNamespace(**REGISTRY)
    return _ops_namespace


class Function:
    """One differentiable operation. Subclasses define ``forward`` and ``backward``."""

    needs_input_grad: tuple[bool, ...]
    parents: tuple[Any, ...]
    #: False for ops with no gradient (comparisons): their outputs never require grad.
    differentiable = True

    def forward(self, *arrays: np.ndarray, **attrs: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...] | np.ndarray | None:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **attrs: Any) -> Any:
        ctx = cls()
        requires = _grad_enabled and cls.differentiable and any(t.requires_grad for t in inputs)
        ctx.needs_input_grad = (
            tuple(t.requires_grad for t in inputs) if requires else (False,) * len(inputs)
        )
        out = _tensor_cls(ctx.forward(*[t.data for t in inputs], **attrs))
        if requires:
            out.requires_grad = True
            ctx.parents = inputs
            out._ctx = ctx
        if _tracer is not None:
            _tracer.record(ctx, inputs, out, attrs)
        return out


class SameOpLowering:
    """Mixin for ops recorded as one ONNX node of the same name over the same inputs."""

    def lower(self, e: Any, *xs: Any, **attrs: Any) -> Any:
        return e.node(type(self).__name__, xs)


class no_grad:  # noqa: N801 - PyTorch's spelling, used as a context manager and decorator
    """Disable gradient recording: ``with edgefw.no_grad(): y = model(x)``."""

    _enabled = False

    def __enter__(self) -> None:
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self._enabled

    def __exit__(self, *exc: Any) -> None:
        global _grad_enabled
        _grad_enabled = self._prev

    def __call__(self, fn: Any) -> Any:
        mode = type(self)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class enable_grad(no_grad):  # noqa: N801
    """Re-enable gradient recording inside a ``no_grad`` block."""

    _enabled = True


def guard_value_use(tensor: Any, what: str) -> None:
    """Refuse to hand a traced tensor's value to Python while tracing: a graph cannot
    record control flow that depends on it."""
    if _tracer is not None and _tracer.is_traced(tensor):
        raise TraceError(
            f"{what} on a traced tensor of shape {tensor.shape}: Python control flow or "
            "conversions that depend on tensor values cannot be recorded in a graph "
            "(the trace would freeze one branch). Use tensor ops such as where(), or move "
            "the value-dependent logic outside the traced forward."
        )


def is_grad_enabled() -> bool:
    return _grad_enabled


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def run_backward(root: Any, seed: np.ndarray) -> None:
    """Propagate ``seed`` = d(out)/d(root) to every leaf reachable from ``root``."""
    order: list[Any] = []
    visited: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        ctx = t._ctx
        if ctx is not None:
            for p in ctx.parents:
                if p.requires_grad and id(p) not in visited:
                    stack.append((p, False))

    grads: dict[int, np.ndarray] = {id(root): seed}
    for t in reversed(order):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        ctx = t._ctx
        if ctx is None:
            # Never accumulate in place: the same array may have been handed to two leaves.
            t.grad = g if t.grad is None else t.grad + g
            continue
        in_grads = ctx.backward(g)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for p, pg in zip(ctx.parents, in_grads):
            if pg is None or not p.requires_grad:
                continue
            key = id(p)
            prev = grads.get(key)
            grads[key] = pg if prev is None else prev + pg
