"""DataLoader: iterate over a dataset in (shuffled) batches of edgefw Tensors.

>>> import numpy as np
>>> from edgefw.data import TensorDataset
>>> loader = DataLoader(TensorDataset(np.arange(10).reshape(5, 2), np.arange(5)), batch_size=2)
>>> len(loader), [y.numpy().tolist() for _, y in loader]
(3, [[0, 1], [2, 3], [4]])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from edgefw.data.dataset import Subset, TensorDataset, seeded_generator
from edgefw.errors import DataError, ShapeError

_STATE_KEYS = ("generator", "order", "batches_done", "num_samples")


def default_collate(samples: list[Any]) -> Any:
    """Stack a list of samples into one batch of numpy arrays, keeping their structure.

    Arrays (and edgefw Tensors) are stacked along a new first axis; Python ints become an
    int64 array, Python floats float32 (edgefw's default float), numpy scalars keep their
    dtype; tuples, lists and dicts are collated field by field; strings stay a list.

    >>> batch = default_collate([(np.zeros(2), 1), (np.ones(2), 0)])
    >>> batch[0].shape, batch[1]
    ((2, 2), array([1, 0]))
    """
    if not samples:
        raise DataError("default_collate: got an empty list of samples")
    first = samples[0]
    if isinstance(first, (str, bytes)):
        return list(samples)
    if isinstance(first, Mapping):
        keys = list(first)
        for position, sample in enumerate(samples):
            if not isinstance(sample, Mapping) or list(sample) != keys:
                raise DataError(
                    f"default_collate: sample {position} is not a dict with keys {keys}"
                )
        return {key: default_collate([sample[key] for sample in samples]) for key in keys}
    if isinstance(first, (tuple, list)):
        for position, sample in enumerate(samples):
            if not isinstance(sample, (tuple, list)) or len(sample) != len(first):
                raise DataError(
                    f"default_collate: sample {position} is not a sequence of {len(first)} "
                    f"fields like sample 0 (got {type(sample).__name__})"
                )
        fields = [default_collate([sample[i] for sample in samples]) for i in range(len(first))]
        if hasattr(first, "_fields"):  # namedtuple
            return type(first)(*fields)
        return tuple(fields) if isinstance(first, tuple) else fields
    arrays = [_sample_array(sample, position) for position, sample in enumerate(samples)]
    for position, array in enumerate(arrays):
        if array.shape != arrays[0].shape:
            raise ShapeError(
                f"default_collate: samples have different shapes: {arrays[0].shape} (sample 0) "
                f"and {array.shape} (sample {position}); pass a collate_fn that pads them"
            )
    return np.stack(arrays)


def _sample_array(sample: Any, position: int) -> np.ndarray:
    if isinstance(sample, np.ndarray):
        return sample
    if isinstance(getattr(sample, "data", None), np.ndarray):  # an edgefw Tensor
        return sample.data
    if isinstance(sample, (bool, np.bool_)):
        return np.asarray(sample, dtype=np.bool_)
    if isinstance(sample, (np.integer, np.floating)):
        return np.asarray(sample)
    if isinstance(sample, int):
        return np.asarray(sample, dtype=np.int64)
    if isinstance(sample, float):
        return np.asarray(sample, dtype=np.float32)
    raise DataError(
        f"default_collate: cannot batch sample field {position} of type "
        f"{type(sample).__name__}; pass collate_fn"
    )


def _wrap_tensors(batch: Any) -> Any:
    """Wrap every numpy array in a (collated) batch in an edgefw Tensor, without copying."""
    # Imported here so edgefw.data imports without the autograd engine.
    from edgefw.autograd import Tensor

    def wrap(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return Tensor(value)
        if isinstance(value, dict):
            return {key: wrap(item) for key, item in value.items()}
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*(wrap(item) for item in value))
        if isinstance(value, tuple):
            return tuple(wrap(item) for item in value)
        if isinstance(value, list) and not (value and isinstance(value[0], (str, bytes))):
            return [wrap(item) for item in value]
        return value

    return wrap(batch)


def _tensor_arrays(dataset: Any) -> tuple[tuple[np.ndarray, ...], np.ndarray | None] | None:
    """The arrays behind a TensorDataset (possibly inside Subsets), and the index map.

    Returns None for any other dataset. The index map turns positions in ``dataset`` into
    rows of the arrays (None: identity), so a batch is one fancy-index per array.
    """
    index_map: np.ndarray | None = None
    while isinstance(dataset, Subset):
        index_map = dataset.indices if index_map is None else dataset.indices[index_map]
        dataset = dataset.dataset
    if type(dataset) is not TensorDataset:  # a subclass may override __getitem__
        return None
    return dataset.arrays, index_map


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` samples.

    Each batch has the structure of a sample with every field batched into an
    :class:`edgefw.autograd.Tensor` wrapping a numpy array: a tuple ``(images, labels)`` for a
    TensorDataset or tuple samples, a single Tensor for samples that are one array. With
    ``collate_fn``, the list of samples goes to it and its result is yielded as is.

    A :class:`TensorDataset` (also inside :class:`Subset`, as ``random_split`` returns) is
    batched by fancy-indexing its arrays with the batch's indices, one ``array[indices]`` per
    array; other datasets go through ``__getitem__`` and :func:`default_collate`.

    With ``shuffle=True`` each ``iter(loader)`` (each epoch) draws a new permutation: from
    a generator of the loader's own, seeded with ``seed``, or, without a seed, from the
    global generator of :mod:`edgefw.random`. :meth:`state_dict` and
    :meth:`load_state_dict` save and restore where the loader is (its generator, and the
    current epoch's order and progress), so a resumed run sees exactly the same batches.

    >>> from edgefw.data import TensorDataset
    >>> data = TensorDataset(np.arange(6))
    >>> loader = DataLoader(data, batch_size=4, shuffle=True, seed=0, drop_last=True)
    >>> len(loader), [batch.numpy().shape for (batch,) in loader]
    (1, [(4,)])
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise DataError(
                f"DataLoader: dataset must have __len__ and __getitem__, got "
                f"{type(dataset).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise DataError(f"DataLoader: batch_size must be an int, got {batch_size!r}")
        if batch_size <= 0:
            raise DataError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if collate_fn is not None and not callable(collate_fn):
            raise DataError(f"DataLoader: collate_fn must be callable, got {collate_fn!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.seed = seed
        # None: draw from edgefw.random's global generator at each epoch.
        self._generator = None if seed is None else seeded_generator(seed, "DataLoader")
        self._epoch_id = 0
        self._order: np.ndarray | None = None  # the current epoch's sample order
        self._batches_done = 0  # batches yielded so far in the current epoch
        self._resume: tuple[np.ndarray | None, int] | None = None

    def __len__(self) -> int:
        num_samples = len(self.dataset)
        if self.drop_last:
            return num_samples // self.batch_size
        return -(-num_samples // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        num_samples = len(self.dataset)
        if self._resume is not None:
            order, start = self._resume
            self._resume = None
        else:
            order = self._draw_generator().permutation(num_samples) if self.shuffle else None
            start = 0
        self._epoch_id += 1
        self._order = order
        self._batches_done = start
        if start >= len(self):
            self._order = None
            self._batches_done = 0
        # The permutation is drawn above, eagerly, so the generator state is the same
        # whether or not the first batch has been fetched yet.
        return self._batches(order, start, num_samples, self._epoch_id)

    def _draw_generator(self) -> np.random.Generator:
        return self._generator if self._generator is not None else seeded_generator(None, "")

    def _batches(
        self, order: np.ndarray | None, start: int, num_samples: int, epoch_id: int
    ) -> Iterator[Any]:
        fetch = self._fetcher()
        num_batches = len(self)
        for batch_number in range(start, num_batches):
            low = batch_number * self.batch_size
            high = min(low + self.batch_size, num_samples)
            indices = order[low:high] if order is not None else np.arange(low, high)
            batch = fetch(indices)
            if epoch_id == self._epoch_id:  # an older iterator must not move the state
                self._batches_done = batch_number + 1
                if self._batches_done == num_batches:  # epoch over: back to a clean boundary
                    self._order = None
                    self._batches_done = 0
            yield batch

    def _fetcher(self) -> Callable[[np.ndarray], Any]:
        if self.collate_fn is None:
            found = _tensor_arrays(self.dataset)
            if found is not None:
                arrays, index_map = found

                def fetch_rows(indices: np.ndarray) -> Any:
                    rows = indices if index_map is None else index_map[indices]
                    return _wrap_tensors(tuple(array[rows] for array in arrays))

                return fetch_rows

        def fetch_samples(indices: np.ndarray) -> Any:
            samples = [self.dataset[int(index)] for index in indices]
            if self.collate_fn is not None:
                return self.collate_fn(samples)
            return _wrap_tensors(default_collate(samples))

        return fetch_samples

    def state_dict(self) -> dict[str, Any]:
        """Where the loader is: its generator state, and the current epoch's progress.

        ``generator`` is the state of the loader's own generator (None for a loader
        without a seed: that one draws from :mod:`edgefw.random`, whose state the caller
        saves); ``order`` the current epoch's sample order (None between epochs or without
        shuffling); ``batches_done`` how many of its batches were yielded.

        >>> loader = DataLoader(list(range(4)), batch_size=2, shuffle=True, seed=3)
        >>> sorted(loader.state_dict())
        ['batches_done', 'generator', 'num_samples', 'order']
        """
        return {
            "generator": None if self._generator is None else self._generator.bit_generator.state,
            "order": None if self._order is None else self._order.copy(),
            "batches_done": self._batches_done,
            "num_samples": len(self.dataset),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next ``iter(loader)`` continues from there.

        >>> a = DataLoader(list(range(4)), batch_size=2, shuffle=True, seed=3)
        >>> b = DataLoader(list(range(4)), batch_size=2, shuffle=True, seed=99)
        >>> it = iter(a); _ = next(it)
        >>> b.load_state_dict(a.state_dict())
        >>> next(it).numpy().tolist() == next(iter(b)).numpy().tolist()
        True
        """
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise DataError(f"DataLoader.load_state_dict: state lacks keys {missing}")
        num_samples = len(self.dataset)
        if state["num_samples"] != num_samples:
            raise DataError(
                f"DataLoader.load_state_dict: state is for a dataset of {state['num_samples']} "
                f"samples, this loader's has {num_samples}"
            )
        batches_done = state["batches_done"]
        if not isinstance(batches_done, (int, np.integer)) or not 0 <= batches_done <= len(self):
            raise DataError(
                f"DataLoader.load_state_dict: batches_done must be in 0..{len(self)}, "
                f"got {batches_done!r}"
            )
        order = state["order"]
        if order is not None:
            order = np.asarray(order)
            if (
                order.shape != (num_samples,)
                or not np.issubdtype(order.dtype, np.integer)
                or not np.array_equal(np.sort(order), np.arange(num_samples))
            ):
                raise DataError(
                    "DataLoader.load_state_dict: order must be a permutation of "
                    f"0..{num_samples - 1}, got shape {order.shape} of {order.dtype}"
                )
        if self.shuffle and order is None and batches_done:
            raise DataError(
                "DataLoader.load_state_dict: a shuffling loader needs the epoch's order to "
                f"resume after {batches_done} batches, but order is None"
            )
        generator_state = state["generator"]
        if (generator_state is None) != (self._generator is None):
            raise DataError(
                "DataLoader.load_state_dict: the state was saved from a loader "
                f"{'without' if generator_state is None else 'with'} a seed; this one has "
                f"seed={self.seed!r}"
            )
        if self._generator is not None:
            try:
                self._generator.bit_generator.state = generator_state
            except (TypeError, ValueError, KeyError) as error:
                raise DataError(
                    f"DataLoader.load_state_dict: bad generator state: {error}"
                ) from None
        self._order = order
        self._batches_done = int(batches_done)
        self._resume = (order, int(batches_done)) if (order is not None or batches_done) else None

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed!r})"
        )


__all__ = ["DataLoader", "default_collate"]
