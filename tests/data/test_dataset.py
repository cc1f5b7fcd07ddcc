"""TensorDataset, Subset and random_split."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw.random
from edgefw.data import Dataset, Subset, TensorDataset, random_split
from edgefw.errors import DataError, DTypeError, ShapeError


def test_tensor_dataset_rows():
    x = np.arange(12).reshape(4, 3)
    y = np.array([5, 6, 7, 8])
    data = TensorDataset(x, y)
    assert len(data) == 4
    row, label = data[2]
    np.testing.assert_array_equal(row, [6, 7, 8])
    assert label == 7
    np.testing.assert_array_equal(data[-1][0], [9, 10, 11])
    with pytest.raises(IndexError, match="index 4 out of range for length 4"):
        data[4]
    with pytest.raises(IndexError):
        data[-5]
    with pytest.raises(DTypeError):
        data[1.0]
    assert [int(label) for _, label in data] == [5, 6, 7, 8]  # the sequence protocol ends


def test_tensor_dataset_length_mismatch_names_the_lengths():
    with pytest.raises(ShapeError) as info:
        TensorDataset(np.zeros((60000, 28, 28)), np.zeros(59999))
    assert "[60000, 59999]" in str(info.value)
    with pytest.raises(ShapeError, match="scalar"):
        TensorDataset(np.zeros(3), np.float32(1.0))
    with pytest.raises(ShapeError, match="at least one"):
        TensorDataset()


def test_tensor_dataset_unwraps_tensors_without_copying():
    from edgefw.autograd import Tensor

    x = Tensor(np.ones((3, 2), dtype=np.float32))
    data = TensorDataset(x, [0, 1, 2])
    assert data.arrays[0] is x.data
    assert data.arrays[1].tolist() == [0, 1, 2]


def test_dataset_is_abstract():
    with pytest.raises(TypeError):
        Dataset()


def test_subset():
    data = TensorDataset(np.arange(10) * 10)
    subset = Subset(data, [7, 2, 2])
    assert len(subset) == 3
    assert [int(subset[i][0]) for i in range(3)] == [70, 20, 20]
    assert int(subset[-1][0]) == 20
    with pytest.raises(DataError, match="index 10 out of range for a dataset of length 10"):
        Subset(data, [1, 10])
    with pytest.raises(DataError, match="index -1"):
        Subset(data, [-1])
    with pytest.raises(DataError, match="integers"):
        Subset(data, [0.5])
    assert len(Subset(data, [])) == 0


def covered_indices(parts) -> list[int]:
    return sorted(int(i) for part in parts for i in part.indices)


def test_random_split_counts_and_fractions():
    data = TensorDataset(np.arange(10))
    parts = random_split(data, [6, 3, 1], seed=0)
    assert [len(part) for part in parts] == [6, 3, 1]
    assert covered_indices(parts) == list(range(10))
    # The split is np.random.default_rng(seed).permutation cut in order.
    reference = np.random.default_rng(0).permutation(10)
    assert parts[0].indices.tolist() == reference[:6].tolist()
    assert parts[2].indices.tolist() == reference[9:].tolist()
    # Fractions: floor(10*0.33) = 3 each, the one left over goes to the first part.
    parts = random_split(data, [0.33, 0.33, 0.34], seed=0)
    assert [len(part) for part in parts] == [4, 3, 3]
    assert covered_indices(parts) == list(range(10))


def test_random_split_is_reproducible():
    data = TensorDataset(np.arange(100))
    a = random_split(data, [50, 50], seed=7)
    b = random_split(data, [50, 50], seed=7)
    c = random_split(data, [50, 50], seed=8)
    assert a[0].indices.tolist() == b[0].indices.tolist()
    assert a[0].indices.tolist() != c[0].indices.tolist()
    edgefw.random.manual_seed(3)
    d = random_split(data, [50, 50])
    edgefw.random.manual_seed(3)
    e = random_split(data, [50, 50])
    assert d[1].indices.tolist() == e[1].indices.tolist()


@pytest.mark.parametrize(
    ("lengths", "fragment"),
    [([5, 4], "sum to 9, but the dataset has 10"), ([11, -1], "non-negative"),
     ([0.5, 0.6], "fractions"), ([], "empty"), ([1.5, -0.5], "fractions")],
)
def test_random_split_rejects_bad_lengths(lengths, fragment):
    with pytest.raises(DataError, match=fragment):
        random_split(TensorDataset(np.arange(10)), lengths, seed=0)


def test_random_split_rejects_bad_seed():
    with pytest.raises(DataError, match="seed"):
        random_split(TensorDataset(np.arange(10)), [5, 5], seed=-1)
