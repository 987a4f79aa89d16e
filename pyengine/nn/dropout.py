"""Dropout: zero each element with probability p in training mode (scaling the rest by
1/(1-p)); the identity in eval mode."""
from __future__ import annotations

import numbers

from .. import functional as F
from .module import Module


class Dropout(Module):
    """As ``torch.nn.Dropout``; the mask is drawn from ``pyengine.random``'s generator.

    >>> import numpy as np, pyengine as pe
    >>> drop = pe.nn.Dropout(0.5).eval()
    >>> drop(pe.tensor(np.ones(3, np.float32))).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        """Drop elements when training, pass ``input`` through otherwise."""
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


__all__ = ["Dropout"]
