"""numba softmax and log_softmax along one dimension, forward and backward (float32/float64).

Shape letters: the input is viewed as (O, L, I): O the dimensions before ``dim`` flattened, L the
length of ``dim``, I the dimensions after it flattened. When I == 1 each row is contiguous and
one task handles one row (:func:`_forward_rows`); otherwise one task handles a block of up to
``COLS`` neighbouring columns of one o, and every step runs along the contiguous I axis
(:func:`_forward_cols`), so both layouts vectorise.

Numerics as numpy_ref: subtract the maximum, exponentiate in the input's dtype (with the
vectorisable :func:`~._common.fast_exp`), normalise. Sums over L are accumulated in float64.
A NaN anywhere in a row makes the whole row NaN, as in the reference (its exp poisons the sum).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..base import new_output
from ._common import fast_exp, like, pjit, row_dot64, row_max, row_sum64, threaded

COLS = 512   # columns per task in the strided layout: a few KiB of each row, several tasks


@pjit
def _forward_rows(x, y, log):
    """Softmax (log=False) or log-softmax of each contiguous row of x (M, L) into y."""
    M, L = x.shape
    for i in prange(M):
        xr = x[i]
        yr = y[i]
        m = row_max(xr, 0, L)
        for j in range(L):
            yr[j] = fast_exp(xr[j] - m)
        s = row_sum64(yr, 0, L)
        if log:
            shift = like(np.log(s), x)
            for j in range(L):
                yr[j] = (xr[j] - m) - shift
        else:
            inv = like(1.0 / s, x)
            for j in range(L):
                yr[j] *= inv


@pjit
def _backward_rows(y, dy, dx, log):
    """dx of each row: y * (dy - sum(dy * y)) for softmax, dy - exp(y) * sum(dy) for
    log-softmax."""
    M, L = y.shape
    for i in prange(M):
        yr = y[i]
        gr = dy[i]
        dr = dx[i]
        if log:
            t = like(row_sum64(gr, 0, L), y)
            for j in range(L):
                dr[j] = gr[j] - fast_exp(yr[j]) * t
        else:
            t = like(row_dot64(gr, yr, 0, L), y)
            for j in range(L):
                dr[j] = yr[j] * (gr[j] - t)


@pjit
def _forward_cols(x, y, log):
    """Softmax or log-softmax along axis 1 of x (O, L, I), I > 1, a block of columns at a
    time."""
    O, L, I = x.shape
    nb = (I + COLS - 1) // COLS
    for task in prange(O * nb):
        o = task // nb
        c0 = (task - o * nb) * COLS
        c1 = min(c0 + COLS, I)
        xo = x[o]
        yo = y[o]
        m = xo[0, c0:c1].copy()
        for l in range(1, L):
            xl = xo[l]
            for c in range(c0, c1):
                if xl[c] > m[c - c0]:
                    m[c - c0] = xl[c]
        s = np.zeros(c1 - c0, dtype=np.float64)
        for l in range(L):
            xl = xo[l]
            yl = yo[l]
            for c in range(c0, c1):
                e = fast_exp(xl[c] - m[c - c0])
                yl[c] = e
                s[c - c0] += e
        if log:
            for c in range(c0, c1):
                s[c - c0] = np.log(s[c - c0])
            for l in range(L):
                xl = xo[l]
                yl = yo[l]
                for c in range(c0, c1):
                    yl[c] = (xl[c] - m[c - c0]) - like(s[c - c0], x)
        else:
            inv = np.empty(c1 - c0, dtype=x.dtype)
            for c in range(c0, c1):
                inv[c - c0] = 1.0 / s[c - c0]
            for l in range(L):
                yl = yo[l]
                for c in range(c0, c1):
                    yl[c] *= inv[c - c0]


@pjit
def _backward_cols(y, dy, dx, log):
    """dx along axis 1 of (O, L, I), I > 1 (formulas of :func:`_backward_rows`)."""
    O, L, I = y.shape
    nb = (I + COLS - 1) // COLS
    for task in prange(O * nb):
        o = task // nb
        c0 = (task - o * nb) * COLS
        c1 = min(c0 + COLS, I)
        yo = y[o]
        go = dy[o]
        do = dx[o]
        t64 = np.zeros(c1 - c0, dtype=np.float64)
        for l in range(L):
            yl = yo[l]
            gl = go[l]
            for c in range(c0, c1):
                if log:
                    t64[c - c0] += gl[c]
                else:
                    t64[c - c0] += gl[c] * yl[c]
        t = np.empty(c1 - c0, dtype=y.dtype)
        for c in range(c0, c1):
            t[c - c0] = t64[c - c0]
        for l in range(L):
            yl = yo[l]
            gl = go[l]
            dl = do[l]
            for c in range(c0, c1):
                if log:
                    dl[c] = gl[c] - fast_exp(yl[c]) * t[c - c0]
                else:
                    dl[c] = yl[c] * (gl[c] - t[c - c0])


def _olI(shape, dim):
    """(O, L, I) of an array of ``shape`` reduced along ``dim``."""
    O = int(np.prod(shape[:dim], dtype=np.int64))
    I = int(np.prod(shape[dim + 1:], dtype=np.int64))
    return O, shape[dim], I


def _forward(x, dim, log):
    O, L, I = _olI(x.shape, dim)
    y = new_output(x.shape, x.dtype)
    if I == 1:
        _forward_rows(x.reshape(O, L), y.reshape(O, L), log)
    else:
        _forward_cols(x.reshape(O, L, I), y.reshape(O, L, I), log)
    return y


def _backward(y, dy, dim, log):
    O, L, I = _olI(y.shape, dim)
    dx = new_output(y.shape, y.dtype)
    if I == 1:
        _backward_rows(y.reshape(O, L), dy.reshape(O, L), dx.reshape(O, L), log)
    else:
        _backward_cols(y.reshape(O, L, I), dy.reshape(O, L, I), dx.reshape(O, L, I), log)
    return dx


@threaded
def softmax_forward(x, dim):
    """exp(x - max) / sum(exp(x - max)) along ``dim`` (non-negative)."""
    return _forward(x, dim, False)


@threaded
def softmax_backward(y, dy, dim):
    """dx = y * (dy - sum(dy * y, dim))."""
    return _backward(y, dy, dim, False)


@threaded
def log_softmax_forward(x, dim):
    """x - max - log(sum(exp(x - max))) along ``dim``."""
    return _forward(x, dim, True)


@threaded
def log_softmax_backward(y, dy, dim):
    """dx = dy - exp(y) * sum(dy, dim)."""
    return _backward(y, dy, dim, True)
