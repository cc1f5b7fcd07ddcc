"""Keras-style layers: sizes inferred on the first call, activations by name, Keras'
initialisers and channels-last images, so a Keras model translates line by line.

>>> from edgefw import nn
>>> model = nn.Sequential([
...     nn.Flatten(input_shape=(28, 28)),
...     nn.Dense(128, activation="relu"),
...     nn.Dense(10, activation="softmax"),
... ])
>>> model[1].weight.shape
(128, 784)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefw import functional as F
from edgefw.autograd import Parameter, Tensor
from edgefw.errors import ConfigError, ShapeError
from edgefw.nn import init
from edgefw.nn.layers import _BatchNorm, _pair
from edgefw.nn.layers import activation as make_activation
from edgefw.nn.module import Module

_FORMATS = ("channels_last", "channels_first")


def _initializer(name: str) -> Any:
    try:
        return init.INITIALIZERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown initializer {name!r}; known: {', '.join(sorted(init.INITIALIZERS))}"
        ) from None


def _check_format(data_format: str) -> str:
    if data_format not in _FORMATS:
        raise ConfigError(f"data_format must be one of {_FORMATS}, got {data_format!r}")
    return data_format


def _to_nchw(x: Tensor, data_format: str, who: str) -> Tensor:
    if x.ndim != 4:
        layout = "(N, H, W, C)" if data_format == "channels_last" else "(N, C, H, W)"
        raise ShapeError(f"{who} expects 4-D input {layout}, got shape {x.shape}")
    return x.permute(0, 3, 1, 2) if data_format == "channels_last" else x


def _from_nchw(y: Tensor, data_format: str) -> Tensor:
    return y.permute(0, 2, 3, 1) if data_format == "channels_last" else y


class LazyLayer(Module):
    """A layer whose parameters are created by ``build(input_shape)`` on its first call."""

    def __init__(self, input_shape: Any = None) -> None:
        super().__init__()
        self.built = False
        self.input_shape = None if input_shape is None else tuple(input_shape)

    def build(self, input_shape: tuple[int, ...]) -> None:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.built:
            from edgefw.nn.module import as_input

            shape = tuple(as_input(args[0]).shape)
            self.build(shape)
            self.built = True
            self.built_input_shape = shape
        return super().__call__(*args, **kwargs)


class Dense(LazyLayer):
    """Fully connected layer on the last axis: ``activation(x @ W.T + b)``."""

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 input_shape: Any = None) -> None:
        super().__init__(input_shape)
        if units <= 0:
            raise ConfigError(f"Dense: units must be positive, got {units}")
        self.units, self.use_bias = int(units), use_bias
        self.activation_name = activation
        self.activation = make_activation(activation)
        self._init = (_initializer(kernel_initializer), _initializer(bias_initializer))

    def build(self, input_shape: tuple[int, ...]) -> None:
        fan_in = int(input_shape[-1])
        self.weight = self._init[0](Parameter(np.zeros((self.units, fan_in), np.float32)))
        self.bias = (self._init[1](Parameter(np.zeros(self.units, np.float32)))
                     if self.use_bias else None)

    def forward(self, x: Tensor) -> Tensor:
        y = F.linear(x, self.weight, self.bias)
        return y if self.activation is None else self.activation(y)

    def extra_repr(self) -> str:
        return f"units={self.units}, activation={self.activation_name}"


class Conv2D(LazyLayer):
    """Keras Conv2D: ``filters`` output channels, channels-last by default."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str = "channels_last", dilation_rate: Any = 1, groups: int = 1,
                 activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 input_shape: Any = None) -> None:
        super().__init__(input_shape)
        self.filters, self.kernel_size = int(filters), _pair(kernel_size)
        self.strides, self.dilation_rate = _pair(strides), _pair(dilation_rate)
        if padding not in ("valid", "same"):
            raise ConfigError(f"Conv2D: padding must be 'valid' or 'same', got {padding!r}")
        self.padding, self.groups, self.use_bias = padding, int(groups), use_bias
        self.data_format = _check_format(data_format)
        self.activation_name = activation
        self.activation = make_activation(activation)
        self._init = (_initializer(kernel_initializer), _initializer(bias_initializer))

    def build(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) != 4:
            raise ShapeError(f"Conv2D expects 4-D input, got shape {input_shape}")
        channels = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        if channels % self.groups or self.filters % self.groups:
            raise ShapeError(
                f"Conv2D: {channels} input channels and {self.filters} filters must be "
                f"divisible by groups={self.groups}"
            )
        shape = (self.filters, channels // self.groups) + self.kernel_size
        self.weight = self._init[0](Parameter(np.zeros(shape, np.float32)))
        self.bias = (self._init[1](Parameter(np.zeros(self.filters, np.float32)))
                     if self.use_bias else None)

    def forward(self, x: Tensor) -> Tensor:
        x = _to_nchw(x, self.data_format, "Conv2D")
        y = F.conv2d(x, self.weight, self.bias, self.strides, self.padding,
                     self.dilation_rate, self.groups)
        if self.activation is not None:
            y = self.activation(y)
        return _from_nchw(y, self.data_format)

    def extra_repr(self) -> str:
        return (f"filters={self.filters}, kernel_size={self.kernel_size}, "
                f"strides={self.strides}, padding={self.padding!r}, "
                f"activation={self.activation_name}")


class _Pooling2D(Module):
    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str = "channels_last") -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ConfigError(f"{type(self).__name__}: padding must be 'valid' or 'same'")
        self.pool_size = _pair(pool_size)
        self.strides = self.pool_size if strides is None else _pair(strides)
        self.padding, self.data_format = padding, _check_format(data_format)

    def extra_repr(self) -> str:
        return f"pool_size={self.pool_size}, strides={self.strides}"


