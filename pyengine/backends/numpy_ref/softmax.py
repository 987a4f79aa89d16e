"""Reference softmax and log_softmax along one dimension (float32/float64 numpy)."""
from __future__ import annotations

import numpy as np


def softmax_forward(x, dim):
    """exp(x - max) / sum(exp(x - max)) along ``dim``; subtracting the max keeps it finite."""
    shifted = x - x.max(axis=dim, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=dim, keepdims=True)


def softmax_backward(y, dy, dim):
    """dx = y * (dy - sum(dy * y)) along ``dim``."""
    return y * (dy - (dy * y).sum(axis=dim, keepdims=True))


def log_softmax_forward(x, dim):
    """x - max - log(sum(exp(x - max))) along ``dim``."""
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def log_softmax_backward(y, dy, dim):
    """dx = dy - softmax * sum(dy) along ``dim`` (softmax = exp(y))."""
    return dy - np.exp(y) * dy.sum(axis=dim, keepdims=True)
