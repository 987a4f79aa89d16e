"""DataLoader: batches of (images, labels) as pe.Tensors, in a reproducible per-epoch order.

Order and augmentation of epoch ``e`` depend only on ``(seed, e)``: the loader builds
``numpy.random.SeedSequence([seed, e])`` and spawns two generators from it, one for the
permutation and one for the random transforms. So each epoch has its own order, and a resumed
run that calls ``set_epoch(e)`` (or restores ``state_dict()``) replays epoch ``e`` exactly.

Datasets that expose their whole data as ``images`` and ``targets`` arrays (the ones in
:mod:`pyengine.data.datasets`) are batched with one fancy-indexing gather per batch and their
transforms run on whole batches; any other dataset is read item by item through ``__getitem__``.
Shape letters: B batch size, C channels, H x W pixels.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import random as pe_random
from ..tensor import Tensor
from .transforms import apply_transform, to_float


def _bulk_arrays(dataset):
    """``(images, targets)`` if the dataset offers them for vectorised batching, else None."""
    images = getattr(dataset, "images", None)
    targets = getattr(dataset, "targets", None)
    if not isinstance(images, np.ndarray) or not isinstance(targets, np.ndarray):
        return None
    if images.ndim not in (3, 4) or targets.ndim != 1:
        return None
    if len(images) != len(dataset) or len(targets) != len(dataset):
        return None
    return images, targets


class DataLoader:
    """Iterate over a dataset in batches: ``for images, labels in loader``.

    ``images`` is a float32 ``pe.Tensor`` (B, C, H, W), ``labels`` an int64 ``pe.Tensor`` (B,).

    - ``shuffle``: a new permutation every epoch, drawn from ``SeedSequence([seed, epoch])``.
    - ``seed``: a non-negative int; when None, one is drawn from pyengine's generator when the
      loader is built (so ``pe.manual_seed`` before building it makes the order reproducible).
      The seed in use is ``loader.seed``.
    - ``epoch``: each ``iter(loader)`` uses the current epoch and then advances it by one;
      ``set_epoch(n)`` makes the next iteration epoch ``n``.
    - ``transform``: applied to each float batch after the dataset's own transform.
    - ``drop_last``: leave out the last batch if it is smaller than ``batch_size``.

    >>> loader = DataLoader(FashionMNIST(train=True), batch_size=128, shuffle=True, seed=0)
    >>> len(loader)
    469
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None, transform=None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"dataset must have __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        if (not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool)
                or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
        if not isinstance(drop_last, bool):
            raise TypeError(f"drop_last must be a bool, got {type(drop_last).__name__}")
        if seed is None:
            seed = int(pe_random.default_generator().integers(0, 2 ** 63))
        elif not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {transform!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.transform = transform
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (its order and augmentation)."""
        if not isinstance(epoch, numbers.Integral) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = int(epoch)

    def state_dict(self) -> dict:
        """``{'seed': ..., 'epoch': ...}``: enough to replay the next epoch exactly."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`."""
        if not isinstance(state, dict) or set(state) != {"seed", "epoch"}:
            raise ValueError(f"state must be a dict with keys 'seed' and 'epoch', got {state!r}")
        seed = state["seed"]
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"state['seed'] must be a non-negative int, got {seed!r}")
        self.set_epoch(state["epoch"])
        self.seed = int(seed)

    def epoch_generators(self, epoch: int):
        """The (order, augmentation) generators of ``epoch``, from ``SeedSequence([seed, epoch])``.
        """
        order_seq, aug_seq = np.random.SeedSequence([self.seed, int(epoch)]).spawn(2)
        return np.random.default_rng(order_seq), np.random.default_rng(aug_seq)

    def order(self, epoch: int | None = None) -> np.ndarray:
        """The dataset indices in the order epoch ``epoch`` (default: the next one) visits them."""
        epoch = self.epoch if epoch is None else epoch
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return self.epoch_generators(epoch)[0].permutation(n)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return self._batches(epoch)

    def _batches(self, epoch: int):
        n = len(self.dataset)
        order_rng, aug_rng = self.epoch_generators(epoch)
        order = order_rng.permutation(n) if self.shuffle else None
        stop = n - n % self.batch_size if self.drop_last else n
        bulk = _bulk_arrays(self.dataset)
        dataset_transform = getattr(self.dataset, "transform", None) if bulk else None
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, stop)
            # a contiguous slice is a view: cheaper than a gather when not shuffling
            index = slice(start, end) if order is None else order[start:end]
            if bulk is not None:
                images, targets = bulk
                x = images[index]
                x = to_float(x[:, None] if x.ndim == 3 else x)
                if np.may_share_memory(x, images):
                    # float images of an unshuffled batch are a view: the batch must own its data
                    x = x.copy()
                if dataset_transform is not None:
                    x = apply_transform(dataset_transform, x, aug_rng)
                y = targets[index]
            else:
                x, y = self._gather(range(start, end) if order is None else order[start:end])
            if self.transform is not None:
                x = apply_transform(self.transform, x, aug_rng)
            yield (Tensor(np.ascontiguousarray(x, dtype=np.float32)),
                   Tensor(np.array(y, dtype=np.int64)))

    def _gather(self, indices):
        """Stack ``dataset[i]`` items: the generic path for datasets without bulk arrays."""
        images, labels = [], []
        for i in indices:
            item = self.dataset[int(i)]
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(f"dataset[{int(i)}] must be an (image, label) pair, "
                                f"got {type(item).__name__}")
            image, label = item
            image = np.asarray(image.numpy() if isinstance(image, Tensor) else image)
            images.append(image[None] if image.ndim == 2 else image)
            labels.append(int(label.item() if hasattr(label, "item") else label))
        return to_float(np.stack(images)), np.asarray(labels, dtype=np.int64)

    def __repr__(self):
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, "
                f"epoch={self.epoch})")


__all__ = ["DataLoader"]
