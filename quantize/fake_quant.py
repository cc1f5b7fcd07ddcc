"""Fake quantization for quantization-aware training: the op, with its straight-through
gradient, and the modules that choose its scale and zero point.

- :class:`FakeQuantize` (an autograd Function): ``(clip(rint(x / s) + z, qmin, qmax) - z) * s``
  forward; backward lets the gradient through where ``rint(x / s) + z`` lies inside
  ``[qmin, qmax]`` and stops it outside (the straight-through estimator). Traced, it is
  written as ``QuantizeLinear -> DequantizeLinear`` (the QDQ contract), so a fake-quantized
  model traces to a QDQ graph.
- :class:`WeightFakeQuant`: symmetric int8 (range -127..127, zero point 0) from the weight's
  current absolute maximum, per output channel or per tensor — what the converter
  (``quantize.convert_qat``) stores, so the eager model and the exported graph agree.
- :class:`ActivationFakeQuant`: asymmetric per-tensor parameters (int8/uint8; symmetric
  int16 for 16x8) from an exponential moving average of each training batch's min/max.
- :class:`QATConv2d`, :class:`QATLinear`: what ``quantize.prepare_qat`` puts in place of a
  Conv2d/Linear (BatchNorm already folded in): optional input fake-quant, fake-quantized
  weight, the layer, an absorbed Relu/ReLU6, then the output fake-quant — the activation's
  output range is the one quantized, as in the PTQ graphs.

The arithmetic is :mod:`quantize.qparams`' (the PTQ path's), so QAT and PTQ graphs have the
same parameters for the same ranges.

    >>> import edgefw
    >>> x = edgefw.tensor([-1.0, 0.26, 0.5, 3.0], requires_grad=True)
    >>> y = FakeQuantize.apply(x, scale=np.float32(0.1), zero_point=np.int8(0), qmin=-5, qmax=5)
    >>> [round(v, 2) for v in y.data.tolist()]
    [-0.5, 0.3, 0.5, 0.5]
    >>> y.sum().backward(); x.grad.tolist()
    [0.0, 1.0, 1.0, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefw import functional as F
from edgefw.autograd import Parameter, Tensor
from edgefw.errors import QuantizationError
from edgefw.ir import QuantParams
from edgefw.nn.module import Module
from edgefw.ops.function import Function
from quantize.qparams import (
    check_activation_dtype,
    compute_qparams,
    is_symmetric_dtype,
    qrange,
    weight_qparams,
)

#: Weight of the newest batch in the moving average of activation ranges (PyTorch's
#: ``averaging_constant``): about the last 100 batches shape the range.
DEFAULT_EMA_MOMENTUM = 0.01


def _along(param: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    """A per-axis parameter shaped to broadcast against an array of rank ``ndim``."""
    if axis is None or param.ndim == 0:
        return param
    shape = [1] * ndim
    shape[axis % ndim] = param.shape[0]
    return param.reshape(shape)


class FakeQuantize(Function):
    """Quantize and dequantize in one step; straight-through gradient inside the range.

    ``scale`` (float32) and ``zero_point`` (its integer dtype names the stored type) are
    scalars, or 1-D along ``axis``; ``qmin``/``qmax`` bound the integer codes.
    """

    def forward(self, x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, qmin: int,
                qmax: int, axis: int | None = None) -> np.ndarray:
        s = _along(np.asarray(scale, np.float32), x.ndim, axis).astype(x.dtype)
        z = _along(np.asarray(zero_point), x.ndim, axis).astype(x.dtype)
        # Float32 division then round half to even: what QuantizeLinear computes.
        q = np.rint(x / s) + z
        self.inside = (q >= qmin) & (q <= qmax)
        return ((np.clip(q, qmin, qmax) - z) * s).astype(x.dtype, copy=False)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return np.where(self.inside, g, 0).astype(g.dtype, copy=False)

    def lower(self, e: Any, x: Any, scale: np.ndarray, zero_point: np.ndarray, qmin: int,
              qmax: int, axis: int | None = None) -> Any:
        scale = np.asarray(scale, np.float32)
        zero_point = np.asarray(zero_point)
        s = e.const(scale, "scale")
        z = e.const(zero_point, "zero_point")
        attrs = {} if axis is None else {"axis": int(axis)}
        q = e.node("QuantizeLinear", [x, s, z], attrs)
        dq = e.node("DequantizeLinear", [q, s, z], attrs)
        q.quant = dq.quant = QuantParams(scale, zero_point, axis)
        return dq


class WeightFakeQuant(Module):
    """Symmetric int8 fake quantization of a weight from its current values: one scale per
    slice along ``axis`` (per output channel), or one for the tensor (``axis`` None)."""

    def __init__(self, axis: int | None = 0) -> None:
        super().__init__()
        self.axis = axis

    def qparams(self, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        params = weight_qparams(weight, self.axis)
        return params.scale, params.zero_point

    def forward(self, weight: Tensor) -> Tensor:
        scale, zero_point = self.qparams(weight.data)
        qmin, qmax = qrange("int8", symmetric=True)
        return FakeQuantize.apply(weight, scale=scale, zero_point=zero_point, qmin=qmin,
                                  qmax=qmax, axis=None if scale.ndim == 0 else self.axis)

    def extra_repr(self) -> str:
        return "int8 symmetric, " + ("per tensor" if self.axis is None else
                                     f"per channel (axis {self.axis})")


class ActivationFakeQuant(Module):
    """Per-tensor fake quantization of an activation with a moving-average range.

    In training mode each batch's min/max update the range (the first batch sets it);
    in eval mode the range is frozen — except that an observer which has seen nothing yet
    takes the first batch it gets, so a model is never quantized with a made-up range.
    The range always includes 0, so zero padding and ReLU's floor are exact.
    """

    def __init__(self, dtype: str = "int8", momentum: float = DEFAULT_EMA_MOMENTUM) -> None:
        super().__init__()
        check_activation_dtype(dtype)
        if not 0.0 < float(momentum) <= 1.0:
            raise QuantizationError(f"EMA momentum must be in (0, 1], got {momentum!r}")
        self.dtype, self.momentum = dtype, float(momentum)
        self.register_buffer("min_val", np.zeros((), np.float32))
        self.register_buffer("max_val", np.zeros((), np.float32))
        self.register_buffer("batches_observed", np.zeros((), np.int64))

    @property
    def observed(self) -> bool:
        return int(self.batches_observed) > 0

    def observe(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise QuantizationError(f"fake quantization observed a non-finite activation "
                                    f"(min {lo}, max {hi}); the model diverged")
        if self.observed:
            m = self.momentum
            lo = (1.0 - m) * float(self.min_val) + m * lo
            hi = (1.0 - m) * float(self.max_val) + m * hi
        self.min_val = np.asarray(lo, np.float32)
        self.max_val = np.asarray(hi, np.float32)
        self.batches_observed = np.asarray(int(self.batches_observed) + 1, np.int64)

    def qparams(self) -> tuple[np.ndarray, np.ndarray]:
        """Scale and zero point of the current range (QuantizationError before any data)."""
        if not self.observed:
            raise QuantizationError("this activation observer has seen no data; run the "
                                    "prepared model on some batches (fit) before converting")
        params = compute_qparams(float(self.min_val), float(self.max_val), self.dtype,
                                 symmetric=is_symmetric_dtype(self.dtype))
        return params.scale, params.zero_point

    def forward(self, x: Tensor) -> Tensor:
        if self.training or not self.observed:
            self.observe(x.data)
        scale, zero_point = self.qparams()
        qmin, qmax = qrange(self.dtype)
        return FakeQuantize.apply(x, scale=scale, zero_point=zero_point, qmin=qmin, qmax=qmax)

    def extra_repr(self) -> str:
        state = (f"range [{float(self.min_val):.4g}, {float(self.max_val):.4g}]"
                 if self.observed else "not observed")
        return f"{self.dtype}, momentum={self.momentum}, {state}"


# ---------------------------------------------------------------------- QAT layers
#: Activations a QAT layer absorbs: name -> (Clip min, Clip max); max None is Relu.
ABSORBED_ACTIVATIONS: dict[str, tuple[float, float | None]] = {"relu": (0.0, None),
                                                               "relu6": (0.0, 6.0)}


class _QATLayer(Module):
    """Shared parts of the QAT layers: parameters from arrays (no random initialisation),
    the absorbed activation and the fake-quant modules."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, activation: str | None,
                 quantize_input: bool, per_channel: bool, activation_dtype: str,
                 momentum: float) -> None:
        super().__init__()
        if activation is not None and activation not in ABSORBED_ACTIVATIONS:
            raise QuantizationError(f"unsupported absorbed activation {activation!r}; choose "
                                    f"one of {', '.join(ABSORBED_ACTIVATIONS)} or None")
        self.weight = Parameter(np.array(weight, np.float32))
        self.bias = None if bias is None else Parameter(np.array(bias, np.float32))
        self.activation = activation
        self.input_quant = (ActivationFakeQuant(activation_dtype, momentum)
                            if quantize_input else None)
        self.weight_quant = WeightFakeQuant(0 if per_channel else None)
        self.output_quant = ActivationFakeQuant(activation_dtype, momentum)

    def _layer(self, x: Tensor, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        if self.input_quant is not None:
            x = self.input_quant(x)
        y = self._layer(x, self.weight_quant(self.weight))
        if self.activation is not None:
            lo, hi = ABSORBED_ACTIVATIONS[self.activation]
            y = F.relu(y) if hi is None else y.clip(lo, hi)
        return self.output_quant(y)


class QATConv2d(_QATLayer):
    """A Conv2d for quantization-aware training (see the module docstring)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None = None,
                 stride: Any = (1, 1), padding: Any = (0, 0), dilation: Any = (1, 1),
                 groups: int = 1, activation: str | None = None, quantize_input: bool = False,
                 per_channel: bool = True, activation_dtype: str = "int8",
                 momentum: float = DEFAULT_EMA_MOMENTUM) -> None:
        super().__init__(weight, bias, activation, quantize_input, per_channel,
                         activation_dtype, momentum)
        self.out_channels, self.in_channels = weight.shape[0], weight.shape[1] * int(groups)
        self.kernel_size = tuple(weight.shape[2:])
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups = int(groups)

    def _layer(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, groups={self.groups}, "
                f"activation={self.activation}")


class QATLinear(_QATLayer):
    """A Linear for quantization-aware training (see the module docstring)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None = None,
                 activation: str | None = None, quantize_input: bool = False,
                 per_channel: bool = True, activation_dtype: str = "int8",
                 momentum: float = DEFAULT_EMA_MOMENTUM) -> None:
        super().__init__(weight, bias, activation, quantize_input, per_channel,
                         activation_dtype, momentum)
        self.out_features, self.in_features = weight.shape

    def _layer(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.linear(x, weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"activation={self.activation}")


__all__ = [
    "ABSORBED_ACTIVATIONS",
    "DEFAULT_EMA_MOMENTUM",
    "ActivationFakeQuant",
    "FakeQuantize",
    "QATConv2d",
    "QATLinear",
    "WeightFakeQuant",
]
