"""Tensor basics: dtypes, grad mode, accumulation, errors."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw.autograd import Tensor
from edgefw.errors import DTypeError, EdgeFWError, ShapeError


def test_default_dtypes():
    assert edgefw.tensor([1.0, 2.0]).dtype == np.float32
    assert edgefw.tensor([1, 2]).dtype == np.int64
    assert Tensor(np.zeros(2, np.float64)).dtype == np.float64  # numpy keeps its dtype
    x = edgefw.tensor([1.0], requires_grad=True)
    assert (x * 2.5).dtype == np.float32  # python scalars take the tensor's dtype


def test_backward_accumulates_and_broadcast_reduces():
    w = edgefw.tensor(np.ones((3,)), requires_grad=True, dtype=np.float64)
    x = Tensor(np.arange(6.0).reshape(2, 3))
    (x * w).sum().backward()
    np.testing.assert_allclose(w.grad, [3.0, 5.0, 7.0])
    (x * w).sum().backward()
    np.testing.assert_allclose(w.grad, [6.0, 10.0, 14.0])


def test_shared_subexpression_gets_both_paths():
    x = edgefw.tensor(3.0, requires_grad=True)
    y = x * x
    (y + y * x).backward()  # d/dx (x^2 + x^3) = 2x + 3x^2
    assert x.grad == pytest.approx(6.0 + 27.0)


def test_no_grad_and_detach():
    x = edgefw.tensor([1.0, 2.0], requires_grad=True)
    with edgefw.no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None
    z = x.detach() * 2
    assert not z.requires_grad

    @edgefw.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    assert edgefw.is_grad_enabled()


def test_item_numpy_and_errors():
    x = edgefw.tensor([[1.0, 2.0]])
    assert x.sum().item() == 3.0
    assert x.numpy() is x.data
    with pytest.raises(ShapeError, match="one element"):
        x.item()
    with pytest.raises(EdgeFWError, match="does not require grad"):
        x.sum().backward()
    y = edgefw.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ShapeError, match="scalar output"):
        (y * 2).backward()
    with pytest.raises(DTypeError):
        edgefw.tensor([1, 2], requires_grad=True)


def test_shape_errors_name_the_shapes():
    a, b = edgefw.tensor(np.ones((2, 3))), edgefw.tensor(np.ones((4, 5)))
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(ShapeError, match="cannot reshape"):
        a.reshape(4, 2)


def test_comparisons_give_bool_tensors_without_grad():
    x = edgefw.tensor([-1.0, 2.0], requires_grad=True)
    m = x > 0
    assert m.dtype == bool and not m.requires_grad
    np.testing.assert_array_equal(m.data, [False, True])
