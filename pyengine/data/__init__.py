"""pyengine.data: IDX files, the Fashion-MNIST and MNIST datasets, a DataLoader, transforms.

    from pyengine import data
    from pyengine.data import transforms as T

    train = data.FashionMNIST(train=True)        # local copy, else a verified download
    loader = data.DataLoader(train, batch_size=128, shuffle=True, seed=0,
                             transform=T.Compose([T.RandomHorizontalFlip(),
                                                  T.Normalize(0.2860, 0.3530)]))
    for images, labels in loader:                # float32 (128, 1, 28, 28), int64 (128,)
        ...

It sits beside the tensor stack and knows no model.
"""
from __future__ import annotations

from . import transforms
from .datasets import MNIST, ArrayDataset, FashionMNIST
from .idx import read_idx, write_idx
from .loader import DataLoader

__all__ = ["read_idx", "write_idx", "ArrayDataset", "FashionMNIST", "MNIST", "DataLoader",
           "transforms"]
