"""MNIST / Fashion-MNIST loaders against the numbers in ../shared/data/README.md."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from edgefw import datasets
from edgefw.data.idx import write_idx
from edgefw.datasets import (
    FASHION_MNIST_CLASSES,
    IDX_FILE_NAMES,
    SHIPPED_MNIST_DIR,
    load_fashion_mnist,
    load_mnist,
)
from edgefw.errors import DataError

FASHION_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "fashion-mnist"

# From the README's table: md5 of each .gz file, and of its decompressed content.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873",
                                   "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432",
                                   "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3",
                                  "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c",
                                  "27ae3e4e09519cfbb04c329615203637"),
}


@pytest.fixture(scope="module")
def mnist():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("EDGEFW_DATA", raising=False)  # the default must be the shipped copy
        return load_mnist()


def test_shipped_mnist_shapes_counts_and_mean(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {x_train.dtype, y_train.dtype, x_test.dtype, y_test.dtype} == {np.dtype(np.uint8)}
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                             5851, 5949]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                            1009]
    assert round(float(x_train.mean()), 3) == 33.318
    assert round(float(x_train.mean()) / 255, 4) == 0.1307


def test_shipped_mnist_arrays_are_the_official_bytes(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    arrays = dict(zip(IDX_FILE_NAMES, [x_train, y_train, x_test, y_test], strict=True))
    for name, (gz_md5, raw_md5) in MNIST_MD5.items():
        assert hashlib.md5((SHIPPED_MNIST_DIR / name).read_bytes()).hexdigest() == gz_md5
        array = arrays[name]
        magic = 2051 if array.ndim == 3 else 2049
        header = np.array([magic, *array.shape], dtype=">u4").tobytes()
        assert hashlib.md5(header + array.tobytes()).hexdigest() == raw_md5, name


def write_fake_dataset(folder: Path, n_train=6, n_test=4, gzip=True, **overrides) -> None:
    """A tiny MNIST-layout dataset; ``overrides`` replace arrays by file name."""
    rng = np.random.default_rng(0)
    arrays = {
        IDX_FILE_NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        IDX_FILE_NAMES[1]: np.arange(n_train, dtype=np.uint8) % 10,
        IDX_FILE_NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        IDX_FILE_NAMES[3]: (np.arange(n_test, dtype=np.uint8) + 3) % 10,
    }
    arrays.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        if array is not None:
            write_idx(folder / (name if gzip else name.removesuffix(".gz")), array, gzip=gzip)


@pytest.mark.parametrize("gzip", [True, False])
def test_load_from_a_folder(tmp_path, gzip):
    write_fake_dataset(tmp_path, gzip=gzip)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path)
    assert x_train.shape == (6, 28, 28) and x_test.shape == (4, 28, 28)
    assert y_train.tolist() == [0, 1, 2, 3, 4, 5] and y_test.tolist() == [3, 4, 5, 6]


def test_environment_variable_names_the_data_root(tmp_path, monkeypatch):
    write_fake_dataset(tmp_path / "mnist", n_train=3)
    write_fake_dataset(tmp_path / "fashion-mnist", n_train=5)
    monkeypatch.setenv("EDGEFW_DATA", str(tmp_path))
    assert load_mnist()[0][0].shape == (3, 28, 28)
    assert load_fashion_mnist()[0][0].shape == (5, 28, 28)
    monkeypatch.setenv("EDGEFW_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match="EDGEFW_DATA"):
        load_mnist()


def test_fashion_mnist_needs_a_path(monkeypatch):
    monkeypatch.delenv("EDGEFW_DATA", raising=False)
    with pytest.raises(DataError, match="EDGEFW_DATA"):
        load_fashion_mnist()


def test_missing_file_lists_the_expected_names(tmp_path):
    write_fake_dataset(tmp_path, **{IDX_FILE_NAMES[3]: None})
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert "lacks t10k-labels-idx1-ubyte.gz" in message
    assert all(name in message for name in IDX_FILE_NAMES)
    with pytest.raises(DataError, match="not a folder"):
        load_mnist(tmp_path / "absent")


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ({IDX_FILE_NAMES[1]: np.arange(5, dtype=np.uint8)},
         ["train-images-idx3-ubyte.gz holds 6 images", "train-labels-idx1-ubyte.gz holds 5"]),
        ({IDX_FILE_NAMES[3]: np.array([1, 2, 10, 3], dtype=np.uint8)},
         ["t10k-labels-idx1-ubyte.gz", "label 10 at index 2"]),
        ({IDX_FILE_NAMES[2]: np.zeros((4, 27, 28), dtype=np.uint8)},
         ["t10k-images-idx3-ubyte.gz", "(4, 27, 28)"]),
        ({IDX_FILE_NAMES[0]: np.zeros((6, 28, 28), dtype=np.float32)},
         ["train-images-idx3-ubyte.gz", "float32"]),
        ({IDX_FILE_NAMES[1]: np.zeros((6, 1), dtype=np.uint8)},
         ["train-labels-idx1-ubyte.gz", "(6, 1)"]),
    ],
)
def test_inconsistent_files_are_rejected(tmp_path, override, fragments):
    write_fake_dataset(tmp_path, **override)
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_corrupt_file_error_names_the_file(tmp_path):
    write_fake_dataset(tmp_path)
    path = tmp_path / IDX_FILE_NAMES[0]
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: truncated"):
        load_mnist(tmp_path)


def test_repeated_loads_return_fresh_arrays(tmp_path):
    write_fake_dataset(tmp_path)
    first = load_mnist(tmp_path)
    first[0][0][...] = 0  # a caller may normalise in place without poisoning later loads
    assert load_mnist(tmp_path)[0][0].any()


def test_fashion_mnist_class_names():
    assert len(FASHION_MNIST_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top" and FASHION_MNIST_CLASSES[9] == "Ankle boot"
    assert datasets.MNIST_CLASSES[7] == "7"


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="shared Fashion-MNIST copy not present")
def test_fashion_mnist_from_the_shared_copy():
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(FASHION_DIR)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert round(float(x_train.mean()), 3) == 72.940
    assert FASHION_MNIST_CLASSES[y_test[0]] == "Ankle boot"
