"""Reference batch normalisation over (N, C, L) arrays: forward in training and evaluation mode,
and the backward of both.

Shape letters: N batch, C channels, L every spatial position flattened (1 for (N, C) input).
Statistics are per channel over the N*L values of that channel. weight and bias are (C,) or None
(None: scale 1, shift 0). The per-channel sums are accumulated in float64 whatever the input
dtype: they run over N*L values, where float32 round-off would grow with the batch size, and the
reference must be the accurate side of every comparison.
"""
from __future__ import annotations

import numpy as np


def _channel_sum(a):
    """(C,) float64 sums of an (N, C, L) array over N and L."""
    return a.sum(axis=(0, 2), dtype=np.float64)


def _per_channel(v):
    """A (C,) vector shaped to broadcast against (N, C, L)."""
    return v.reshape(1, -1, 1)


def batch_norm_forward_train(x, weight, bias, eps):
    """(y, mean, invstd) with the batch statistics of x (N,C,L).

    mean (C,) and invstd = 1/sqrt(var + eps) (C,) use the biased variance (divide by N*L); both
    come back in x's dtype for the backward. N*L must be at least 1 (functional checks).
    """
    count = x.shape[0] * x.shape[2]
    mean64 = _channel_sum(x) / count
    centered = x.astype(np.float64) - _per_channel(mean64)
    var64 = _channel_sum(centered * centered) / count
    invstd64 = 1.0 / np.sqrt(var64 + eps)
    y = centered * _per_channel(invstd64)
    if weight is not None:
        y *= _per_channel(weight)
    if bias is not None:
        y += _per_channel(bias)
    return y.astype(x.dtype), mean64.astype(x.dtype), invstd64.astype(x.dtype)


def batch_norm_forward_eval(x, running_mean, running_var, weight, bias, eps):
    """y = (x - running_mean) / sqrt(running_var + eps) * weight + bias for x (N,C,L)."""
    invstd = 1 / np.sqrt(running_var + x.dtype.type(eps))
    y = (x - _per_channel(running_mean)) * _per_channel(invstd)
    if weight is not None:
        y *= _per_channel(weight)
    if bias is not None:
        y += _per_channel(bias)
    return y.astype(x.dtype, copy=False)


def batch_norm_backward(dy, x, weight, mean, invstd, training):
    """(dx (N,C,L), dweight (C,), dbias (C,)) of batch norm.

    With xhat = (x - mean) * invstd: dbias = sum(dy), dweight = sum(dy * xhat) (sums over N, L).
    Evaluation (``training`` False): mean and invstd are constants (the running statistics), so
    dx = dy * weight * invstd. Training: they are the batch statistics and depend on x, which adds
    dx = weight * invstd * (dy - dbias / (N*L) - xhat * dweight / (N*L)).
    dweight is computed even when weight is None (then taken as 1).
    """
    count = x.shape[0] * x.shape[2]
    mean64 = _per_channel(mean.astype(np.float64))
    invstd64 = _per_channel(invstd.astype(np.float64))
    dy64 = dy.astype(np.float64)
    xhat = (x - mean64) * invstd64
    dbias = _channel_sum(dy64)
    dweight = _channel_sum(dy64 * xhat)
    scale = invstd64 if weight is None else invstd64 * _per_channel(weight.astype(np.float64))
    if training and count > 0:
        dx = scale * (dy64 - _per_channel(dbias / count) - xhat * _per_channel(dweight / count))
    else:
        dx = scale * dy64
    return dx.astype(x.dtype), dweight.astype(x.dtype), dbias.astype(x.dtype)
