"""Feeding data to fit/evaluate/predict: numpy arrays cut into batches, or DataLoaders.

Arrays are batched with one slice (unshuffled) or one fancy index (shuffled) per array and
step; inputs are cast per batch to the model's float type (uint8 images and float64 arrays
become float32, as in Keras), so no copy of the whole dataset is made.

>>> import numpy as np
>>> from edgefw import models
>>> data = training_data(models.build("mlp"), np.zeros((5, 28, 28), np.uint8),
...                      np.zeros(5, np.int64), "fit", targets=True)
>>> [xb.dtype.name for xb, _ in data.batches(2)]
['float32', 'float32', 'float32']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgefw.autograd import Tensor
from edgefw.errors import ConfigError, DataError, ShapeError
from edgefw.nn.container import Sequential
from edgefw.nn.layers import Embedding
from edgefw.nn.module import Module


def model_float_type(model: Module) -> np.dtype:
    """The dtype of the model's floating parameters (float32 unless cast, or unbuilt)."""
    return next((p.data.dtype for p in model.parameters() if p.data.dtype.kind == "f"),
                np.dtype(np.float32))


def first_layer(model: Module) -> Module:
    layer = model
    while isinstance(layer, Sequential) and len(layer):
        layer = layer[0]
    return layer


def input_caster(model: Module) -> Callable[[np.dtype], np.dtype | None]:
    """Which dtype a batch of a given dtype is cast to (None: none). Like Keras, numbers
    become the model's float type, except integer indices for a first Embedding layer."""
    float_type = model_float_type(model)
    keep_ints = isinstance(first_layer(model), Embedding)

    def target(dtype: np.dtype) -> np.dtype | None:
        if dtype == float_type or (keep_ints and dtype.kind in "iu"):
            return None
        if dtype.kind in "fiub":
            return float_type
        raise DataError(f"model inputs must be numbers, got an array of dtype {dtype}")

    return target


