"""Reference pointwise activations: relu, leaky_relu, sigmoid, tanh and their gradients.

Any shape; float32 or float64 in, the same dtype out. ``p`` is a
:class:`pyengine.params.ActivationParams`. The backward receives the forward's input ``x`` and
output ``y`` and uses whichever the formula needs (sigmoid and tanh: y; relu and leaky_relu: x).
"""
from __future__ import annotations

import numpy as np


def _sigmoid(x):
    # exp(-|x|) never overflows, so neither branch produces inf/inf or a warning; for x < 0,
    # sigmoid(x) = e^x / (1 + e^x) = e / (1 + e) with e = exp(-|x|).
    e = np.exp(-np.abs(x))
    pos = 1 / (1 + e)
    return np.where(x >= 0, pos, e * pos)


def activation_forward(x, p):
    """y = act(x) for ``p.kind`` in relu, leaky_relu, sigmoid, tanh (NaN in, NaN out)."""
    if p.kind == "relu":
        return np.maximum(x, x.dtype.type(0))  # np.maximum propagates NaN, as torch.relu
    if p.kind == "leaky_relu":
        return np.where(x > 0, x, x * x.dtype.type(p.negative_slope))
    if p.kind == "sigmoid":
        return _sigmoid(x).astype(x.dtype, copy=False)
    if p.kind == "tanh":
        return np.tanh(x)
    raise ValueError(f"unknown activation kind {p.kind!r}")


def activation_backward(dy, x, y, p):
    """dx of activation_forward.

    relu: dy where x > 0, else 0 (relu'(0) = 0); a NaN input lets dy through, as PyTorch,
    whose rule is "zero where the output <= 0". leaky_relu: dy where x > 0, else
    dy * negative_slope. sigmoid: dy * (1 - y) * y. tanh: dy * (1 - y * y).
    """
    zero = dy.dtype.type(0)
    one = dy.dtype.type(1)
    if p.kind == "relu":
        return np.where(x <= 0, zero, dy)
    if p.kind == "leaky_relu":
        return np.where(x > 0, dy, dy * dy.dtype.type(p.negative_slope))
    if p.kind == "sigmoid":
        return dy * (one - y) * y
    if p.kind == "tanh":
        return dy * (one - y * y)
    raise ValueError(f"unknown activation kind {p.kind!r}")
