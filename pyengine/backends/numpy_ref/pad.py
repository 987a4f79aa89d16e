"""Reference padding (PyTorch's F.pad): constant, reflect, replicate and circular, and the
gradient of each.

``p.pads`` lists (before, after) amounts from the last dimension backwards: (left, right, top,
bottom, front, back). Negative amounts crop. Only the last len(pads)/2 dimensions change; the
arrays may have any rank (functional checks which ranks each mode accepts).

Every non-constant mode is a gather along each padded dimension: output position o of a
dimension of length n reads input position idx[o] (see :func:`source_index`), so the forward
takes idx along each dimension in turn and the backward adds the gradient of every output
position back onto the position it was read from.
"""
from __future__ import annotations

import numpy as np

from ..base import new_output


def _padded_dims(ndim, pads):
    """[(axis, before, after)] for each padded dimension, last dimension first."""
    return [(ndim - 1 - i, int(pads[2 * i]), int(pads[2 * i + 1])) for i in range(len(pads) // 2)]


def _kept_range(n, before, after):
    """(first, stop) of the input positions that survive cropping by negative amounts."""
    return max(-before, 0), n - max(-after, 0)


def source_index(n, before, after, mode):
    """int64 array: for each output position along one dimension, the input position it copies.

    reflect: mirror about the first and last element without repeating them (PyTorch's
    ReflectionPad); replicate: the nearest edge element; both in the coordinates of the original
    input, so cropping one side does not move the other. circular: PyTorch crops first, then wraps
    around the cropped extent, so a left crop also shifts what wraps in on the right.
    """
    out = n + before + after
    if mode == "circular":
        first, stop = _kept_range(n, before, after)
        kept = stop - first
        o = np.arange(out, dtype=np.int64) - max(before, 0)
        return first + np.mod(o, kept) if kept > 0 else np.zeros(0, dtype=np.int64)
    i = np.arange(out, dtype=np.int64) - before
    if mode == "reflect":
        i = np.abs(i)                              # left side: -1 -> 1, -2 -> 2, ...
        return np.where(i > n - 1, 2 * (n - 1) - i, i)  # right side: n -> n-2, ...
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    raise ValueError(f"source_index: mode {mode!r} is not a gather mode")


def pad_forward(x, p):
    """x padded (negative amounts: cropped) per PadParams ``p``; a new array."""
    dims = _padded_dims(x.ndim, p.pads)
    if p.mode == "constant":
        out_shape = list(x.shape)
        src = [slice(None)] * x.ndim
        dst = [slice(None)] * x.ndim
        for axis, before, after in dims:
            n = x.shape[axis]
            out_shape[axis] = n + before + after
            first, stop = _kept_range(n, before, after)
            src[axis] = slice(first, max(stop, first))
            dst[axis] = slice(max(before, 0), max(before, 0) + max(stop - first, 0))
        y = new_output(tuple(out_shape), x.dtype)
        y.fill(p.value)
        y[tuple(dst)] = x[tuple(src)]
        return y
    y = x
    for axis, before, after in dims:
        y = np.take(y, source_index(x.shape[axis], before, after, p.mode), axis=axis)
    return np.ascontiguousarray(y) if y is not x else y.copy()


def _scatter_add(g, axis, idx, n, before, after):
    """Sum the slices of ``g`` along ``axis`` into ``n`` slots: slot idx[o] receives g[o].

    The interior (copied one-to-one in every mode) is a single slice; only the padding positions,
    usually a few, are added one by one.
    """
    g = np.moveaxis(g, axis, 0)
    out = np.zeros((n,) + g.shape[1:], dtype=g.dtype)
    first, stop = _kept_range(n, before, after)
    kept = max(stop - first, 0)
    start = max(before, 0)
    out[first:first + kept] = g[start:start + kept]
    for o in list(range(start)) + list(range(start + kept, g.shape[0])):
        out[idx[o]] += g[o]
    return np.moveaxis(out, 0, axis)


def pad_backward(dy, x_shape, p):
    """dx (x_shape) of pad_forward: cropped positions get zero; a position copied several times
    (reflect/replicate/circular) receives the sum of the copies' gradients."""
    dims = _padded_dims(len(x_shape), p.pads)
    if p.mode == "constant":
        dx = np.zeros(x_shape, dtype=dy.dtype)
        src = [slice(None)] * len(x_shape)
        dst = [slice(None)] * len(x_shape)
        for axis, before, after in dims:
            first, stop = _kept_range(x_shape[axis], before, after)
            src[axis] = slice(first, max(stop, first))
            dst[axis] = slice(max(before, 0), max(before, 0) + max(stop - first, 0))
        dx[tuple(src)] = dy[tuple(dst)]
        return dx
    g = dy
    for axis, before, after in dims:
        n = x_shape[axis]
        g = _scatter_add(g, axis, source_index(n, before, after, p.mode), n, before, after)
    return np.ascontiguousarray(g)