def as_array(value: Any, name: str, who: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except (ValueError, TypeError) as err:
            raise DataError(f"{who}: {name} cannot be read as an array ({err})") from None
    if value.ndim == 0:
        raise DataError(f"{who}: {name} must have a sample axis, got a scalar")
    if value.dtype.kind not in "fiub":
        raise DataError(f"{who}: {name} must hold numbers, got dtype {value.dtype}")
    return value


def is_loader(value: Any) -> bool:
    return (value is not None and hasattr(value, "__iter__")
            and not isinstance(value, np.ndarray | Tensor | list | tuple))


class ArrayData:
    """x (and y) arrays, cut into batches with one slice or fancy index per array."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None, cast: np.dtype | None) -> None:
        self.x, self.y, self.cast = x, y, cast

    def __len__(self) -> int:
        return len(self.x)

    def steps(self, batch_size: int) -> int:
        return -(-len(self.x) // batch_size)

    def batches(self, batch_size: int, order: np.ndarray | None = None) -> Iterator[tuple]:
        x, y, cast = self.x, self.y, self.cast
        for low in range(0, len(x), batch_size):
            index = slice(low, low + batch_size) if order is None else order[low:low + batch_size]
            xb = x[index] if cast is None else x[index].astype(cast)
            yield xb, (None if y is None else y[index])

    def sample(self) -> np.ndarray:
        return self.x[:1] if self.cast is None else self.x[:1].astype(self.cast)

    def split(self, fraction: float, who: str) -> tuple[ArrayData, ArrayData]:
        """Keras' validation_split: the last ``fraction`` of the samples, before shuffling."""
        split_at = int(math.floor(len(self.x) * (1.0 - fraction)))
        if split_at == 0 or split_at == len(self.x):
            raise ConfigError(f"{who}: validation_split={fraction} of {len(self.x)} samples "
                              f"leaves {split_at} for training and {len(self.x) - split_at} for "
                              "validation; both need at least one")
        train = ArrayData(self.x[:split_at], self.y[:split_at], self.cast)
        return train, ArrayData(self.x[split_at:], self.y[split_at:], self.cast)


class LoaderData:
    """A DataLoader (or any re-iterable of batches) yielding (inputs, targets) batches."""

    def __init__(self, loader: Any, caster: Callable, targets: bool, who: str) -> None:
        self.loader, self.caster, self.targets, self.who = loader, caster, targets, who

    def steps(self, batch_size: int) -> int | None:
        try:
            return len(self.loader)
        except TypeError:
            return None

    def _split(self, batch: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(batch, tuple | list) and len(batch) == 2:
            xb, yb = batch
        elif not self.targets:
            xb, yb = (batch[0] if isinstance(batch, tuple | list) else batch), None
        else:
            got = f"a {len(batch)}-tuple" if isinstance(batch, tuple | list) else type(batch)
            raise DataError(f"{self.who}: a DataLoader given as x must yield (inputs, targets) "
                            f"batches, got {getattr(got, '__name__', got)}")
        xb = np.asarray(getattr(xb, "data", xb))
        cast = self.caster(xb.dtype)
        return (xb if cast is None else xb.astype(cast)), (
            None if yb is None else np.asarray(getattr(yb, "data", yb)))

    def batches(self, batch_size: int, order: Any = None) -> Iterator[tuple]:
        for batch in self.loader:
            yield self._split(batch)

    def sample(self) -> np.ndarray | None:
        dataset = getattr(self.loader, "dataset", None)
        try:
            first = dataset[0]
        except Exception:  # noqa: BLE001 - any dataset; without a sample fit builds later
            return None
        first = first[0] if isinstance(first, tuple | list) else first
        xb = np.asarray(getattr(first, "data", first))[None]
        cast = self.caster(xb.dtype)
        return xb if cast is None else xb.astype(cast)


def training_data(model: Module, x: Any, y: Any, who: str,
                  targets: bool) -> ArrayData | LoaderData:
    """``x``/``y`` checked (lengths, rank against a Keras ``input_shape``) and wrapped for
    batching; ``x`` may instead be a DataLoader yielding batches (then ``y`` is None)."""
    caster = input_caster(model)
    if is_loader(x):
        if y is not None:
            raise ConfigError(f"{who}: y must be None when x is a DataLoader (it yields "
                              "(inputs, targets) batches)")
        return LoaderData(x, caster, targets, who)
    if x is None:
        raise ConfigError(f"{who}: x is required")
    xa = as_array(x, "x", who)
    if targets and y is None:
        raise ConfigError(f"{who}: y is missing; pass the targets y with the inputs x, or a "
                          "DataLoader yielding (inputs, targets) batches as x")
    ya = None
    if y is not None and targets:
        ya = as_array(y, "y", who)
        if len(ya) != len(xa):
            raise DataError(f"{who}: x has {len(xa)} samples but y has {len(ya)}; they must "
                            "match")
        if ya.dtype == np.float64:
            ya = ya.astype(np.float32)
    if len(xa) == 0:
        raise DataError(f"{who}: x has no samples")
    expected = getattr(first_layer(model), "input_shape", None)
    if expected is not None and (xa.ndim - 1 != len(expected) or any(
            e is not None and e != d for e, d in zip(expected, xa.shape[1:], strict=False))):
        wanted = ", ".join(map(str, expected))
        raise ShapeError(f"{who}: the model's first layer was given input_shape="
                         f"{tuple(expected)}, so x must have shape (N, {wanted}); got x of "
                         f"shape {xa.shape}")
    model.__dict__["_input_sample_shape"] = tuple(xa.shape[1:])
    return ArrayData(xa, ya, caster(xa.dtype))


def validation_set(model: Module, validation_data: Any,
                    who: str) -> ArrayData | LoaderData:
    """``fit``'s ``validation_data``: ``(x_val, y_val)`` or a DataLoader."""
    if isinstance(validation_data, tuple | list):
        if len(validation_data) != 2:
            raise ConfigError(f"{who}: validation_data must be (x_val, y_val) or a DataLoader, "
                              f"got a sequence of {len(validation_data)} items (sample weights "
                              "are not supported)")
        return training_data(model, validation_data[0], validation_data[1],
                             f"{who} validation_data", True)
    if is_loader(validation_data):
        return LoaderData(validation_data, input_caster(model), True, f"{who} validation_data")
    raise ConfigError(f"{who}: validation_data must be (x_val, y_val) or a DataLoader, got "
                      f"{type(validation_data).__name__}")
