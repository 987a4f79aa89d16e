"""numba softmax and log_softmax along one dimension, forward and backward (float32/float64).

Shape letters: the input is viewed as (O, L, I): O the dimensions before ``dim`` flattened, L the
length of ``dim``, I the dimensions after it flattened. When I == 1 each row is contiguous and
one task handles ``ROWS`` rows, one at a time (:func:`_forward_rows`); otherwise one task handles
a block of neighbouring columns of one o (:func:`_cols_per_task`), and every step runs along
the contiguous I axis (:func:`_forward_cols`), so both layouts vectorise. No result depends on
the block sizes, hence none on the thread count.

Numerics as numpy_ref: subtract the maximum, exponentiate in the input's dtype (with the
vectorisable :func:`~._common.fast_exp`), normalise. Sums over L end in float64 (the strided
layout adds FLUSH rows in the input dtype first, to keep its hot loop in float32).
A NaN anywhere in a row makes the whole row NaN, as in the reference (its exp poisons the sum).
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from ..base import new_output
from ._common import (fast_exp, fast_log64, jit, like, pjit, row_dot64, row_max, row_sum64,
                      threaded)

MIN_COLS = 256   # fewest columns per task in the strided layout
FLUSH = 32   # rows summed in the input dtype before the partial sums go into float64


ROWS = 16    # rows per task in the contiguous layout: one scratch row serves them all


@pjit
def _forward_rows(x, y, log):
    """Softmax (log=False) or log-softmax of each contiguous row of x (M, L) into y. Softmax
    stores exp(x - max) in y and scales it; log-softmax sums the exps in an L1-resident scratch
    row and writes y once."""
    M, L = x.shape
    for blk in prange((M + ROWS - 1) // ROWS):
        e = np.empty(L, dtype=x.dtype)
        for i in range(blk * ROWS, min(M, (blk + 1) * ROWS)):
            xr = x[i]
            yr = y[i]
            m = row_max(xr, 0, L)
            buf = e if log else yr
            for j in range(L):
                buf[j] = fast_exp(xr[j] - m)
            s = row_sum64(buf, 0, L)
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


# Row helpers of the strided layout. They take 1-d contiguous slices: indexing the 3-d arrays
# inside the parallel loop instead kept LLVM from vectorising (4x slower, measured).
@jit(inline="always")
def _max_into(src, m):
    for j in range(m.shape[0]):
        v = src[j]
        m[j] = v if v > m[j] else m[j]


@jit(inline="always")
def _exp_into(src, m, dst, s):
    for j in range(m.shape[0]):
        e = fast_exp(src[j] - m[j])
        dst[j] = e
        s[j] += e


@jit(inline="always")
def _expsum_into(src, m, s):
    for j in range(m.shape[0]):
        s[j] += fast_exp(src[j] - m[j])


@jit(inline="always")
def _log_into(src, m, shift, dst):
    for j in range(m.shape[0]):
        dst[j] = (src[j] - m[j]) - shift[j]


@jit(inline="always")
def _flush_into(part, total):
    """total += part (float64); part = 0."""
    for j in range(part.shape[0]):
        total[j] += part[j]
        part[j] = 0


@jit(inline="always")
def _scale_into(dst, inv):
    for j in range(inv.shape[0]):
        dst[j] *= inv[j]


@jit(inline="always")
def _add_into(src, t):
    for j in range(t.shape[0]):
        t[j] += src[j]


@jit(inline="always")
def _add_prod_into(a, b, t):
    for j in range(t.shape[0]):
        t[j] += a[j] * b[j]


@jit(inline="always")
def _softmax_grad_into(y, g, t, dst):
    for j in range(t.shape[0]):
        dst[j] = y[j] * (g[j] - t[j])


@jit(inline="always")
def _log_softmax_grad_into(y, g, t, dst):
    for j in range(t.shape[0]):
        dst[j] = g[j] - fast_exp(y[j]) * t[j]


@pjit
def _forward_cols(x, y, log, cols):
    """Softmax or log-softmax along axis 1 of x (O, L, I), I > 1, a block of up to ``cols``
    columns per task."""
    O, L, I = x.shape
    nb = (I + cols - 1) // cols
    for task in prange(O * nb):
        o = task // nb
        c0 = (task - o * nb) * cols
        c1 = min(c0 + cols, I)
        m = x[o, 0, c0:c1].copy()
        for l in range(1, L):
            _max_into(x[o, l, c0:c1], m)
        # sums in the input dtype over FLUSH rows at a time, then into float64: the hot loop
        # stays in float32 for float32 input, and the error stays that of FLUSH-term sums
        s = np.zeros(c1 - c0, dtype=np.float64)
        part = np.zeros(c1 - c0, dtype=x.dtype)
        for l in range(L):
            if log:
                _expsum_into(x[o, l, c0:c1], m, part)
            else:
                _exp_into(x[o, l, c0:c1], m, y[o, l, c0:c1], part)
            if (l + 1) % FLUSH == 0 or l == L - 1:
                _flush_into(part, s)
        t = np.empty(c1 - c0, dtype=x.dtype)
        if log:
            for j in range(c1 - c0):
                t[j] = fast_log64(s[j])         # one log per column: libm's would dominate
            for l in range(L):
                _log_into(x[o, l, c0:c1], m, t, y[o, l, c0:c1])
        else:
            for j in range(c1 - c0):
                t[j] = 1.0 / s[j]
            for l in range(L):
                _scale_into(y[o, l, c0:c1], t)


@pjit
def _backward_cols(y, dy, dx, log, cols):
    """dx along axis 1 of (O, L, I), I > 1 (formulas of :func:`_backward_rows`)."""
    O, L, I = y.shape
    nb = (I + cols - 1) // cols
    for task in prange(O * nb):
        o = task // nb
        c0 = (task - o * nb) * cols
        c1 = min(c0 + cols, I)
        t64 = np.zeros(c1 - c0, dtype=np.float64)
        part = np.zeros(c1 - c0, dtype=y.dtype)
        for l in range(L):
            if log:
                _add_into(dy[o, l, c0:c1], part)
            else:
                _add_prod_into(dy[o, l, c0:c1], y[o, l, c0:c1], part)
            if (l + 1) % FLUSH == 0 or l == L - 1:
                _flush_into(part, t64)
        t = np.empty(c1 - c0, dtype=y.dtype)
        for j in range(c1 - c0):
            t[j] = t64[j]
        for l in range(L):
            if log:
                _log_softmax_grad_into(y[o, l, c0:c1], dy[o, l, c0:c1], t, dx[o, l, c0:c1])
            else:
                _softmax_grad_into(y[o, l, c0:c1], dy[o, l, c0:c1], t, dx[o, l, c0:c1])


def _olI(shape, dim):
    """(O, L, I) of an array of ``shape`` reduced along ``dim``."""
    return math.prod(shape[:dim]), shape[dim], math.prod(shape[dim + 1:])


def _cols_per_task(O, I):
    """Columns per task of the strided layout: as many as leave about four tasks per thread.
    Long column runs matter more than an L2-sized block: on (8, 21, 112*112) float32 the
    backward ran 1.4 ms with whole rows per task and 2.0 ms with 2048-column blocks (one
    thread), the writes of many short row segments being the slow part."""
    per_o = max(1, -(-4 * numba.get_num_threads() // O))
    return max(MIN_COLS, -(-I // per_o))


def _forward(x, dim, log):
    O, L, I = _olI(x.shape, dim)
    y = new_output(x.shape, x.dtype)
    if I == 1:
        _forward_rows(x.reshape(O, L), y.reshape(O, L), log)
    else:
        _forward_cols(x.reshape(O, L, I), y.reshape(O, L, I), log, _cols_per_task(O, I))
    return y


def _backward(y, dy, dim, log):
    O, L, I = _olI(y.shape, dim)
    dx = new_output(y.shape, y.dtype)
    if I == 1:
        _backward_rows(y.reshape(O, L), dy.reshape(O, L), dx.reshape(O, L), log)
    else:
        _backward_cols(y.reshape(O, L, I), dy.reshape(O, L, I), dx.reshape(O, L, I), log,
                       _cols_per_task(O, I))
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
