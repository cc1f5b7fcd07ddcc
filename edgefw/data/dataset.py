"""Datasets: indexable collections of samples, as in ``torch.utils.data``.

>>> import numpy as np
>>> data = TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
>>> len(data), data[1]
(5, (array([2., 3.]), np.int64(1)))
>>> train, val = random_split(data, [4, 1], seed=0)
>>> len(train), len(val)
(4, 1)
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgefw.errors import DataError, DTypeError, ShapeError


class Dataset(abc.ABC):
    """A map-style dataset: ``len(dataset)`` samples, ``dataset[i]`` for ``0 <= i < len``.

    Subclasses implement ``__len__`` and ``__getitem__``; a sample is usually a tuple such
    as ``(image, label)`` of numpy arrays or numbers, which the DataLoader stacks.

    >>> class Squares(Dataset):
    ...     def __len__(self):
    ...         return 3
    ...     def __getitem__(self, index):
    ...         return index, index * index
    >>> Squares()[2]
    (2, 4)
    """

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def __getitem__(self, index: int) -> Any: ...


def _as_array(value: Any, position: int) -> np.ndarray:
    # An edgefw Tensor keeps its array in `.data`; unwrapping by duck typing keeps this
    # module importable without the autograd engine.
    data = getattr(value, "data", None)
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(data, np.ndarray):
        array = data
    else:
        array = np.asarray(value)
    if array.ndim == 0:
        raise ShapeError(
            f"TensorDataset: argument {position} is a scalar; every array needs a first "
            "(sample) dimension"
        )
    return array


def _check_index(index: Any, length: int, owner: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise DTypeError(f"{owner} indices must be integers, got {type(index).__name__}")
    index = int(index)
    if not -length <= index < length:
        # IndexError (not an edgefw error) because it ends iteration over a sequence.
        raise IndexError(f"{owner} index {index} out of range for length {length}")
    return index + length if index < 0 else index


class TensorDataset(Dataset):
    """Samples are the rows of equally long arrays: ``data[i] == (a[i], b[i], ...)``.

    Accepts numpy arrays, edgefw Tensors (their ``.data`` is used, not copied) or anything
    ``np.asarray`` understands. The DataLoader batches it by fancy-indexing ``arrays``
    directly, without touching ``__getitem__``.

    >>> data = TensorDataset(np.zeros((3, 2)), np.array([0, 1, 2]))
    >>> data[-1][1], data.arrays[0].shape
    (np.int64(2), (3, 2))
    """

    def __init__(self, *arrays_or_tensors: Any):
        if not arrays_or_tensors:
            raise ShapeError("TensorDataset needs at least one array")
        self.arrays: tuple[np.ndarray, ...] = tuple(
            _as_array(value, position) for position, value in enumerate(arrays_or_tensors)
        )
        lengths = [array.shape[0] for array in self.arrays]
        if len(set(lengths)) != 1:
            shapes = ", ".join(str(array.shape) for array in self.arrays)
            raise ShapeError(
                f"TensorDataset: arrays must all have the same first dimension, got lengths "
                f"{lengths} (shapes {shapes})"
            )

    def __len__(self) -> int:
        return self.arrays[0].shape[0]

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        index = _check_index(index, len(self), "TensorDataset")
        return tuple(array[index] for array in self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{array.shape} {array.dtype}" for array in self.arrays)
        return f"TensorDataset({shapes})"


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> data = TensorDataset(np.arange(5))
    >>> Subset(data, [4, 0])[0]
    (np.int64(4),)
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray):
        index_array = np.asarray(indices)
        if index_array.size == 0:
            index_array = index_array.astype(np.int64)
        if index_array.ndim != 1 or not np.issubdtype(index_array.dtype, np.integer):
            raise DataError(
                f"Subset: indices must be a 1-D sequence of integers, got shape "
                f"{index_array.shape} of {index_array.dtype}"
            )
        length = len(dataset)
        out_of_range = (index_array < 0) | (index_array >= length)
        if out_of_range.any():
            raise DataError(
                f"Subset: index {int(index_array[out_of_range][0])} out of range for a "
                f"dataset of length {length}"
            )
        self.dataset = dataset
        self.indices: np.ndarray = index_array.astype(np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        index = _check_index(index, len(self), "Subset")
        return self.dataset[int(self.indices[index])]

    def __repr__(self) -> str:
        return f"Subset({self.dataset!r}, {len(self)} of {len(self.dataset)} samples)"


def seeded_generator(seed: int | None, owner: str) -> np.random.Generator:
    """A fresh generator seeded with ``seed``, or edgefw's global one when ``seed`` is None."""
    if seed is None:
        from edgefw.random import generator

        return generator()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"{owner}: seed must be a non-negative int or None, got {seed!r}")
    return np.random.default_rng(int(seed))


def _split_lengths(total: int, lengths: Sequence[int | float]) -> list[int]:
    """Turn lengths (counts summing to ``total`` or fractions summing to 1) into counts."""
    if not lengths:
        raise DataError("random_split: lengths is empty")
    if all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in lengths):
        counts = [int(n) for n in lengths]
        if any(n < 0 for n in counts):
            raise DataError(f"random_split: lengths must be non-negative, got {counts}")
        if sum(counts) != total:
            raise DataError(
                f"random_split: lengths {counts} sum to {sum(counts)}, but the dataset has "
                f"{total} samples"
            )
        return counts
    fractions = [float(f) for f in lengths]
    if any(not 0.0 <= f <= 1.0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise DataError(
            f"random_split: lengths {list(lengths)} are neither counts summing to the dataset "
            f"length ({total}) nor fractions in [0, 1] summing to 1"
        )
    counts = [math.floor(total * f) for f in fractions]
    # Hand out the samples flooring left over one at a time, as torch.utils.data does.
    for i in range(total - sum(counts)):
        counts[i % len(counts)] += 1
    return counts


def random_split(
    dataset: Dataset, lengths: Sequence[int | float], seed: int | None = None
) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)`` or fractions summing to 1. The same
    ``seed`` always gives the same split; without one, the permutation is drawn from the
    global generator in :mod:`edgefw.random` (see ``edgefw.manual_seed``).

    >>> data = TensorDataset(np.arange(10))
    >>> a, b = random_split(data, [0.8, 0.2], seed=1)
    >>> len(a), len(b), sorted(np.concatenate([a.indices, b.indices])) == list(range(10))
    (8, 2, True)
    """
    counts = _split_lengths(len(dataset), lengths)
    rng = seeded_generator(seed, "random_split")
    permutation = rng.permutation(len(dataset))
    bounds = np.cumsum([0] + counts)
    return [
        Subset(dataset, permutation[bounds[i] : bounds[i + 1]]) for i in range(len(counts))
    ]


__all__ = ["Dataset", "Subset", "TensorDataset", "random_split"]
