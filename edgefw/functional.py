"""Functional interface to every op (``import edgefw.functional as F``).

Layers in :mod:`edgefw.nn` are thin wrappers around these functions; use them directly in a
``forward`` when no parameters are involved.

>>> import edgefw, edgefw.functional as F
>>> F.relu(edgefw.tensor([-1.0, 2.0]))
tensor([0., 2.])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgefw.autograd import Tensor, _operand
from edgefw.errors import ShapeError
from edgefw.ir.primitives.conv import same_pads
from edgefw.ops.function import ops


def _t(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(v, int | np.integer):
        return int(v), int(v)
    v = tuple(int(i) for i in v)
    if len(v) != 2:
        raise ShapeError(f"{name} must be an int or a pair of ints, got {v}")
    return v


# ------------------------------------------------------------------ elementwise
def add(a: Any, b: Any) -> Tensor:
    return _t(a) + b


def sub(a: Any, b: Any) -> Tensor:
    return _t(a) - b


def mul(a: Any, b: Any) -> Tensor:
    return _t(a) * b


def div(a: Any, b: Any) -> Tensor:
    return _t(a) / b


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - mirrors torch.pow
    return _t(a) ** b


def neg(x: Any) -> Tensor:
    return -_t(x)


def matmul(a: Any, b: Any) -> Tensor:
    return _t(a) @ b


def exp(x: Any) -> Tensor:
    return _t(x).exp()


def log(x: Any) -> Tensor:
    return _t(x).log()


def sqrt(x: Any) -> Tensor:
    return _t(x).sqrt()


def abs(x: Any) -> Tensor:  # noqa: A001
    return _t(x).abs()


def clip(x: Any, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    return ops().Clip.apply(_t(x), min=min, max=max)


clamp = clip


def tanh(x: Any) -> Tensor:
    return _t(x).tanh()


def sigmoid(x: Any) -> Tensor:
    return _t(x).sigmoid()


def relu(x: Any) -> Tensor:
    return ops().Relu.apply(_t(x))


def relu6(x: Any) -> Tensor:
    return ops().Clip.apply(_t(x), min=0.0, max=6.0)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    return ops().LeakyRelu.apply(_t(x), alpha=float(negative_slope))


def gelu(x: Any) -> Tensor:
    """Exact GELU: ``x * Phi(x)`` (the erf form)."""
    return ops().Gelu.apply(_t(x))


def softmax(x: Any, axis: int = -1) -> Tensor:
    return ops().Softmax.apply(_t(x), axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    return ops().LogSoftmax.apply(_t(x), axis=axis)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    cond = _t(cond)
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else _t(a)
    return ops().Where.apply(cond, _operand(a, like), _operand(b, like))


# ------------------------------------------------------------------ reductions, shapes
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _t(x).sum(axis, keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return _t(x).mean(axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _t(x).max(axis, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _t(x).min(axis, keepdims)


def var(x: Any, axis: Any = None, keepdims: bool = False, correction: int = 1) -> Tensor:
    return _t(x).var(axis, keepdims, correction)


def reshape(x: Any, shape: Sequence[int]) -> Tensor:
    return _t(x).reshape(tuple(shape))


def transpose(x: Any, dim0: int = 0, dim1: int = 1) -> Tensor:
    return _t(x).transpose(dim0, dim1)


def permute(x: Any, perm: Sequence[int]) -> Tensor:
    return _t(x).permute(tuple(perm))


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _t(x).flatten(start_dim, end_dim)


def squeeze(x: Any, axis: Any = None) -> Tensor:
    return _t(x).squeeze(axis)


def unsqueeze(x: Any, axis: int) -> Tensor:
    return _t(x).unsqueeze(axis)


def concat(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    if not tensors:
        raise ShapeError("concat needs at least one tensor")
    return ops().Concat.apply(*[_t(t) for t in tensors], axis=axis)


cat = concat


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    if not tensors:
        raise ShapeError("stack needs at least one tensor")
    return ops().Stack.apply(*[_t(t) for t in tensors], axis=axis)


def pad(x: Any, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad like ``torch.nn.functional.pad``: ``pad`` lists (before, after) pairs starting
    from the LAST axis, e.g. ``(left, right, top, bottom)`` for an NCHW image.
    ``mode`` is "constant", "reflect" or "replicate" (alias "edge")."""
    x = _t(x)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: {tuple(pad)} must hold (before, after) pairs for at most "
                         f"{x.ndim} axes")
    pairs = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        pairs[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    mode = {"replicate": "edge"}.get(mode, mode)
    return ops().Pad.apply(x, pads=tuple(pairs), mode=mode, value=value)


# ------------------------------------------------------------------ layers
def linear(x: Any, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    x = _t(x)
    if bias is None:
        return ops().Linear.apply(x, weight)
    return ops().Linear.apply(x, weight, bias)


def _conv_pads(padding: Any, x: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
               dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "same":
            return tuple(same_pads(x.shape[2:], kernel, stride, dilation))
        raise ShapeError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    ph, pw = _pair(padding, "padding")
    return (ph, pw, ph, pw)


def conv2d(x: Any, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D convolution, NCHW input and (C_out, C_in/groups, kH, kW) weight.

    ``padding`` may be an int, a pair, ``"valid"`` or ``"same"`` (output size
    ceil(input/stride), any extra padding at the end as TensorFlow does)."""
    x = _t(x)
    if x.ndim != 4:
        raise ShapeError(f"conv2d expects an NCHW input of rank 4, got shape {x.shape}")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pads = _conv_pads(padding, x, weight.shape[2:], stride, dilation)
    args = (x, weight) if bias is None else (x, weight, bias)
    return ops().Conv2d.apply(*args, strides=stride, pads=pads, dilations=dilation,
                              group=int(groups))


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False) -> Tensor:
    x = _t(x)
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    dilation = _pair(dilation, "dilation")
    pads = _conv_pads(padding, x, kernel, stride, dilation)
    return ops().MaxPool2d.apply(x, kernel_hw=kernel, strides=stride, pads=pads,
                                 dilations=dilation, ceil_mode=ceil_mode)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    x = _t(x)
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    pads = _conv_pads(padding, x, kernel, stride, (1, 1))
    return ops().AvgPool2d.apply(x, kernel_hw=kernel, strides=stride, pads=pads,
                                 ceil_mode=ceil_mode, count_include_pad=count_include_pad)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Tensor:
    x = _t(x)
    if x.ndim != 4:
        raise ShapeError(f"adaptive_avg_pool2d expects NCHW, got shape {x.shape}")
    return ops().AdaptiveAvgPool2d.apply(x, output_hw=_pair(output_size, "output_size"))


def global_avg_pool2d(x: Any) -> Tensor:
    """Mean over H and W, keeping them as size-1 axes: (N, C, H, W) -> (N, C, 1, 1)."""
    return adaptive_avg_pool2d(x, 1)


def batch_norm(x: Any, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: Tensor, bias: Tensor, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation over axis 1. In training, batch statistics are used and the
    running arrays (numpy, updated in place) track them."""
    return ops().BatchNorm.apply(_t(x), weight, bias, running_mean=running_mean,
                                 running_var=running_var, training=training,
                                 momentum=momentum, eps=eps)


def layer_norm(x: Any, normalized_shape: Sequence[int] | int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    x = _t(x)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[-len(shape):]) != shape:
        raise ShapeError(f"layer_norm: input shape {x.shape} does not end with {shape}")
    args = [x] + [t for t in (weight, bias) if t is not None]
    if weight is None and bias is not None:
        raise ShapeError("layer_norm: a bias without a weight is not supported")
    return ops().LayerNorm.apply(*args, normalized_ndim=len(shape), eps=eps)


def dropout(x: Any, p: float = 0.5, training: bool = True) -> Tensor:
    if not 0.0 <= p < 1.0:
        raise ShapeError(f"dropout probability must be in [0, 1), got {p}")
    return ops().Dropout.apply(_t(x), p=float(p), training=training)


def embedding(indices: Any, weight: Tensor) -> Tensor:
    return ops().Embedding.apply(weight, _t(indices))


# ------------------------------------------------------------------ losses
def cross_entropy(logits: Tensor, target: Any, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> Tensor:
    return ops().CrossEntropy.apply(_t(logits), _t(target), label_smoothing=label_smoothing,
                                    reduction=reduction)


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    return ops().NLL.apply(_t(log_probs), _t(target), reduction=reduction)


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    return ops().BCEWithLogits.apply(_t(logits), _t(target), reduction=reduction,
                                     pos_weight=pos_weight)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ShapeError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _target_like(pred: Tensor, target: Any, who: str) -> Tensor:
    target = _t(target)
    if target.shape != pred.shape:
        raise ShapeError(f"{who}: prediction shape {pred.shape} != target shape {target.shape}")
    if target.dtype != pred.dtype:
        target = Tensor(target.data.astype(pred.dtype))
    return target


def mse_loss(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    diff = pred - _target_like(pred, target, "MSELoss")
    return _reduce(diff * diff, reduction)


def l1_loss(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    return _reduce((pred - _target_like(pred, target, "L1Loss")).abs(), reduction)


__all__ = [name for name in dir() if not name.startswith("_") and name not in (
    "annotations", "Any", "Sequence", "Tensor", "np", "ops", "same_pads", "ShapeError")]
