"""softmax and log_softmax along any dimension (torch.nn.functional semantics)."""
from __future__ import annotations

import warnings

import numpy as np

from ..autograd import Function
from ._common import as_tensor, check_float, contiguous, kernel, normalize_dim


def _implicit_dim(ndim: int) -> int:
    # PyTorch's legacy choice when dim is None.
    return 0 if ndim in (0, 1, 3) else 1


class _Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim, log, device):
        ctx.dim, ctx.log, ctx.device = dim, log, device
        name = "log_softmax" if log else "softmax"
        x = contiguous(x)
        if x.size == 0:
            y = x.copy()
        elif x.ndim == 0:  # a scalar is a row of one: reshape rather than teach every kernel
            y = kernel(name + "_forward", x.dtype, device)(x.reshape(1), 0).reshape(())
        else:
            y = kernel(name + "_forward", x.dtype, device)(x, dim)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved
        name = "log_softmax" if ctx.log else "softmax"
        shape = y.shape
        if y.size == 0:
            return y.copy(), None, None, None
        if y.ndim == 0:
            y, dy = y.reshape(1), dy.reshape(1)
        dx = kernel(name + "_backward", y.dtype, ctx.device)(y, contiguous(dy), ctx.dim)
        return dx.reshape(shape), None, None, None


def _softmax_common(input, dim, dtype, log):
    fname = "log_softmax" if log else "softmax"
    x = as_tensor(input, "input")
    if dtype is not None:
        x = x.to(dtype=np.dtype(dtype))
    check_float(x, "input")
    if dim is None:
        dim = _implicit_dim(x.ndim)
        warnings.warn(f"Implicit dimension choice for {fname} has been deprecated. "
                      "Change the call to include dim=X as an argument.", UserWarning, stacklevel=3)
    d = normalize_dim(dim, x.ndim)
    return _Softmax.apply(x, d, log, x.device)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """Softmax along ``dim``: exp(x - max) / sum(exp(x - max)); rows with large outliers stay
    finite. ``dtype`` casts the input first (as torch).

    >>> import pyengine as pe, pyengine.functional as F
    >>> F.softmax(pe.tensor([[1.0, 1.0]]), dim=1).numpy().tolist()
    [[0.5, 0.5]]
    """
    return _softmax_common(input, dim, dtype, log=False)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """Log-softmax along ``dim``: x - max - log(sum(exp(x - max))).

    >>> import pyengine as pe, pyengine.functional as F
    >>> round(F.log_softmax(pe.tensor([0.0, 0.0]), dim=0)[0].item(), 4)
    -0.6931
    """
    return _softmax_common(input, dim, dtype, log=True)


__all__ = ["softmax", "log_softmax"]
