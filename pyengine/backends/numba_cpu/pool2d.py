"""numba 2-d pooling: max, average, max-unpool and adaptive average, forward and backward.

Shape letters: N batch, C channels (the kernels see the N*C planes as one axis, NC), H W input
plane, R S kernel (``p.kernel_h``, ``p.kernel_w``), P Q output plane.

Same coordinates and rules as numpy_ref/pool2d.py: output row ``i`` starts at input row
``i*stride - pad`` and its tap ``r`` reads row ``i*stride - pad + r*dilation``; max pooling visits
taps in row-major order, keeps the first maximum, lets a NaN replace the running maximum (the
last NaN wins) and never lets padding win; indices are flat ``h*W + w`` in the unpadded plane.

Every backward is a gather: one task per input row, each input element summing what it receives
from the windows that contain it, in the order the reference adds them, so there are no races
and the results are bitwise reproducible. Which window a tap of a given input position belongs
to comes from a small (size, taps) table built once per call (:func:`_tap_windows`), which
keeps integer division out of the inner loops.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..base import new_output
from ._common import jit, like, pjit, threaded


# -- tables --------------------------------------------------------------------------------
@jit
def _tap_windows(size, out_len, kernel, stride, pad, dilation):
    """(size, kernel) int64: entry [h, r] is the window i whose tap r reads input position h
    (i*stride - pad + r*dilation == h, 0 <= i < out_len), or -1."""
    table = np.full((size, kernel), -1, dtype=np.int64)
    for i in range(out_len):
        for r in range(kernel):
            h = i * stride - pad + r * dilation
            if 0 <= h < size:
                table[h, r] = i
    return table


@jit
def _adaptive_bounds(size, out_len):
    """(start, end) int64 arrays of the adaptive windows: [floor(i*H/P), ceil((i+1)*H/P))."""
    start = np.empty(out_len, dtype=np.int64)
    end = np.empty(out_len, dtype=np.int64)
    for i in range(out_len):
        start[i] = (i * size) // out_len
        end[i] = ((i + 1) * size + out_len - 1) // out_len
    return start, end


@jit
def _avg_divisors(h, w, out_h, out_w, geom, count_include_pad, divisor_override):
    """(P, Q) int64 divisor of each average-pooling window (numpy_ref's _avg_divisor)."""
    R, S, sh, sw, ph, pw, dh, dw = geom
    div = np.empty((out_h, out_w), dtype=np.int64)
    for i in range(out_h):
        hs = i * sh - ph
        he = min(hs + R, h + ph)
        for j in range(out_w):
            ws = j * sw - pw
            we = min(ws + S, w + pw)
            if divisor_override:
                div[i, j] = divisor_override
            elif count_include_pad:
                div[i, j] = (he - hs) * (we - ws)
            else:
                div[i, j] = (min(he, h) - max(hs, 0)) * (min(we, w) - max(ws, 0))
    return div


# -- max pooling ---------------------------------------------------------------------------
@pjit
def _max_pool_forward(x, y, idx, geom):
    """y, idx (NC, P, Q) of x (NC, H, W); one task per output row."""
    R, S, sh, sw, ph, pw, dh, dw = geom
    NC, H, W = x.shape
    P, Q = y.shape[1], y.shape[2]
    for task in prange(NC * P):
        c = task // P
        i = task - c * P
        plane = x[c]
        for j in range(Q):
            best = like(-np.inf, x)
            arg = -1
            for r in range(R):
                h = i * sh - ph + r * dh
                if h < 0 or h >= H:
                    continue
                for s in range(S):
                    w = j * sw - pw + s * dw
                    if w < 0 or w >= W:
                        continue
                    v = plane[h, w]
                    if arg < 0 or v > best or v != v:
                        best = v
                        arg = h * W + w
            y[c, i, j] = best
            idx[c, i, j] = arg


@pjit
def _max_pool_backward(dy, idx, dx, rows, cols):
    """dx (NC, H, W): each element sums dy of the windows whose index points at it, in
    row-major window order (larger tap r or s means a smaller window i or j)."""
    NC, H, W = dx.shape
    R, S = rows.shape[1], cols.shape[1]
    for task in prange(NC * H):
        c = task // H
        h = task - c * H
        g = dy[c]
        ix = idx[c]
        out = dx[c, h]
        for w in range(W):
            target = h * W + w
            acc = like(0, dx)
            for r in range(R - 1, -1, -1):
                i = rows[h, r]
                if i < 0:
                    continue
                for s in range(S - 1, -1, -1):
                    j = cols[w, s]
                    if j >= 0 and ix[i, j] == target:
                        acc += g[i, j]
            out[w] = acc


# -- average pooling -----------------------------------------------------------------------
@pjit
def _avg_pool_forward(x, y, div, geom):
    """y (NC, P, Q): the in-input taps of each window added in row-major order (padding adds
    zero), divided by the window's divisor."""
    R, S, sh, sw, ph, pw, dh, dw = geom
    NC, H, W = x.shape
    P, Q = y.shape[1], y.shape[2]
    for task in prange(NC * P):
        c = task // P
        i = task - c * P
        plane = x[c]
        for j in range(Q):
            acc = like(0, x)
            for r in range(R):
                h = i * sh - ph + r * dh
                if h < 0 or h >= H:
                    continue
                for s in range(S):
                    w = j * sw - pw + s * dw
                    if 0 <= w < W:
                        acc += plane[h, w]
            y[c, i, j] = acc / like(div[i, j], x)


@pjit
def _scale_by_divisor(dy, div, g):
    """g (NC, P, Q) = dy / div in dy's dtype (the reference divides before spreading)."""
    NC, P, Q = dy.shape
    for c in prange(NC):
        for i in range(P):
            for j in range(Q):
                g[c, i, j] = dy[c, i, j] / like(div[i, j], dy)


@pjit
def _avg_pool_backward(g, dx, rows, cols):
    """dx (NC, H, W): each element sums g of the windows that contain it, tap by tap in
    row-major order (the order in which the reference adds whole taps)."""
    NC, H, W = dx.shape
    R, S = rows.shape[1], cols.shape[1]
    for task in prange(NC * H):
        c = task // H
        h = task - c * H
        gc = g[c]
        out = dx[c, h]
        for w in range(W):
            acc = like(0, dx)
            for r in range(R):
                i = rows[h, r]
                if i < 0:
                    continue
                for s in range(S):
                    j = cols[w, s]
                    if j >= 0:
                        acc += gc[i, j]
            out[w] = acc


# -- max unpooling -------------------------------------------------------------------------
@pjit
def _max_unpool_forward(x, idx, y):
    """y (NC, L) zero except y[c, idx[c, m]] = x[c, m]; the last of repeated indices wins."""
    NC, L = y.shape
    M = x.shape[1]
    for c in prange(NC):
        out = y[c]
        for m in range(L):
            out[m] = 0
        for m in range(M):
            out[idx[c, m]] = x[c, m]


@pjit
def _max_unpool_backward(dy, idx, dx):
    """dx (NC, M) = dy (NC, L) gathered at idx (NC, M)."""
    NC, M = dx.shape
    for c in prange(NC):
        for m in range(M):
            dx[c, m] = dy[c, idx[c, m]]


# -- adaptive average pooling --------------------------------------------------------------
@pjit
def _adaptive_forward(x, y, h0, h1, w0, w1):
    """y (NC, P, Q): the mean over each adaptive window, summed in float64."""
    NC, H, W = x.shape
    P, Q = y.shape[1], y.shape[2]
    for task in prange(NC * P):
        c = task // P
        i = task - c * P
        plane = x[c]
        for j in range(Q):
            acc = 0.0
            for h in range(h0[i], h1[i]):
                for w in range(w0[j], w1[j]):
                    acc += plane[h, w]
            y[c, i, j] = acc / ((h1[i] - h0[i]) * (w1[j] - w0[j]))


@pjit
def _adaptive_scale(dy, g, h0, h1, w0, w1):
    """g (NC, P, Q) = dy / window area, in dy's dtype (as the reference)."""
    NC, P, Q = dy.shape
    for c in prange(NC):
        for i in range(P):
            for j in range(Q):
                g[c, i, j] = dy[c, i, j] / like((h1[i] - h0[i]) * (w1[j] - w0[j]), dy)


@jit
def _covering(size, start, end):
    """(size, 2) int64: the range [first, last + 1) of the adaptive windows containing each
    position (starts and ends both grow with the window index, so it is one range)."""
    out_len = start.shape[0]
    table = np.zeros((size, 2), dtype=np.int64)
    for h in range(size):
        first = out_len
        stop = 0
        for i in range(out_len):
            if start[i] <= h < end[i]:
                if i < first:
                    first = i
                stop = i + 1
        table[h, 0] = first
        table[h, 1] = max(stop, first)
    return table


@pjit
def _adaptive_backward(g, dx, hcov, wcov):
    """dx (NC, H, W): each element sums g over the windows covering it, columns first within a
    window row, then window rows (the reference's order)."""
    NC, H, W = dx.shape
    for task in prange(NC * H):
        c = task // H
        h = task - c * H
        gc = g[c]
        out = dx[c, h]
        for w in range(W):
            acc = like(0, dx)
            for i in range(hcov[h, 0], hcov[h, 1]):
                row = like(0, dx)
                for j in range(wcov[w, 0], wcov[w, 1]):
                    row += gc[i, j]
                acc += row
            out[w] = acc


# -- kernels of the interface --------------------------------------------------------------
def _geom(p):
    return (p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h,
            p.dilation_w)


def _tables(h, w, out_h, out_w, p):
    rows = _tap_windows(h, out_h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h)
    cols = _tap_windows(w, out_w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w)
    return rows, cols


@threaded
def max_pool2d_forward(x, p):
    """(y, indices int64) of max pooling x (N,C,H,W)."""
    n, c, h, w = x.shape
    out_h, out_w = p.output_hw(h, w)
    y = new_output((n, c, out_h, out_w), x.dtype)
    idx = new_output((n, c, out_h, out_w), np.int64)
    _max_pool_forward(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w),
                      idx.reshape(n * c, out_h, out_w), _geom(p))
    return y, idx


