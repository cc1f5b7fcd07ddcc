"""Normalisation: BatchNorm (train: batch statistics; eval: running statistics, the ONNX
BatchNormalization inference form) and LayerNorm (ONNX LayerNormalization)."""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError, TraceError
from edgefw.ops.function import Function, register


@register
class BatchNorm(Function):
    """Normalise over every axis but 1 (channels). Running statistics are updated in place
    when ``training`` (with Bessel's correction for the variance, as PyTorch does)."""

    def forward(self, x, weight, bias, running_mean=None, running_var=None, training=False,
                momentum=0.1, eps=1e-5) -> np.ndarray:
        if x.ndim < 2 or x.shape[1] != weight.shape[0]:
            raise ShapeError(
                f"batch_norm: input of shape {x.shape} needs {weight.shape[0]} channels on axis 1"
            )
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        if training:
            n = x.size // x.shape[1]
            if n <= 1:
                raise ShapeError(
                    f"batch_norm: training needs more than one value per channel, got {x.shape}"
                )
            mean = x.mean(axis=axes)
            centered = x - mean.reshape(bshape)
            var = np.mean(centered * centered, axis=axes)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += (momentum * n / (n - 1)) * var
        else:
            mean, var = running_mean, running_var
            centered = x - mean.reshape(bshape)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        self.training, self.axes, self.bshape = training, axes, bshape
        self.xhat = centered * invstd.reshape(bshape)
        self.invstd, self.weight = invstd, weight
        return self.xhat * weight.reshape(bshape) + bias.reshape(bshape)

    def backward(self, g: np.ndarray):
        needs = self.needs_input_grad
        axes, bshape, xhat = self.axes, self.bshape, self.xhat
        grad_w = (g * xhat).sum(axis=axes) if needs[1] else None
        grad_b = g.sum(axis=axes) if needs[2] else None
        grad_x = None
        if needs[0]:
            scale = (self.weight * self.invstd).reshape(bshape)
            if self.training:
                n = g.size // g.shape[1]
                sum_g = g.sum(axis=axes).reshape(bshape)
                sum_gx = (grad_w if grad_w is not None else (g * xhat).sum(axis=axes))
                grad_x = scale * (g - sum_g / n - xhat * (sum_gx.reshape(bshape) / n))
            else:
                grad_x = g * scale
        return grad_x, grad_w, grad_b

    def lower(self, e, x, weight, bias, running_mean=None, running_var=None, training=False,
              momentum=0.1, eps=1e-5):
        if training or running_mean is None or running_var is None:
            raise TraceError(
                "batch_norm with batch statistics (training mode or "
                "track_running_stats=False) has no inference form; trace in eval mode"
            )
        mean = e.array_constant(running_mean, "running_mean")
        var = e.array_constant(running_var, "running_var")
        return e.node("BatchNormalization", [x, weight, bias, mean, var],
                      {"epsilon": float(eps), "momentum": float(1.0 - momentum)})


@register
class LayerNorm(Function):
    """Normalise over the last ``normalized_ndim`` axes, then scale and shift."""

    def forward(self, x, weight=None, bias=None, normalized_ndim=1, eps=1e-5) -> np.ndarray:
        axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        var = np.mean(centered * centered, axis=axes, keepdims=True)
        self.invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        self.xhat = centered * self.invstd
        self.axes, self.weight = axes, weight
        y = self.xhat if weight is None else self.xhat * weight
        return y if bias is None else y + bias

    def backward(self, g: np.ndarray):
        needs = self.needs_input_grad
        lead = tuple(range(g.ndim - len(self.axes)))
        xhat, axes = self.xhat, self.axes
        grad_w = (g * xhat).sum(axis=lead) if len(needs) > 1 and needs[1] else None
        grad_b = g.sum(axis=lead) if len(needs) > 2 and needs[2] else None
        grad_x = None
        if needs[0]:
            gx = g if self.weight is None else g * self.weight
            n = int(np.prod([g.shape[a] for a in axes]))
            grad_x = self.invstd * (
                gx
                - gx.sum(axis=axes, keepdims=True) / n
                - xhat * ((gx * xhat).sum(axis=axes, keepdims=True) / n)
            )
        return (grad_x, grad_w, grad_b)[: len(needs)]

    def lower(self, e, x, weight=None, bias=None, normalized_ndim=1, eps=1e-5):
        if weight is None:
            shape = e.in_shapes[0][-normalized_ndim:]
            weight = e.const(np.ones(shape, dtype=np.dtype(x.dtype)), "scale")
        inputs = [x, weight] + ([bias] if bias is not None else [])
        return e.node("LayerNormalization", inputs,
                      {"axis": -int(normalized_ndim), "epsilon": float(eps)})
