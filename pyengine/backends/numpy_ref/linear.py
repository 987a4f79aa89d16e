"""Reference fully connected layer: y = x @ w^T + b and its three gradients.

Shape letters: M rows (every leading dimension of the input, flattened), K input features,
N output features. x (M,K), w (N,K), b (N,) or None, dy (M,N). float32 or float64; products
accumulate in the input's dtype (numpy's BLAS GEMM).
"""
from __future__ import annotations

import numpy as np


def linear_forward(x, w, b):
    """y (M,N) = x (M,K) @ w (N,K)^T (+ b (N,) when b is not None)."""
    y = np.matmul(x, w.T)
    if b is not None:
        y += b
    return y


def linear_backward_data(dy, w):
    """dx (M,K) = dy (M,N) @ w (N,K)."""
    return np.matmul(dy, w)


def linear_backward_weight(dy, x):
    """dw (N,K) = dy (M,N)^T @ x (M,K); zeros when M = 0."""
    return np.matmul(dy.T, x)


def linear_backward_bias(dy):
    """db (N,) = dy (M,N) summed over the rows M."""
    return dy.sum(axis=0)
