"""Parameter: a Tensor that a Module registers as one of its learnable weights."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor with ``requires_grad=True`` by default, like ``torch.nn.Parameter``.

    Assigning a Parameter to an attribute of a :class:`Module` registers it, so it shows up in
    ``parameters()`` and ``state_dict()``. The Parameter shares the array of ``data``.

    >>> import pyengine as pe
    >>> p = pe.nn.Parameter(pe.tensor([1.0, 2.0]))
    >>> p.requires_grad, p.is_leaf
    (True, True)
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = Tensor(np.empty((0,), dtype=np.float32))
        if not isinstance(data, Tensor):
            if not (hasattr(data, "shape") and hasattr(data, "dtype")):
                raise TypeError(f"Parameter data must be a pe.Tensor or an array, "
                                f"got {type(data).__name__}")
            data = Tensor(data)
        if data.grad_fn is not None:
            # Sharing the array is fine, but the parameter itself must be a leaf of new graphs.
            data = data.detach()
        # Passing the Tensor (not its array) shares its in-place version count too, as torch.
        super().__init__(data, requires_grad=requires_grad, device=data.device)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def new_tensor(shape, device=None, dtype=None, fill=0.0) -> Tensor:
    """A tensor of ``shape`` filled with ``fill`` on ``device`` (default 'cpu') in ``dtype``
    (default float32): what layers build their parameters and buffers from, like torch's
    ``factory_kwargs``."""
    dt = np.dtype(np.float32 if dtype is None else dtype)
    t = Tensor(np.full(shape, fill, dtype=dt))
    if device is not None and device != "cpu":
        t = t.to(device)
    return t


__all__ = ["Parameter"]
