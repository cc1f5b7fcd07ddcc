"""Datasets, the DataLoader and the IDX reader.

>>> import numpy as np
>>> from edgefw.data import DataLoader, TensorDataset
>>> loader = DataLoader(TensorDataset(np.zeros((10, 3)), np.arange(10)), batch_size=4)
>>> [x.numpy().shape for x, _ in loader]
[(4, 3), (4, 3), (2, 3)]
"""

from __future__ import annotations

from edgefw.data.dataloader import DataLoader, default_collate
from edgefw.data.dataset import Dataset, Subset, TensorDataset, random_split
from edgefw.data.idx import read_idx, write_idx

__all__ = [
    "DataLoader",
    "Dataset",
    "Subset",
    "TensorDataset",
    "default_collate",
    "random_split",
    "read_idx",
    "write_idx",
]