class MaxPooling2D(_Pooling2D):
    def forward(self, x: Tensor) -> Tensor:
        x = _to_nchw(x, self.data_format, "MaxPooling2D")
        y = F.max_pool2d(x, self.pool_size, self.strides, self.padding)
        return _from_nchw(y, self.data_format)


class AveragePooling2D(_Pooling2D):
    def forward(self, x: Tensor) -> Tensor:
        x = _to_nchw(x, self.data_format, "AveragePooling2D")
        # Keras never counts padding in the average.
        y = F.avg_pool2d(x, self.pool_size, self.strides, self.padding, count_include_pad=False)
        return _from_nchw(y, self.data_format)


class GlobalAveragePooling2D(Module):
    def __init__(self, data_format: str = "channels_last", keepdims: bool = False) -> None:
        super().__init__()
        self.data_format, self.keepdims = _check_format(data_format), keepdims

    def forward(self, x: Tensor) -> Tensor:
        y = F.global_avg_pool2d(_to_nchw(x, self.data_format, "GlobalAveragePooling2D"))
        if self.keepdims:
            return _from_nchw(y, self.data_format)
        return y.flatten(1)


class BatchNormalization(LazyLayer):
    """Keras BatchNormalization over ``axis`` (default -1, the channels of channels-last
    data). ``momentum`` is Keras' (the running average's decay, 0.99)."""

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 input_shape: Any = None) -> None:
        super().__init__(input_shape)
        self.axis, self.momentum, self.epsilon = axis, momentum, epsilon

    def build(self, input_shape: tuple[int, ...]) -> None:
        channels = input_shape[self.axis]
        self.norm = _BatchNorm(channels, eps=self.epsilon, momentum=1.0 - self.momentum)
        self.norm._ranks = (len(input_shape),)
        self.norm.training = self.training

    def forward(self, x: Tensor) -> Tensor:
        axis = self.axis % x.ndim
        if axis == 1:
            return self.norm(x)
        perm = [0, axis] + [i for i in range(1, x.ndim) if i != axis]
        inverse = list(np.argsort(perm))
        return self.norm(x.permute(*perm)).permute(*inverse)
