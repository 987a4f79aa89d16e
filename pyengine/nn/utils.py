"""Gradient clipping: clip_grad_norm_ and clip_grad_value_ (torch.nn.utils' semantics).

They rescale ``.grad`` arrays in place through the array module (numpy or cupy), outside
autograd.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale the gradients of ``parameters`` so their joint ``norm_type``-norm is at most
    ``max_norm``; returns the norm before clipping (a 0-d tensor).

    The joint norm is the norm of the per-parameter norms; the scale is
    ``min(max_norm / (total + 1e-6), 1)`` (applied even when it is 1, as torch).
    ``norm_type`` may be ``inf``. ``foreach`` is accepted for torch compatibility and ignored.

    >>> import pyengine as pe
    >>> p = pe.nn.Parameter(pe.tensor([0.0, 0.0]))
    >>> p.grad = pe.tensor([3.0, 4.0])
    >>> float(pe.nn.utils.clip_grad_norm_([p], 1.0))
    5.0
    >>> [round(v, 4) for v in p.grad.tolist()]
    [0.6, 0.8]
    """
    grads = _grads(parameters)
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.asarray(0.0, dtype=np.float32))
    xp = grads[0]._xp
    dtype = grads[0].dtype
    if norm_type == math.inf:
        norms = [xp.max(xp.abs(g.data)) if g.numel() else xp.asarray(0, dtype=dtype)
                 for g in grads]
        total = xp.max(xp.stack([xp.asarray(n, dtype=dtype) for n in norms]))
    else:
        norms = [xp.linalg.norm(g.data.ravel(), ord=norm_type) for g in grads]
        total = xp.linalg.norm(xp.stack([xp.asarray(n, dtype=dtype) for n in norms]),
                               ord=norm_type)
    total = xp.asarray(total, dtype=dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    coef = xp.minimum(xp.asarray(max_norm, dtype=dtype) / (total + dtype.type(1e-6)),
                      dtype.type(1.0))
    with no_grad():
        for g in grads:
            g.mul_(coef.astype(g.dtype))
    return Tensor(total, device=grads[0].device)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element of ``parameters`` into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.copy_(g._xp.clip(g.data, -clip_value, clip_value))


__all__ = ["clip_grad_norm_", "clip_grad_value_"]