@threaded
def max_pool2d_backward(dy, indices, x_shape, p):
    """dx (x_shape): each input element gathers dy of the windows whose index points at it."""
    n, c, h, w = x_shape
    out_h, out_w = dy.shape[2], dy.shape[3]
    dx = new_output(x_shape, dy.dtype)
    rows, cols = _tables(h, w, out_h, out_w, p)
    _max_pool_backward(dy.reshape(n * c, out_h, out_w), indices.reshape(n * c, out_h, out_w),
                       dx.reshape(n * c, h, w), rows, cols)
    return dx


@threaded
def avg_pool2d_forward(x, p):
    """Average pooling of x (N,C,H,W) with numpy_ref's divisor rules."""
    n, c, h, w = x.shape
    out_h, out_w = p.output_hw(h, w)
    y = new_output((n, c, out_h, out_w), x.dtype)
    div = _avg_divisors(h, w, out_h, out_w, _geom(p), p.count_include_pad, p.divisor_override)
    _avg_pool_forward(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w), div, _geom(p))
    return y


@threaded
def avg_pool2d_backward(dy, x_shape, p):
    """dx (x_shape): every element of a window receives dy / divisor of that window."""
    n, c, h, w = x_shape
    out_h, out_w = dy.shape[2], dy.shape[3]
    div = _avg_divisors(h, w, out_h, out_w, _geom(p), p.count_include_pad, p.divisor_override)
    g = np.empty((n * c, out_h, out_w), dtype=dy.dtype)
    _scale_by_divisor(dy.reshape(n * c, out_h, out_w), div, g)
    dx = new_output(x_shape, dy.dtype)
    rows, cols = _tables(h, w, out_h, out_w, p)
    _avg_pool_backward(g, dx.reshape(n * c, h, w), rows, cols)
    return dx


