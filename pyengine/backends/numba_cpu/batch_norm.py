"""numba batch normalisation over (N, C, L) arrays: training and evaluation forward, backward.

Shape letters: N batch, C channels, L spatial positions flattened (1 for (N, C) input).
Per-channel statistics run one task per channel and accumulate in float64 (as the reference,
whose sums over N*L values would otherwise lose accuracy with the batch size); the element-wise
passes run one task per (n, c) row of L values, computing in float64 and storing in x's dtype.
weight / bias of None reach the kernels as empty arrays with a flag.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..base import new_output
from ._common import pjit, row_sum64, threaded


@pjit
def _stats(x, mean, invstd, eps):
    """mean[c], invstd[c] = 1/sqrt(biased var + eps), float64, two passes per channel."""
    N, C, L = x.shape
    count = N * L
    for c in prange(C):
        s = 0.0
        for n in range(N):
            s += row_sum64(x[n, c], 0, L)
        m = s / count
        v = 0.0
        for n in range(N):
            row = x[n, c]
            part = 0.0
            for i in range(L):
                d = row[i] - m
                part += d * d
            v += part
        mean[c] = m
        invstd[c] = 1.0 / np.sqrt(v / count + eps)


@pjit
def _normalize(x, mean, invstd, weight, has_weight, bias, has_bias, y):
    """y = (x - mean) * invstd * weight + bias per channel (float64 arithmetic)."""
    N, C, L = x.shape
    for task in prange(N * C):
        n = task // C
        c = task - n * C
        scale = invstd[c] * (np.float64(weight[c]) if has_weight else 1.0)
        shift = np.float64(bias[c]) if has_bias else 0.0
        m = mean[c]
        src = x[n, c]
        dst = y[n, c]
        for i in range(L):
            dst[i] = (src[i] - m) * scale + shift


@pjit
def _grad_sums(dy, x, mean, invstd, dbias, dweight):
    """dbias[c] = sum dy, dweight[c] = sum dy * (x - mean) * invstd (float64; x - mean formed
    per element, so a large mean cannot cancel the sum away)."""
    N, C, L = x.shape
    for c in prange(C):
        m = mean[c]
        sdy = 0.0
        sdyx = 0.0
        for n in range(N):
            g = dy[n, c]
            src = x[n, c]
            sdy += row_sum64(g, 0, L)
            part = 0.0
            for i in range(L):
                part += np.float64(g[i]) * (src[i] - m)
            sdyx += part
        dbias[c] = sdy
        dweight[c] = sdyx * invstd[c]


@pjit
def _grad_input(dy, x, mean, invstd, weight, has_weight, dbias, dweight, training, dx):
    """dx = scale * (dy - dbias/count - xhat * dweight/count) in training, scale * dy otherwise,
    scale = invstd * weight."""
    N, C, L = x.shape
    count = N * L
    for task in prange(N * C):
        n = task // C
        c = task - n * C
        scale = invstd[c] * (np.float64(weight[c]) if has_weight else 1.0)
        g = dy[n, c]
        src = x[n, c]
        dst = dx[n, c]
        if training:
            mb = dbias[c] / count
            mw = dweight[c] / count
            m = mean[c]
            inv = invstd[c]
            for i in range(L):
                xhat = (src[i] - m) * inv
                dst[i] = scale * (g[i] - mb - xhat * mw)
        else:
            for i in range(L):
                dst[i] = scale * g[i]


def _optional(a, dtype):
    return (np.empty(0, dtype=dtype), False) if a is None else (a, True)


@threaded
def batch_norm_forward_train(x, weight, bias, eps):
    """(y, mean (C,), invstd (C,)) of x (N,C,L) with the batch statistics (biased variance)."""
    C = x.shape[1]
    mean64 = np.empty(C, dtype=np.float64)
    invstd64 = np.empty(C, dtype=np.float64)
    _stats(x, mean64, invstd64, float(eps))
    w, has_w = _optional(weight, x.dtype)
    b, has_b = _optional(bias, x.dtype)
    y = new_output(x.shape, x.dtype)
    _normalize(x, mean64, invstd64, w, has_w, b, has_b, y)
    mean = new_output((C,), x.dtype)
    invstd = new_output((C,), x.dtype)
    mean[...] = mean64
    invstd[...] = invstd64
    return y, mean, invstd


@threaded
def batch_norm_forward_eval(x, running_mean, running_var, weight, bias, eps):
    """y = (x - running_mean) / sqrt(running_var + eps) * weight + bias for x (N,C,L)."""
    mean64 = running_mean.astype(np.float64)
    invstd64 = 1.0 / np.sqrt(running_var.astype(np.float64) + float(eps))
    w, has_w = _optional(weight, x.dtype)
    b, has_b = _optional(bias, x.dtype)
    y = new_output(x.shape, x.dtype)
    _normalize(x, mean64, invstd64, w, has_w, b, has_b, y)
    return y


@threaded
def batch_norm_backward(dy, x, weight, mean, invstd, training):
    """(dx, dweight, dbias); ``training``: mean/invstd are batch statistics that depend on x."""
    C = x.shape[1]
    mean64 = mean.astype(np.float64)
    invstd64 = invstd.astype(np.float64)
    dbias64 = np.empty(C, dtype=np.float64)
    dweight64 = np.empty(C, dtype=np.float64)
    _grad_sums(dy, x, mean64, invstd64, dbias64, dweight64)
    w, has_w = _optional(weight, x.dtype)
    dx = new_output(x.shape, x.dtype)
    _grad_input(dy, x, mean64, invstd64, w, has_w, dbias64, dweight64,
                bool(training) and x.shape[0] * x.shape[2] > 0, dx)
    dweight = new_output((C,), x.dtype)
    dbias = new_output((C,), x.dtype)
    dweight[...] = dweight64
    dbias[...] = dbias64
    return dx, dweight, dbias
