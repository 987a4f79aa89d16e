"""Batch-aware image transforms: scaling, normalisation and random augmentation.

Every transform takes a numpy array of images, (B, C, H, W) or a single (C, H, W) image, and an
optional ``numpy.random.Generator`` to draw its randomness from, and returns a new array:

    t = Compose([RandomCrop(28, padding=4), RandomHorizontalFlip(), Normalize(0.2860, 0.3530)])
    out = t(batch, rng)          # batch: float32 (B, 1, 28, 28) in [0, 1]

Working on whole batches keeps the per-image cost to a few vectorised numpy calls. Randomness
comes from ``rng`` (the DataLoader passes one derived from its seed and epoch), else from
pyengine's generator (``pe.manual_seed``), so augmentation is reproducible. Shape letters: B
images, C channels, H x W pixels.
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import random as pe_random


class Transform:
    """Base class: ``__call__(x, rng=None)`` maps an image array to a new image array.

    A subclass implements ``apply(x, rng)`` for a (B, C, H, W) batch; single (C, H, W) images
    are handled here by adding and removing the batch axis.
    """

    def __call__(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        x = np.asarray(x)
        if rng is None:
            rng = pe_random.default_generator()
        elif not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator or None, "
                            f"got {type(rng).__name__}")
        if x.ndim == 3:
            return self.apply(x[None], rng)[0]
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__}: expected images of shape (B, C, H, W) or "
                             f"(C, H, W), got shape {x.shape}")
        return self.apply(x, rng)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Transform a (B, C, H, W) batch (subclasses implement this)."""
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def apply_transform(transform, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Run ``transform`` on ``x``: our transforms get ``rng``, plain callables only ``x``."""
    if isinstance(transform, Transform):
        return transform(x, rng)
    out = transform(x)
    return np.asarray(out.numpy() if hasattr(out, "numpy") else out)


class Compose(Transform):
    """Apply transforms in order; random ones draw from the same generator, one after another."""

    def __init__(self, transforms):
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}] is not callable: {t!r}")
        self.transforms = transforms

    def __call__(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        # no shape check here: the first transform may be ToTensor on any image layout
        if rng is None:
            rng = pe_random.default_generator()
        for t in self.transforms:
            x = apply_transform(t, x, rng)
        return x


class ToTensor(Transform):
    """Scale uint8 pixels to float32 in [0, 1] (torchvision's ToTensor scaling: x / 255).

    Any shape is accepted and kept (the datasets add the channel axis themselves); float input
    is cast to float32 unchanged, so applying it twice is harmless. It returns a numpy array;
    the DataLoader wraps batches in ``pe.Tensor``.
    """

    def __call__(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        return to_float(x)

    def apply(self, x, rng):
        """Same as calling it."""
        return to_float(x)


def to_float(x) -> np.ndarray:
    """uint8 images -> float32 / 255; floating images -> float32 (float64 stays float64)."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        # divide (not multiply by 1/255) so values match torchvision's exactly
        return x.astype(np.float32) / np.float32(255)
    if x.dtype.kind == "f":
        return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
    if x.dtype.kind in "iub":
        return x.astype(np.float32)
    raise TypeError(f"images must be uint8 or floating point, got dtype {x.dtype}")


def _per_channel(value, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim > 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a 1-d sequence (one per channel), "
                         f"got {value!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return arr.reshape(-1)


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel; ``mean``/``std`` are numbers or one per channel.

    The result keeps the input's floating dtype (float32 stays float32).
    """

    def __init__(self, mean, std):
        self.mean = _per_channel(mean, "mean")
        self.std = _per_channel(std, "std")
        if np.any(self.std <= 0):
            raise ValueError(f"std must be positive, got {std!r}")

    def apply(self, x, rng):
        """Normalise a (B, C, H, W) batch."""
        x = to_float(x)
        c = x.shape[1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, c):
                raise ValueError(f"Normalize: {name} has {v.size} values for {c} channels")
        mean = np.broadcast_to(self.mean, (c,)).astype(x.dtype).reshape(1, c, 1, 1)
        std = np.broadcast_to(self.std, (c,)).astype(x.dtype).reshape(1, c, 1, 1)
        return (x - mean) / std


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


class RandomCrop(Transform):
    """Crop each image at its own random position to ``size`` (int or (h, w)).

    ``padding`` (an int) pads every side with ``fill`` first, as torchvision's
    ``RandomCrop(size, padding)`` does; the classic CIFAR / Fashion-MNIST augmentation is
    ``RandomCrop(28, padding=4)``. Offsets are drawn uniformly, one (row, column) pair per image.
    """

    def __init__(self, size, padding: int = 0, fill: float = 0.0):
        self.size = _pair(size, "size")
        if min(self.size) <= 0:
            raise ValueError(f"size must be positive, got {size!r}")
        if not isinstance(padding, numbers.Integral) or isinstance(padding, bool) or padding < 0:
            raise ValueError(f"padding must be a non-negative int, got {padding!r}")
        self.padding = int(padding)
        if not isinstance(fill, numbers.Real):
            raise TypeError(f"fill must be a number, got {fill!r}")
        self.fill = float(fill)

    def apply(self, x, rng):
        """Crop a (B, C, H, W) batch."""
        p = self.padding
        if p:
            b, c, hi, wi = x.shape
            padded = np.full((b, c, hi + 2 * p, wi + 2 * p), self.fill, dtype=x.dtype)
            padded[:, :, p:p + hi, p:p + wi] = x
            x = padded
        b, c, hp, wp = x.shape
        h, w = self.size
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: crop size {(h, w)} is larger than the padded image "
                             f"{(hp, wp)}")
        oy = rng.integers(0, hp - h + 1, size=b)
        ox = rng.integers(0, wp - w + 1, size=b)
        # every (h, w) window as a view, then one gather of window (oy[i], ox[i]) per image
        windows = sliding_window_view(x, (h, w), axis=(2, 3))
        return windows[np.arange(b), :, oy, ox]


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (one coin per image)."""

    def __init__(self, p: float = 0.5):
        if not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def apply(self, x, rng):
        """Flip a (B, C, H, W) batch."""
        flip = rng.random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out


__all__ = ["Transform", "Compose", "ToTensor", "Normalize", "RandomCrop", "RandomHorizontalFlip",
           "apply_transform", "to_float"]