@threaded
def max_unpool2d_forward(x, indices, out_hw):
    """y (N,C,*out_hw): zero except y[n, c].flat[indices[n, c, i, j]] = x[n, c, i, j]."""
    n, c = x.shape[:2]
    y = new_output((n, c) + tuple(out_hw), x.dtype)
    _max_unpool_forward(x.reshape(n * c, -1), indices.reshape(n * c, -1),
                        y.reshape(n * c, out_hw[0] * out_hw[1]))
    return y


@threaded
def max_unpool2d_backward(dy, indices):
    """dx (indices' shape) = dy gathered at indices, plane by plane."""
    n, c = indices.shape[:2]
    dx = new_output(indices.shape, dy.dtype)
    _max_unpool_backward(dy.reshape(n * c, -1), indices.reshape(n * c, -1),
                         dx.reshape(n * c, -1))
    return dx


@threaded
def adaptive_avg_pool2d_forward(x, out_hw):
    """y (N,C,P,Q): the mean of x over each adaptive window."""
    n, c, h, w = x.shape
    out_h, out_w = out_hw
    y = new_output((n, c, out_h, out_w), x.dtype)
    h0, h1 = _adaptive_bounds(h, out_h)
    w0, w1 = _adaptive_bounds(w, out_w)
    _adaptive_forward(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w), h0, h1, w0, w1)
    return y


@threaded
def adaptive_avg_pool2d_backward(dy, x_shape):
    """dx (x_shape): every element of a window receives dy / window area; overlaps add up."""
    n, c, h, w = x_shape
    out_h, out_w = dy.shape[2], dy.shape[3]
    h0, h1 = _adaptive_bounds(h, out_h)
    w0, w1 = _adaptive_bounds(w, out_w)
    g = np.empty((n * c, out_h, out_w), dtype=dy.dtype)
    _adaptive_scale(dy.reshape(n * c, out_h, out_w), g, h0, h1, w0, w1)
    dx = new_output(x_shape, dy.dtype)
    _adaptive_backward(g, dx.reshape(n * c, h, w), _covering(h, h0, h1), _covering(w, w0, w1))
    return dx
