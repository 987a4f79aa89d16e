"""numba 2-d pooling: max, average, max-unpool and adaptive average, forward and backward.

Shape letters: N batch, C channels (the kernels see the N*C planes as one axis, NC), H W input
plane, R S kernel (``p.kernel_h``, ``p.kernel_w``), P Q output plane.

Same coordinates and rules as numpy_ref/pool2d.py: output row ``i`` starts at input row
``i*stride - pad`` and its tap ``r`` reads row ``i*stride - pad + r*dilation``; max pooling visits
taps in row-major order, keeps the first maximum, lets a NaN replace the running maximum (the
last NaN wins) and never lets padding win; indices are flat ``h*W + w`` in the unpadded plane.

Every backward is a gather: one parallel task per input row, which owns that row of dx and
sums into it what it receives from the windows covering it, in the order the reference adds
those terms. No two tasks write the same element (no atomics, no races), and the results are
bitwise reproducible whatever the thread count. Which window row covers input row h through
tap r comes from a small (H, R) table built once per call (:func:`_tap_windows`), which keeps
integer division out of the loops. Forward kernels run one task per output row and apply one
kernel tap to the whole row at a time, so their inner loops are unit-stride and vectorise.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..base import new_output
from ._common import jit, like, pjit, row_sum64, threaded, valid_range


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


# Tap helpers: each applies one kernel tap (r, s) to a whole output row, on 1-d contiguous
# slices (indexing the 3-d arrays inside the parallel loops kept LLVM from vectorising).
# Indices go through np.uintp once valid_range (or an explicit test) has proved them in
# bounds: numba then drops its negative-index wraparound select, which blocks vectorisation.
@jit(inline="always")
def _sum_tap(xrow, yrow, j0, j1, sw, off):
    """yrow[j] += xrow[j*sw + off] for j in [j0, j1)."""
    for j in range(j0, j1):
        yrow[np.uintp(j)] += xrow[np.uintp(j * sw + off)]


@jit(inline="always")
def _spread_tap(grow, out, j0, j1, sw, off):
    """out[j*sw + off] += grow[j] for j in [j0, j1)."""
    for j in range(j0, j1):
        out[np.uintp(j * sw + off)] += grow[np.uintp(j)]


@jit(inline="always")
def _gather_winners(irow, grow, out, base):
    """out[k] += grow[j] for the windows j of one output row whose maximum is input position
    base + k of this row (k in [0, len(out))), in increasing j."""
    W = out.shape[0]
    for j in range(irow.shape[0]):
        k = irow[j] - base
        if k >= 0 and k < W:
            out[np.uintp(k)] += grow[j]


# -- max pooling ---------------------------------------------------------------------------
@jit
def _tap_ranges(out_len, kernel, stride, pad, dilation, size):
    """(out_len, 2) int64: [first, stop) of the taps of each window that fall inside the input
    (taps of one window are in range for one contiguous run of indices)."""
    table = np.zeros((out_len, 2), dtype=np.int64)
    for i in range(out_len):
        first = kernel
        stop = 0
        for r in range(kernel):
            h = i * stride - pad + r * dilation
            if 0 <= h < size:
                if r < first:
                    first = r
                stop = r + 1
        table[i, 0] = first
        table[i, 1] = max(stop, first)
    return table


@pjit
def _max_pool_forward(x, y, idx, rr, ss, geom):
    """y, idx (NC, P, Q) of x (NC, H, W); one task per output row, one window at a time with
    its running maximum in registers. Taps in row-major order; rr / ss are the in-input tap
    ranges of each window row / column (_tap_ranges), so padding is never offered."""
    R, S, sh, sw, ph, pw, dh, dw = geom
    NC, H, W = x.shape
    P, Q = y.shape[1], y.shape[2]
    for task in prange(NC * P):
        c = task // P
        i = task - c * P
        plane = x[c]
        yrow = y[c, i]
        irow = idx[c, i]
        r0, r1 = rr[i, 0], rr[i, 1]
        for j in range(Q):
            s0, s1 = ss[j, 0], ss[j, 1]
            best = like(-np.inf, x)
            arg = -1
            for r in range(r0, r1):
                h = i * sh - ph + r * dh
                for s in range(s0, s1):
                    w = j * sw - pw + s * dw
                    v = plane[np.uintp(h), np.uintp(w)]   # in the input: _tap_ranges
                    if arg < 0 or v > best or v != v:
                        best = v
                        arg = h * W + w
            yrow[j] = best
            irow[j] = arg


@pjit
def _max_pool_backward(dy, idx, dx, rows):
    """dx (NC, H, W), one task per input row h: the row gathers dy of every window whose index
    points into it. The windows covering row h are rows[h, r] (from tap r); taking r downwards
    visits them in increasing order, so each element adds its dy in row-major window order
    (the reference's np.add.at order), with no writes outside the task's row."""
    NC, H, W = dx.shape
    R = rows.shape[1]
    for task in prange(NC * H):
        c = task // H
        h = task - c * H
        out = dx[c, h]
        for w in range(W):
            out[w] = 0
        for r in range(R - 1, -1, -1):
            i = rows[h, r]
            if i >= 0:
                _gather_winners(idx[c, i], dy[c, i], out, h * W)


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
        yrow = y[c, i]
        for j in range(Q):
            yrow[j] = 0
        for r in range(R):
            h = i * sh - ph + r * dh
            if h < 0 or h >= H:
                continue
            xrow = x[c, h]
            for s in range(S):
                off = s * dw - pw
                j0, j1 = valid_range(Q, sw, off, W)
                _sum_tap(xrow, yrow, j0, j1, sw, off)
        drow = div[i]
        for j in range(Q):
            yrow[j] = yrow[j] / like(drow[j], x)


@pjit
def _scale_by_divisor(dy, div, g):
    """g (NC, P, Q) = dy / div in dy's dtype (the reference divides before spreading)."""
    NC, P, Q = dy.shape
    for task in prange(NC * P):
        c = task // P
        i = task - c * P
        src = dy[c, i]
        dst = g[c, i]
        drow = div[i]
        for j in range(Q):
            dst[j] = src[j] / like(drow[j], dy)


@pjit
def _avg_pool_backward(g, dx, rows, geom):
    """dx (NC, H, W), one task per input row: each element adds g of the windows containing
    it, tap (r, s) by tap in row-major order (the order in which the reference adds taps)."""
    R, S, sh, sw, ph, pw, dh, dw = geom
    NC, H, W = dx.shape
    Q = g.shape[2]
    for task in prange(NC * H):
        c = task // H
        h = task - c * H
        out = dx[c, h]
        for w in range(W):
            out[w] = 0
        for r in range(R):
            i = rows[h, r]
            if i < 0:
                continue
            grow = g[c, i]
            for s in range(S):
                off = s * dw - pw
                j0, j1 = valid_range(Q, sw, off, W)
                _spread_tap(grow, out, j0, j1, sw, off)


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


PLANES = 16   # planes per task of the adaptive kernels (one row buffer serves them all)


@pjit
def _adaptive_backward(dy, dx, h0, h1, w0, w1):
    """dx (NC, H, W). For each window row i in order: spread dy[i, j] / area over the columns
    of window j (j in order) into a row buffer, then add the buffer to every input row the
    window row covers. Each element thus receives its terms in the reference's order (columns
    first, then window rows). One task per block of PLANES planes, which it alone writes."""
    NC, H, W = dx.shape
    P, Q = dy.shape[1], dy.shape[2]
    for blk in prange((NC + PLANES - 1) // PLANES):
        spread = np.empty(W, dtype=dx.dtype)
        for c in range(blk * PLANES, min(NC, (blk + 1) * PLANES)):
            plane = dx[c]
            for h in range(H):
                row = plane[h]
                for w in range(W):
                    row[w] = 0
            for i in range(P):
                for w in range(W):
                    spread[w] = 0
                grow = dy[c, i]
                for j in range(Q):
                    gj = grow[j] / like((h1[i] - h0[i]) * (w1[j] - w0[j]), dx)
                    for w in range(w0[j], w1[j]):
                        spread[np.uintp(w)] += gj
                for h in range(h0[i], h1[i]):
                    row = plane[np.uintp(h)]
                    for w in range(W):
                        row[w] += spread[w]


# -- kernels of the interface --------------------------------------------------------------
def _geom(p):
    return (p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h,
            p.dilation_w)


@threaded
def max_pool2d_forward(x, p):
    """(y, indices int64) of max pooling x (N,C,H,W)."""
    n, c, h, w = x.shape
    out_h, out_w = p.output_hw(h, w)
    y = new_output((n, c, out_h, out_w), x.dtype)
    idx = new_output((n, c, out_h, out_w), np.int64)
    rr = _tap_ranges(out_h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h, h)
    ss = _tap_ranges(out_w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w, w)
    _max_pool_forward(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w),
                      idx.reshape(n * c, out_h, out_w), rr, ss, _geom(p))
    return y, idx


@threaded
def max_pool2d_backward(dy, indices, x_shape, p):
    """dx (x_shape): each input element gathers dy of the windows whose index points at it."""
    n, c, h, w = x_shape
    out_h, out_w = dy.shape[2], dy.shape[3]
    dx = new_output(x_shape, dy.dtype)
    rows = _tap_windows(h, out_h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h)
    _max_pool_backward(dy.reshape(n * c, out_h, out_w), indices.reshape(n * c, out_h, out_w),
                       dx.reshape(n * c, h, w), rows)
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
    rows = _tap_windows(h, out_h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h)
    _avg_pool_backward(g, dx.reshape(n * c, h, w), rows, _geom(p))
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
    if out_h == 1 and out_w == 1:
        _global_forward(x.reshape(n * c, h * w), y.reshape(n * c))
        return y
    h0, h1 = _adaptive_bounds(h, out_h)
    w0, w1 = _adaptive_bounds(w, out_w)
    _adaptive_forward(x.reshape(n * c, h, w), y.reshape(n * c, out_h, out_w), h0, h1, w0, w1)
    return y


@pjit
def _global_forward(x, y):
    """y (NC,) = mean of each plane of x (NC, L), summed in float64: the adaptive forward when
    one window covers the plane, on flat contiguous planes."""
    NC, L = x.shape
    for blk in prange((NC + PLANES - 1) // PLANES):
        for c in range(blk * PLANES, min(NC, (blk + 1) * PLANES)):
            y[c] = row_sum64(x[c], 0, L) / L


@pjit
def _global_backward(dy, dx):
    """dx (NC, L) = dy (NC,) / L: the adaptive backward when one window covers the plane (the
    general kernel computes the same values, bit for bit, with more bookkeeping)."""
    NC, L = dx.shape
    for blk in prange((NC + PLANES - 1) // PLANES):
        for c in range(blk * PLANES, min(NC, (blk + 1) * PLANES)):
            g = dy[c] / like(L, dx)
            row = dx[c]
            for i in range(L):
                row[i] = g


@threaded
def adaptive_avg_pool2d_backward(dy, x_shape):
    """dx (x_shape): every element of a window receives dy / window area; overlaps add up."""
    n, c, h, w = x_shape
    out_h, out_w = dy.shape[2], dy.shape[3]
    dx = new_output(x_shape, dy.dtype)
    if out_h == 1 and out_w == 1:
        _global_backward(dy.reshape(n * c), dx.reshape(n * c, h * w))
        return dx
    h0, h1 = _adaptive_bounds(h, out_h)
    w0, w1 = _adaptive_bounds(w, out_w)
    _adaptive_backward(dy.reshape(n * c, out_h, out_w), dx.reshape(n * c, h, w), h0, h1, w0, w1)
    return dx
