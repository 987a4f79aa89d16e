"""linear: y = x @ weight^T + bias (torch.nn.functional.linear).

Shape letters: M rows (every leading dimension of the input, flattened), K input features,
N output features. The input may have any rank >= 1; its leading dimensions are flattened to
(M, K) for the kernels and restored afterwards. A 1-d weight (K,) gives one output per row with
the feature dimension dropped, as torch. Zero-size problems (M, K or N = 0) are computed here
rather than in every kernel.
"""
from __future__ import annotations

import math

from ..autograd import Function
from ..backends.base import array_module
from ._common import (as_tensor, check_float, check_same_device, check_same_dtype, contiguous,
                      kernel)


class _Linear(Function):
    @staticmethod
    def forward(ctx, x, w, b, device):
        k = x.shape[-1]
        # Explicit sizes, not -1: a reshape cannot infer -1 when K is 0.
        x2 = contiguous(x).reshape(math.prod(x.shape[:-1]), k)    # (M, K)
        w2 = contiguous(w).reshape(math.prod(w.shape[:-1]), k)    # (N, K); N = 1 for 1-d weight
        b1 = None if b is None else contiguous(b).reshape(-1)
        out_shape = x.shape[:-1] + w.shape[:-1]
        if x2.size == 0 or w2.size == 0:
            xp = array_module(x)
            y2 = xp.zeros((x2.shape[0], w2.shape[0]), dtype=x.dtype)
            if b1 is not None:
                y2 += b1
        else:
            y2 = kernel("linear_forward", x.dtype, device)(x2, w2, b1)
        ctx.device = device
        ctx.shapes = (x.shape, w.shape, None if b is None else b.shape)
        ctx.save_for_backward(x2, w2)
        return y2.reshape(out_shape)

    @staticmethod
    def backward(ctx, dy):
        x2, w2 = ctx.saved
        x_shape, w_shape, b_shape = ctx.shapes
        dy2 = contiguous(dy).reshape(x2.shape[0], w2.shape[0])   # (M, N)
        empty = dy2.size == 0 or x2.size == 0 or w2.size == 0
        xp = array_module(dy)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = (xp.matmul(dy2, w2) if empty else
                  kernel("linear_backward_data", dy.dtype, ctx.device)(dy2, w2))
            dx = dx.reshape(x_shape)
        if ctx.needs_input_grad[1]:
            dw = (xp.matmul(dy2.T, x2) if empty else
                  kernel("linear_backward_weight", dy.dtype, ctx.device)(dy2, x2))
            dw = dw.reshape(w_shape)
        if b_shape is not None and ctx.needs_input_grad[2]:
            db = (dy2.sum(axis=0) if dy2.size == 0 else
                  kernel("linear_backward_bias", dy.dtype, ctx.device)(dy2))
            db = db.reshape(b_shape)
        return dx, dw, db, None


def linear(input, weight, bias=None):
    """y = input @ weight^T + bias.

    input (*, K) of any rank >= 1; weight (N, K), or (K,) for one output with the feature
    dimension dropped; bias (N,) -- or 0-d with a 1-d weight -- or None. Output (*, N).
    The bias must have exactly that shape: torch also accepts some shapes that merely
    broadcast (e.g. (1,)), pyengine refuses them with a ValueError.

    >>> import pyengine as pe, pyengine.functional as F
    >>> x = pe.tensor([[1.0, 2.0]])
    >>> F.linear(x, pe.tensor([[1.0, 1.0], [0.0, 1.0]]), pe.tensor([0.5, 0.0])).tolist()
    [[3.5, 2.0]]
    """
    x = as_tensor(input, "input")
    w = as_tensor(weight, "weight")
    b = None if bias is None else as_tensor(bias, "bias")
    check_float(x, "input")
    check_float(w, "weight")
    check_same_dtype(x, w, "input", "weight")
    check_same_device(x, w, "input", "weight")
    if x.ndim < 1 or w.ndim < 1:
        raise ValueError(f"linear: input and weight must be at least 1-d, got input of shape "
                         f"{x.shape} and weight of shape {w.shape}")
    if w.ndim > 2:
        raise ValueError(f"linear: weight must be 2-d (out_features, in_features) or 1-d, "
                         f"got weight of shape {w.shape}")
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features (last dimension of shape "
                         f"{x.shape}) but weight of shape {w.shape} expects {w.shape[-1]}")
    if b is not None:
        check_float(b, "bias")
        check_same_dtype(x, b, "input", "bias")
        check_same_device(x, b, "input", "bias")
        expected = w.shape[:1] if w.ndim == 2 else ()
        if b.shape != expected:
            raise ValueError(f"linear: bias must have shape {expected} for weight of shape "
                             f"{w.shape}, got bias of shape {b.shape}")
    return _Linear.apply(x, w, b, x.device)


__all__ = ["linear"]
