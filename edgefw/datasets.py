"""MNIST and Fashion-MNIST, read from the standard IDX files, Keras-style.

``load_mnist()`` with no argument reads the copy shipped in ``samples/data/mnist``, so the
demo needs no network. ``EDGEFW_DATA`` may name a folder holding ``mnist/`` and
``fashion-mnist/`` (like ``../shared/data``) to read from instead.

>>> (x_train, y_train), (x_test, y_test) = load_mnist()  # doctest: +SKIP
>>> x_train.shape, y_train.shape, x_test.dtype  # doctest: +SKIP
((60000, 28, 28), (60000,), dtype('uint8'))
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgefw.data.idx import read_idx
from edgefw.errors import DataError

DATA_ENV_VAR = "EDGEFW_DATA"

# The standard file names of both datasets (Fashion-MNIST reuses MNIST's).
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Located from this file, not the working directory, so it works from anywhere in a checkout.
SHIPPED_MNIST_DIR = Path(__file__).resolve().parent.parent / "samples" / "data" / "mnist"

Split = tuple[np.ndarray, np.ndarray]


def load_mnist(path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Images are uint8 arrays of shape (N, 28, 28), labels uint8 of shape (N,) in 0..9,
    like ``keras.datasets.mnist.load_data()``. ``path`` is a folder with the four standard
    IDX files (``.gz``, or uncompressed without the suffix); by default
    ``$EDGEFW_DATA/mnist`` when that variable is set, else the shipped copy. Nothing is
    cached: each call reads the files again (about 0.3 s).

    >>> (x_train, y_train), _ = load_mnist()  # doctest: +SKIP
    >>> round(float(x_train.mean()), 3)  # doctest: +SKIP
    33.318
    """
    folder = _resolve_folder(path, "mnist", SHIPPED_MNIST_DIR, "MNIST")
    return _load_idx_folder(folder, "MNIST")


def load_fashion_mnist(path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Load Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Same layout as :func:`load_mnist`; label ``i`` names ``FASHION_MNIST_CLASSES[i]``.
    Fashion-MNIST is not shipped: pass the folder, or set ``EDGEFW_DATA`` to a folder
    holding ``fashion-mnist/``.

    >>> _, (x_test, y_test) = load_fashion_mnist("../shared/data/fashion-mnist")  # doctest: +SKIP
    >>> FASHION_MNIST_CLASSES[y_test[0]]  # doctest: +SKIP
    'Ankle boot'
    """
    folder = _resolve_folder(path, "fashion-mnist", None, "Fashion-MNIST")
    return _load_idx_folder(folder, "Fashion-MNIST")


def _resolve_folder(
    path: str | os.PathLike | None, subfolder: str, shipped: Path | None, dataset: str
) -> Path:
    if path is not None:
        return Path(path)
    data_root = os.environ.get(DATA_ENV_VAR)
    if data_root:
        return Path(data_root) / subfolder
    if shipped is None:
        raise DataError(
            f"{dataset} is not shipped with edgefw: pass the folder holding its IDX files, "
            f"or set {DATA_ENV_VAR} to a folder containing {subfolder}/"
        )
    return shipped


def _find_file(folder: Path, file_name: str, dataset: str) -> Path:
    for candidate in (folder / file_name, folder / file_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    if not folder.is_dir():
        problem = f"{folder} is not a folder"
        if os.environ.get(DATA_ENV_VAR):
            problem += f" (the default comes from {DATA_ENV_VAR}={os.environ[DATA_ENV_VAR]})"
    else:
        present = sorted(entry.name for entry in folder.iterdir())
        problem = f"{folder} lacks {file_name} (it holds: {', '.join(present) or 'nothing'})"
    raise DataError(
        f"{dataset}: {problem}; expected the standard files {', '.join(IDX_FILE_NAMES)} "
        "(gzip-compressed, or uncompressed without .gz)"
    )


def _load_idx_folder(folder: Path, dataset: str) -> tuple[Split, Split]:
    files = [_find_file(folder, file_name, dataset) for file_name in IDX_FILE_NAMES]
    arrays = [read_idx(file) for file in files]
    train_images, train_labels, test_images, test_labels = arrays
    train_files, test_files = files[:2], files[2:]
    return (
        _check_split(train_images, train_labels, *train_files),
        _check_split(test_images, test_labels, *test_files),
    )


def _check_split(
    images: np.ndarray, labels: np.ndarray, images_file: Path, labels_file: Path
) -> Split:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"{images_file}: expected uint8 images of shape (N, 28, 28), got "
            f"{images.shape} of {images.dtype}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{labels_file}: expected uint8 labels of shape (N,), got {labels.shape} of "
            f"{labels.dtype}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_file.name} holds {images.shape[0]} images but {labels_file.name} holds "
            f"{labels.shape[0]} labels (in {images_file.parent})"
        )
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(
            f"{labels_file}: label {int(labels[bad])} at index {bad} is outside 0..9"
        )
    return images, labels


__all__ = [
    "DATA_ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "IDX_FILE_NAMES",
    "MNIST_CLASSES",
    "SHIPPED_MNIST_DIR",
    "load_fashion_mnist",
    "load_mnist",
]
