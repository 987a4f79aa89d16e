"""numba side of the fully connected layer: y = x @ w^T + b and its three gradients.

Shape letters: M rows, K input features, N output features; x (M,K), w (N,K), b (N,), dy (M,N).
The three products are GEMMs, which numpy's BLAS runs (a numba loop would only be slower);
numba adds the bias in parallel over rows and sums the bias gradient over fixed row blocks
(float64 partial sums, added in block order, so the result does not depend on the thread
count). BLAS runs outside the numba parallel regions.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..base import new_output
from ._common import beside_blas, pjit, threaded

ROWS = 256   # rows per task of the bias-gradient partial sums


@pjit
def _add_bias(y, b):
    """y[m, :] += b for y (M, N)."""
    M, N = y.shape
    for m in prange(M):
        row = y[m]
        for n in range(N):
            row[n] += b[n]


@pjit
def _bias_partials(dy, partial):
    """partial[blk, n] = float64 sum of dy[m, n] over the rows m of block blk."""
    M, N = dy.shape
    for blk in prange(partial.shape[0]):
        acc = partial[blk]
        for n in range(N):
            acc[n] = 0.0
        for m in range(blk * ROWS, min(M, (blk + 1) * ROWS)):
            row = dy[m]
            for n in range(N):
                acc[n] += row[n]


@threaded
def linear_forward(x, w, b):
    """y (M,N) = x (M,K) @ w (N,K)^T (+ b (N,) when b is not None)."""
    y = new_output((x.shape[0], w.shape[0]), x.dtype)
    np.matmul(x, w.T, out=y)
    if b is not None:
        beside_blas()
        _add_bias(y, b)
    return y


@threaded
def linear_backward_data(dy, w):
    """dx (M,K) = dy (M,N) @ w (N,K)."""
    dx = new_output((dy.shape[0], w.shape[1]), dy.dtype)
    np.matmul(dy, w, out=dx)
    return dx


@threaded
def linear_backward_weight(dy, x):
    """dw (N,K) = dy (M,N)^T @ x (M,K)."""
    dw = new_output((dy.shape[1], x.shape[1]), dy.dtype)
    np.matmul(dy.T, x, out=dw)
    return dw


@threaded
def linear_backward_bias(dy):
    """db (N,) = dy (M,N) summed over the rows M."""
    M, N = dy.shape
    partial = np.empty(((M + ROWS - 1) // ROWS, N), dtype=np.float64)
    _bias_partials(dy, partial)
    db = new_output((N,), dy.dtype)
    db[...] = partial.sum(axis=0)
    return db
