"""Layers, containers and losses (PyTorch-style and Keras-style)."""

from __future__ import annotations

from edgefw.nn import init
from edgefw.nn.container import ModuleList, Sequential
from edgefw.nn.keras_layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    GlobalAveragePooling2D,
    LazyLayer,
    MaxPooling2D,
)
from edgefw.nn.layers import (
    GELU,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
    Tanh,
)
from edgefw.nn.loss import (
    BCEWithLogitsLoss,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SparseCategoricalCrossentropy,
    get_loss,
)
from edgefw.nn.module import Module

__all__ = [
    "GELU", "AdaptiveAvgPool2d", "AveragePooling2D", "AvgPool2d", "BCEWithLogitsLoss",
    "BatchNorm1d", "BatchNorm2d", "BatchNormalization", "BinaryCrossentropy",
    "CategoricalCrossentropy", "Conv2D", "Conv2d", "CrossEntropyLoss", "Dense", "Dropout",
    "Embedding", "Flatten", "GlobalAveragePooling2D", "Identity", "L1Loss", "LayerNorm",
    "LazyLayer", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "MaxPooling2D",
    "Module", "ModuleList", "NLLLoss", "ReLU", "ReLU6", "Sequential", "Sigmoid", "Softmax",
    "SparseCategoricalCrossentropy", "Tanh", "get_loss", "init",
]
