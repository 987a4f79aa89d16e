"""dropout (torch.nn.functional.dropout): zero each element with probability p during training
and scale the survivors by 1/(1-p), so the expected value is unchanged.

The mask comes from pyengine's generator (``pyengine.random.default_generator()``), drawn on the
host in the input's logical (row-major) order, so ``pe.manual_seed`` makes it reproducible
whatever the input's layout or device. Dropout has no kernel of its own: it is one multiply.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..autograd import Function
from ..backends.base import array_module
from ..random import default_generator
from ._common import as_tensor, check_float
from .activation import apply_in_place


class _Dropout(Function):
    """y = x * mask, where mask already holds 0 or 1/(1-p); the gradient is dy * mask."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, dy):
        return dy * ctx.saved[0], None


def _scaled_mask(shape, p, dtype, like):
    """0 with probability p, else 1/(1-p), in ``dtype`` on the device of ``like``."""
    dtype = np.dtype(dtype)
    if p == 1:
        mask = np.zeros(shape, dtype=dtype)  # PyTorch draws nothing either: all is dropped
    else:
        keep = default_generator().random(shape) >= p
        mask = keep.astype(dtype) * (dtype.type(1) / dtype.type(1 - p))
    return array_module(like).asarray(mask)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) when ``training``;
    the input itself otherwise (also for p = 0 or an empty input, as PyTorch on the CPU).
    p = 1 gives zeros. ``inplace=True`` overwrites and returns the input, with PyTorch's
    autograd rules (see :mod:`pyengine.functional.activation`).

    >>> import pyengine as pe, pyengine.functional as F
    >>> _ = pe.manual_seed(0)
    >>> y = F.dropout(pe.tensor([1.0, 1.0, 1.0, 1.0]), p=0.5)
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """
    x = as_tensor(input, "input")
    check_float(x, "input")
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout: p must be a real number, got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0 or x.numel() == 0:
        return x
    mask = _scaled_mask(x.shape, float(p), x.dtype, x.data)
    if inplace:
        return apply_in_place(x, lambda t: _Dropout.apply(t, mask))
    return _Dropout.apply(x, mask)


__all__ = ["dropout"]
