"""numba pointwise activations (relu, leaky_relu, sigmoid, tanh) and their gradients.

Shape letters: E elements; any input shape is flattened to (E,) here. Each kernel splits E into
fixed blocks of ``BLOCK`` elements, one parallel task per block, and branches on the kind once
per block, so the inner loops are branch-light and vectorise. Formulas and NaN rules are
numpy_ref/activation.py's: relu(NaN) = NaN and relu'(x) = 0 where x <= 0 (a NaN input passes dy
through); sigmoid through exp(-|x|), which never overflows; tanh as :func:`~._common.fast_tanh`.
"""
from __future__ import annotations

from numba import prange

from ..base import new_output
from ._common import BLOCK, fast_exp, fast_tanh, jit, like, pjit, threaded

_KINDS = {"relu": 0, "leaky_relu": 1, "sigmoid": 2, "tanh": 3}


def _kind(p):
    try:
        return _KINDS[p.kind]
    except KeyError:
        raise ValueError(f"unknown activation kind {p.kind!r}") from None


@jit(inline="always")
def _forward_block(x, y, kind, slope):
    """y = act(x) on one block (1-d slices: loop indices from 0 need no wraparound test)."""
    zero = like(0, x)
    one = like(1, x)
    if kind == 0:
        for i in range(x.shape[0]):
            v = x[i]
            y[i] = v if (v > zero or v != v) else zero
    elif kind == 1:
        for i in range(x.shape[0]):
            v = x[i]
            y[i] = v if v > zero else v * slope
    elif kind == 2:
        for i in range(x.shape[0]):
            v = x[i]
            e = fast_exp(-abs(v))
            pos = one / (one + e)
            y[i] = pos if v >= zero else e * pos
    else:
        for i in range(x.shape[0]):
            y[i] = fast_tanh(x[i])


@jit(inline="always")
def _backward_block(dy, x, y, dx, kind, slope):
    """dx of _forward_block on one block."""
    zero = like(0, x)
    one = like(1, x)
    if kind == 0:
        for i in range(x.shape[0]):
            dx[i] = zero if x[i] <= zero else dy[i]
    elif kind == 1:
        for i in range(x.shape[0]):
            dx[i] = dy[i] if x[i] > zero else dy[i] * slope
    elif kind == 2:
        for i in range(x.shape[0]):
            dx[i] = dy[i] * (one - y[i]) * y[i]
    else:
        for i in range(x.shape[0]):
            dx[i] = dy[i] * (one - y[i] * y[i])


@pjit
def _forward(x, y, kind, slope):
    """y = act(x) for the kind code (see _KINDS); slope in x's dtype. One task per block."""
    E = x.shape[0]
    for b in prange((E + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(E, lo + BLOCK)
        _forward_block(x[lo:hi], y[lo:hi], kind, slope)


@pjit
def _backward(dy, x, y, dx, kind, slope):
    """dx of _forward: relu dy where x > 0 (NaN x lets dy through), leaky_relu dy or dy * slope,
    sigmoid dy (1 - y) y, tanh dy (1 - y^2)."""
    E = x.shape[0]
    for b in prange((E + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(E, lo + BLOCK)
        _backward_block(dy[lo:hi], x[lo:hi], y[lo:hi], dx[lo:hi], kind, slope)


@threaded
def activation_forward(x, p):
    """y = act(x) for p.kind in relu, leaky_relu, sigmoid, tanh."""
    kind = _kind(p)
    y = new_output(x.shape, x.dtype)
    _forward(x.reshape(-1), y.reshape(-1), kind, x.dtype.type(p.negative_slope))
    return y


@threaded
def activation_backward(dy, x, y, p):
    """dx of activation_forward (relu'(0) = 0, as PyTorch)."""
    kind = _kind(p)
    dx = new_output(x.shape, dy.dtype)
    _backward(dy.reshape(-1), x.reshape(-1), y.reshape(-1), dx.reshape(-1), kind,
              dy.dtype.type(p.negative_slope))
    return dx
