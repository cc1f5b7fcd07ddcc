"""The model zoo used by the CLI, the demo and the benchmarks, for 28x28 grayscale input.

The image models take float32 images of shape (N, 1, 28, 28) scaled to [0, 1] and return
logits of shape (N, 10); the transformer block maps (N, T, dim) to (N, T, dim).

>>> from edgefw import models
>>> net = models.build("lenet")
>>> net(np.zeros((2, 1, 28, 28), np.float32)).shape
(2, 10)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgefw import nn
from edgefw.errors import ConfigError


def mlp(num_classes: int = 10, hidden: int = 128) -> nn.Module:
    """The brief's MLP: Flatten, Linear 784->128, ReLU, Linear 128->10."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 input (first conv padded to keep 28x28), ReLU and max pooling."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Any) -> Any:
        return self.classifier(self.flatten(self.features(x)))


class ConvBNReLU6(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU6, the MobileNet building block."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU6()

    def forward(self, x: Any) -> Any:
        return self.act(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 conv then pointwise 1x1 conv, each with BatchNorm and ReLU6."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = ConvBNReLU6(cin, cin, 3, stride, groups=cin)
        self.pointwise = ConvBNReLU6(cin, cout, 1)

    def forward(self, x: Any) -> Any:
        return self.pointwise(self.depthwise(x))


class MobileNet(nn.Module):
    """A small MobileNet-style net for 28x28: stem, four depthwise-separable blocks,
    global average pooling and a linear classifier (about 8k parameters)."""

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            ConvBNReLU6(1, w, 3, stride=1),
            DepthwiseSeparable(w, 2 * w, stride=2),
            DepthwiseSeparable(2 * w, 2 * w, stride=1),
            DepthwiseSeparable(2 * w, 4 * w, stride=2),
            DepthwiseSeparable(4 * w, 4 * w, stride=1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(4 * w, num_classes)

    def forward(self, x: Any) -> Any:
        return self.classifier(self.flatten(self.pool(self.features(x))))


class TransformerBlock(nn.Module):
    """A pre-norm transformer encoder block on (N, T, dim) sequences: multi-head
    self-attention (matmul + softmax) and a GELU MLP, each with a residual add."""

    def __init__(self, dim: int = 32, heads: int = 4, hidden: int = 64,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"TransformerBlock: dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Any) -> Any:
        from edgefw import functional as F

        b, t, d = x.shape
        h, hd = self.heads, d // self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, h, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = F.softmax((q @ k.transpose(2, 3)) * (1.0 / float(np.sqrt(hd))), axis=-1)
        y = (att @ v).permute(0, 2, 1, 3).reshape(b, t, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.fc2(self.act(self.fc1(self.norm2(x)))))


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "lenet": LeNet5,
    "mobilenet": MobileNet,
    "transformer": TransformerBlock,
}

#: Example input shape (without the batch axis) of each zoo model.
INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "mlp": (1, 28, 28),
    "lenet": (1, 28, 28),
    "mobilenet": (1, 28, 28),
    "transformer": (16, 32),
}


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build a zoo model by name ("mlp", "lenet", "mobilenet"); checkpoints remember it."""
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(BUILDERS))}") from None
    model = builder(**kwargs)
    model.__dict__["_zoo_spec"] = {"name": name, "kwargs": kwargs}
    return model
