"""DataLoader: batching, shuffling, resuming, the TensorDataset fast path, collation."""

from __future__ import annotations

import pickle
from collections import namedtuple

import numpy as np
import pytest

import edgefw.random
from edgefw.data import DataLoader, Dataset, TensorDataset, default_collate, random_split
from edgefw.errors import DataError, ShapeError


def arrays_of(batch) -> list[np.ndarray]:
    """The numpy arrays of a batch of Tensors (checking they are Tensors, not arrays)."""
    from edgefw.autograd import Tensor

    assert isinstance(batch, tuple)
    for tensor in batch:
        assert isinstance(tensor, Tensor) and not tensor.requires_grad
        assert tensor.numpy() is tensor.data or np.shares_memory(tensor.numpy(), tensor.data)
    return [tensor.data for tensor in batch]


def make_data(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64) * 10
    return TensorDataset(x, y), x, y


class ListDataset(Dataset):
    """A generic (non-TensorDataset) dataset over the same samples, for the slow path."""

    def __init__(self, *arrays):
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(array[index] for array in self.arrays)


def labels_per_batch(loader) -> list[list[int]]:
    return [arrays_of(batch)[1].tolist() for batch in loader]


def test_sequential_batches():
    data, x, y = make_data(10)
    loader = DataLoader(data, batch_size=4)
    batches = [arrays_of(batch) for batch in loader]
    assert len(loader) == 3 == len(batches)
    for number, (xb, yb) in enumerate(batches):
        np.testing.assert_array_equal(xb, x[number * 4 : number * 4 + 4])
        np.testing.assert_array_equal(yb, y[number * 4 : number * 4 + 4])
        assert xb.dtype == np.float32 and yb.dtype == np.int64
    assert [len(xb) for xb, _ in batches] == [4, 4, 2]
    assert [len(xb) for xb, _ in (arrays_of(b) for b in DataLoader(data, 4, drop_last=True))] == [
        4, 4]


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 64])
@pytest.mark.parametrize("batch_size", [1, 3, 8, 100])
@pytest.mark.parametrize("drop_last", [False, True])
def test_len_matches_the_batches_yielded(n, batch_size, drop_last):
    data = TensorDataset(np.arange(n))
    loader = DataLoader(data, batch_size=batch_size, drop_last=drop_last, shuffle=True, seed=0)
    sizes = [len(arrays_of(batch)[0]) for batch in loader]
    expected = [batch_size] * (n // batch_size)
    if not drop_last and n % batch_size:
        expected.append(n % batch_size)
    assert sizes == expected
    assert len(loader) == len(expected)


def test_batches_are_copies_not_views_of_the_dataset():
    data, x, _ = make_data(6)
    xb, _ = arrays_of(next(iter(DataLoader(data, batch_size=3))))
    xb[...] = -1
    assert x.min() == 0


def test_shuffle_follows_the_seeded_generator():
    data, _, y = make_data(10)
    loader = DataLoader(data, batch_size=3, shuffle=True, seed=42)
    reference = np.random.default_rng(42)
    for _ in range(3):  # each epoch draws the next permutation from the same generator
        order = reference.permutation(10)
        got = [label // 10 for labels in labels_per_batch(loader) for label in labels]
        assert got == order.tolist()


def test_same_seed_same_sequence_different_seed_different():
    data, _, _ = make_data(50)
    a = DataLoader(data, batch_size=8, shuffle=True, seed=1)
    b = DataLoader(data, batch_size=8, shuffle=True, seed=1)
    c = DataLoader(data, batch_size=8, shuffle=True, seed=2)
    epochs_a = [labels_per_batch(a) for _ in range(3)]
    assert epochs_a == [labels_per_batch(b) for _ in range(3)]
    assert epochs_a != [labels_per_batch(c) for _ in range(3)]
    assert epochs_a[0] != epochs_a[1]  # a new order each epoch
    for epoch in epochs_a:
        assert sorted(label for labels in epoch for label in labels) == list(range(0, 500, 10))


def test_unseeded_shuffle_draws_from_edgefw_random():
    data, _, _ = make_data(30)
    loader = DataLoader(data, batch_size=7, shuffle=True)
    edgefw.random.manual_seed(11)
    first = labels_per_batch(loader)
    edgefw.random.manual_seed(11)
    assert labels_per_batch(loader) == first
    edgefw.random.manual_seed(11)
    expected = edgefw.random.generator().permutation(30)
    edgefw.random.manual_seed(11)
    assert [label // 10 for labels in labels_per_batch(loader) for label in labels] == \
        expected.tolist()


def run_epochs(loader, epochs, stop_after=None):
    """Consume batches; stop (like a crash) after ``stop_after`` batches in total."""
    seen = []
    for _ in range(epochs):
        for batch in loader:
            seen.append([array.copy() for array in arrays_of(batch)])
            if stop_after is not None and len(seen) == stop_after:
                return seen
    return seen


@pytest.mark.parametrize("stop_after", [2, 3, 4, 7, 11])  # mid-epoch and at epoch boundaries
@pytest.mark.parametrize("drop_last", [False, True])
def test_state_dict_resume_reproduces_an_uninterrupted_run(stop_after, drop_last):
    data, _, _ = make_data(13)
    settings = {"batch_size": 4, "shuffle": True, "seed": 5, "drop_last": drop_last}
    batches_per_epoch = len(DataLoader(data, **settings))
    epochs = 4
    uninterrupted = run_epochs(DataLoader(data, **settings), epochs)

    first = DataLoader(data, **settings)
    seen = run_epochs(first, epochs, stop_after=stop_after)
    checkpoint = pickle.loads(pickle.dumps(first.state_dict()))  # as a checkpoint would
    # A fresh process: a loader built the same way (its seed does not matter, the state wins).
    resumed = DataLoader(data, **{**settings, "seed": 999})
    resumed.load_state_dict(checkpoint)
    done_epochs, done_in_epoch = divmod(stop_after, batches_per_epoch)
    seen += run_epochs(resumed, 1)[: batches_per_epoch - done_in_epoch] if done_in_epoch else []
    seen += run_epochs(resumed, epochs - done_epochs - (1 if done_in_epoch else 0))

    assert len(seen) == len(uninterrupted) == epochs * batches_per_epoch
    for got, expected in zip(seen, uninterrupted, strict=True):
        for got_array, expected_array in zip(got, expected, strict=True):
            np.testing.assert_array_equal(got_array, expected_array)


def test_resume_without_shuffle_skips_the_batches_done():
    data, _, y = make_data(10)
    loader = DataLoader(data, batch_size=3)
    iterator = iter(loader)
    next(iterator)
    next(iterator)
    state = loader.state_dict()
    assert state["batches_done"] == 2 and state["order"] is None
    resumed = DataLoader(data, batch_size=3)
    resumed.load_state_dict(state)
    assert labels_per_batch(resumed) == [[60, 70, 80], [90]]
    assert labels_per_batch(resumed) == [[0, 10, 20], [30, 40, 50], [60, 70, 80], [90]]


def test_an_older_iterator_does_not_move_the_state():
    data, _, _ = make_data(10)
    loader = DataLoader(data, batch_size=2, shuffle=True, seed=0)
    old = iter(loader)
    next(old)
    new = iter(loader)
    next(new)
    next(old)
    next(old)
    assert loader.state_dict()["batches_done"] == 1


def test_load_state_dict_rejects_mismatched_state():
    data, _, _ = make_data(10)
    seeded = DataLoader(data, batch_size=2, shuffle=True, seed=0)
    iterator = iter(seeded)
    next(iterator)
    state = seeded.state_dict()
    with pytest.raises(DataError, match="dataset of 10 samples, this loader's has 9"):
        DataLoader(make_data(9)[0], batch_size=2, shuffle=True, seed=0).load_state_dict(state)
    with pytest.raises(DataError, match="with a seed"):
        DataLoader(data, batch_size=2, shuffle=True).load_state_dict(state)
    with pytest.raises(DataError, match="permutation"):
        seeded.load_state_dict({**state, "order": np.zeros(10, dtype=np.int64)})
    with pytest.raises(DataError, match="batches_done"):
        seeded.load_state_dict({**state, "batches_done": 6})
    with pytest.raises(DataError, match="lacks keys"):
        seeded.load_state_dict({"order": None})
    with pytest.raises(DataError, match="generator state"):
        seeded.load_state_dict({**state, "generator": {"bit_generator": "nonsense"}})


def test_fast_path_never_calls_getitem(monkeypatch):
    data, x, y = make_data(20)

    def forbidden(self, index):
        raise AssertionError("the TensorDataset fast path must not call __getitem__")

    fast = DataLoader(data, batch_size=6, shuffle=True, seed=3)
    train, _ = random_split(data, [15, 5], seed=1)
    fast_subset = DataLoader(train, batch_size=4, shuffle=True, seed=3)
    monkeypatch.setattr(TensorDataset, "__getitem__", forbidden)
    fast_batches = run_epochs(fast, 2)
    subset_batches = run_epochs(fast_subset, 2)
    monkeypatch.undo()
    # The per-item path over the same samples gives the same batches.
    slow = DataLoader(ListDataset(x, y), batch_size=6, shuffle=True, seed=3)
    slow_subset = DataLoader(train, batch_size=4, shuffle=True, seed=3, collate_fn=lambda s: (
        default_collate(s)))
    for got, expected in zip(fast_batches, run_epochs(slow, 2), strict=True):
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
    slow_subset_batches = [tuple(batch) for _ in range(2) for batch in slow_subset]
    for got, expected in zip(subset_batches, slow_subset_batches, strict=True):
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_generic_dataset_collates_nested_samples():
    from edgefw.autograd import Tensor

    Sample = namedtuple("Sample", ["image", "label"])

    class Nested(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, index):
            return {"pair": (np.full((2, 2), index, dtype=np.uint8), float(index) / 2),
                    "sample": Sample(np.int16(index), index), "name": f"s{index}"}

    batch = next(iter(DataLoader(Nested(), batch_size=3)))
    image, half = batch["pair"]
    assert isinstance(image, Tensor) and image.data.shape == (3, 2, 2)
    assert image.data.dtype == np.uint8 and image.data[2].tolist() == [[2, 2], [2, 2]]
    assert half.data.dtype == np.float32 and half.data.tolist() == [0.0, 0.5, 1.0]
    assert isinstance(batch["sample"], Sample)
    assert batch["sample"].image.data.dtype == np.int16
    assert batch["sample"].label.data.dtype == np.int64
    assert batch["name"] == ["s0", "s1", "s2"]


def test_single_array_samples_give_single_tensors():
    batches = list(DataLoader([np.ones(2) * i for i in range(5)], batch_size=2))
    assert [batch.data[:, 0].tolist() for batch in batches] == [[0, 1], [2, 3], [4]]


def test_custom_collate_fn_gets_the_samples():
    data, _, _ = make_data(5)
    received = []
    loader = DataLoader(data, batch_size=2, collate_fn=lambda samples: received.append(
        samples) or len(samples))
    assert list(loader) == [2, 2, 1]
    assert int(received[2][0][1]) == 40


def test_default_collate_errors():
    with pytest.raises(ShapeError, match=r"\(3,\) \(sample 0\) and \(2,\) \(sample 1\)"):
        default_collate([np.zeros(3), np.zeros(2)])
    with pytest.raises(DataError, match="sample 1"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(DataError, match="object"):
        default_collate([object(), object()])
    with pytest.raises(DataError, match="empty"):
        default_collate([])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"batch_size": 0}, "batch_size must be >= 1, got 0"), ({"batch_size": -3}, ">= 1"),
     ({"batch_size": 2.5}, "batch_size must be an int"), ({"batch_size": True}, "an int"),
     ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"collate_fn": 3}, "callable")],
)
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        DataLoader(make_data(4)[0], **kwargs)


def test_dataset_without_len_is_rejected():
    with pytest.raises(DataError, match="__len__"):
        DataLoader(iter(range(3)), batch_size=1)
