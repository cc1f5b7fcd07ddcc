"""Tensor: a numpy array with reverse-mode automatic differentiation.

Every differentiable operation is a :class:`edgefw.ops.function.Function` subclass with a
``forward`` and a ``backward`` side by side. Applying one records it on the output tensor;
:meth:`Tensor.backward` sorts the recorded graph topologically and walks it in reverse.

>>> import edgefw
>>> w = edgefw.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> x = edgefw.tensor([1.0, -1.0])
>>> loss = (w @ x).relu().sum()
>>> loss.backward()
>>> w.grad
array([[0., 0.],
       [0., 0.]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgefw import random as _random
from edgefw.ops import function as _fn

_FLOATS = (np.float16, np.float32, np.float64)


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray | np.generic):  # numpy scalars keep their dtype too
        arr = np.asarray(data)
        return arr if dtype is None else arr.astype(dtype, copy=False)
    arr = np.asarray(data, dtype=dtype)
    # Python floats become float32, like every framework's default dtype.
    if dtype is None and arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return arr


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    ``Tensor(array)`` wraps a numpy array without copying it. Python lists and scalars become
    float32 (or int64 for integers); numpy arrays keep their dtype, so float64 works for
    gradient checks.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "__weakref__")
    __array_priority__ = 1000  # numpy defers to Tensor's reflected operators

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = _to_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: _fn.Function | None = None
        if self.requires_grad and self.data.dtype.type not in _FLOATS:
            raise _fn.DTypeError(
                f"only floating-point tensors can require gradients, got {self.data.dtype}"
            )

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy/PyTorch spelling
        return self.permute(*reversed(range(self.ndim)))

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != np.float32:
            extra += f", dtype={self.data.dtype}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ----------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        _fn.guard_value_use(self, "numpy()")
        return self.data

    def item(self) -> float | int | bool:
        _fn.guard_value_use(self, "item()")
        if self.data.size != 1:
            raise _fn.ShapeError(
                f"item() needs a tensor with one element, got shape {self.data.shape}"
            )
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        _fn.guard_value_use(self, "tolist()")
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut off from the graph."""
        return Tensor(self.data)

    def astype(self, dtype: Any) -> Tensor:
        return _fn.ops().Cast.apply(self, dtype=np.dtype(dtype))

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        _fn.guard_value_use(self, "conversion to a numpy array")
        return self.data if dtype is None else self.data.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        _fn.guard_value_use(self, "bool()")
        if self.data.size != 1:
            raise _fn.ShapeError(
                f"the truth value of a tensor with shape {self.data.shape} is ambiguous"
            )
        return bool(self.data.reshape(()).item())

    def __hash__(self) -> int:
        return id(self)

    # ----------------------------------------------------------------- autograd
    def backward(self, grad: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires it."""
        if not self.requires_grad:
            raise _fn.EdgeFWError(
                "backward() on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (or it ran under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise _fn.ShapeError(
                    f"backward() without a gradient needs a scalar output, got shape "
                    f"{self.data.shape}; pass grad=ones_like(output) explicitly"
                )
            seed = np.ones_like(self.data)
        else:
            seed = _to_array(grad, self.data.dtype)
            if seed.shape != self.data.shape:
                raise _fn.ShapeError(
                    f"backward(): gradient shape {seed.shape} != tensor shape {self.data.shape}"
                )
        _fn.run_backward(self, seed)

    # ----------------------------------------------------------------- arithmetic
    def __add__(self, other: Any) -> Tensor:
        return _fn.ops().Add.apply(self, _operand(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return _fn.ops().Add.apply(_operand(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        return _fn.ops().Sub.apply(self, _operand(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return _fn.ops().Sub.apply(_operand(other, self), self)

    def __mul__(self, other: Any) -> Tensor:
        return _fn.ops().Mul.apply(self, _operand(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return _fn.ops().Mul.apply(_operand(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        return _fn.ops().Div.apply(self, _operand(other, self))

    def __rtruediv__(self, other: Any) -> Tensor:
        return _fn.ops().Div.apply(_operand(other, self), self)

    def __pow__(self, other: Any) -> Tensor:
        return _fn.ops().Pow.apply(self, _operand(other, self))

    def __rpow__(self, other: Any) -> Tensor:
        return _fn.ops().Pow.apply(_operand(other, self), self)

    def __neg__(self) -> Tensor:
        return _fn.ops().Neg.apply(self)

    def __matmul__(self, other: Any) -> Tensor:
        return _fn.ops().MatMul.apply(self, _operand(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return _fn.ops().MatMul.apply(_operand(other, self), self)

    # comparisons give boolean tensors (recorded when tracing, never differentiated)
    def __lt__(self, other: Any) -> Tensor:
        return _fn.ops().Less.apply(self, _operand(other, self))

    def __le__(self, other: Any) -> Tensor:
        return _fn.ops().LessOrEqual.apply(self, _operand(other, self))

    def __gt__(self, other: Any) -> Tensor:
        return _fn.ops().Greater.apply(self, _operand(other, self))

    def __ge__(self, other: Any) -> Tensor:
        return _fn.ops().GreaterOrEqual.apply(self, _operand(other, self))

    def eq(self, other: Any) -> Tensor:
        return _fn.ops().Equal.apply(self, _operand(other, self))

    def __getitem__(self, index: Any) -> Tensor:
        return _fn.ops().GetItem.apply(self, index=_raw_index(index))

    # ----------------------------------------------------------------- math
    def exp(self) -> Tensor:
        return _fn.ops().Exp.apply(self)

    def log(self) -> Tensor:
        return _fn.ops().Log.apply(self)

    def sqrt(self) -> Tensor:
        return _fn.ops().Sqrt.apply(self)

    def abs(self) -> Tensor:
        return _fn.ops().Abs.apply(self)

    def tanh(self) -> Tensor:
        return _fn.ops().Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return _fn.ops().Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return _fn.ops().Relu.apply(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        return _fn.ops().Clip.apply(self, min=min, max=max)

    clamp = clip

    def softmax(self, axis: int = -1) -> Tensor:
        return _fn.ops().Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return _fn.ops().LogSoftmax.apply(self, axis=axis)

    # ----------------------------------------------------------------- reductions
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _fn.ops().Sum.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _fn.ops().Mean.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _fn.ops().Max.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _fn.ops().Min.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def var(self, axis: Any = None, keepdims: bool = False, correction: int = 1) -> Tensor:
        """Variance; ``correction=1`` (Bessel's, PyTorch's default), 0 for numpy's."""
        axes = _axes(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        centered = self - self.mean(axis=axes, keepdims=True)
        total = (centered * centered).sum(axis=axes, keepdims=keepdims)
        return total / max(count - correction, 1)

    def std(self, axis: Any = None, keepdims: bool = False, correction: int = 1) -> Tensor:
        return self.var(axis, keepdims, correction).sqrt()

    def argmax(self, axis: int | None = None) -> Tensor:
        return Tensor(np.argmax(self.data, axis=axis))

    # ----------------------------------------------------------------- shapes
    def reshape(self, *shape: Any) -> Tensor:
        shape = _shape_arg(shape)
        return _fn.ops().Reshape.apply(self, shape=shape)

    view = reshape

    def permute(self, *perm: Any) -> Tensor:
        perm = tuple(int(p) % self.ndim for p in _shape_arg(perm))
        return _fn.ops().Transpose.apply(self, perm=perm)

    def transpose(self, dim0: int = 0, dim1: int = 1) -> Tensor:
        perm = list(range(self.ndim))
        perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
        return _fn.ops().Transpose.apply(self, perm=tuple(perm))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _fn.ops().Flatten.apply(self, start_dim=start_dim, end_dim=end_dim)

    def squeeze(self, axis: Any = None) -> Tensor:
        return _fn.ops().Squeeze.apply(self, axes=_axes(axis, self.ndim, squeeze=self.shape))

    def unsqueeze(self, axis: int) -> Tensor:
        return _fn.ops().Unsqueeze.apply(self, axis=axis)


class Parameter(Tensor):
    """A tensor that is a trainable parameter of a module (``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


# --------------------------------------------------------------------- helpers
def _operand(other: Any, like: Tensor) -> Tensor:
    """Python scalars and arrays take part in an op as constants of ``like``'s dtype."""
    if isinstance(other, Tensor):
        return other
    if isinstance(other, np.ndarray):
        return Tensor(other)
    return Tensor(np.asarray(other, dtype=like.data.dtype))


def _raw(other: Any) -> Any:
    return other.data if isinstance(other, Tensor) else other


def _raw_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


def _shape_arg(shape: tuple) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], Sequence | np.ndarray):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _axes(axis: Any, ndim: int, squeeze: tuple | None = None) -> tuple[int, ...]:
    """Normalise an axis argument to a sorted tuple of non-negative axes."""
    if axis is None:
        if squeeze is not None:
            return tuple(i for i, d in enumerate(squeeze) if d == 1)
        return tuple(range(ndim))
    items = axis if isinstance(axis, Sequence) else (axis,)
    out = []
    for a in items:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise _fn.ShapeError(f"axis {a} is out of range for a tensor of rank {ndim}")
        out.append(a % max(ndim, 1))
    return tuple(sorted(set(out)))


# --------------------------------------------------------------------- factories
def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a tensor from a list, scalar or array (copies numpy input, like torch.tensor)."""
    arr = _to_array(data, dtype)
    if isinstance(data, np.ndarray) and arr is data:
        arr = arr.copy()
    return Tensor(arr, requires_grad=requires_grad)


def zeros(*shape: Any, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: Any, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def randn(*shape: Any, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    data = _random.generator().standard_normal(_shape_arg(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


no_grad = _fn.no_grad
enable_grad = _fn.enable_grad
is_grad_enabled = _fn.is_grad_enabled

_fn._tensor_cls = Tensor
