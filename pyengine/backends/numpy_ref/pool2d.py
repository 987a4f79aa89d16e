"""Reference 2-d pooling kernels: max, average, max-unpool and adaptive average (float32/float64).

Shape letters: N batch, C channels, H W input plane, R S kernel (``p.kernel_h``, ``p.kernel_w``),
P Q output plane. Every kernel works on whole (N, C) stacks at once and loops only over kernel
taps (max/avg) or output rows and columns (adaptive), so the loops stay short.

Coordinates: output row ``i`` of a window-based pool starts at input row ``i*stride - pad``;
its kernel tap ``r`` reads input row ``i*stride - pad + r*dilation``. Rows outside [0, H) are
padding. A max-pool index is the flat position ``h*W + w`` in the unpadded plane of its (n, c).
"""
from __future__ import annotations

import numpy as np


def _padded_plane_shape(h, w, out_h, out_w, p):
    """(Hp, Wp) of a padded plane that holds every tap of every window, ceil_mode's overhanging
    last window included."""
    hp = max(h + 2 * p.pad_h, (out_h - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1)
    wp = max(w + 2 * p.pad_w, (out_w - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1)
    return hp, wp


def _pad_plane(x, out_h, out_w, p):
    """x (N,C,H,W) placed in a zero (N,C,Hp,Wp) plane at offset (pad_h, pad_w)."""
    n, c, h, w = x.shape
    xp = np.zeros((n, c) + _padded_plane_shape(h, w, out_h, out_w, p), dtype=x.dtype)
    xp[:, :, p.pad_h:p.pad_h + h, p.pad_w:p.pad_w + w] = x
    return xp


def _tap(padded, r, s, out_h, out_w, p):
    """The (N,C,P,Q) strided view of a padded plane that kernel tap (r, s) reads in every
    window. One tap reads a different element in each window, so ``+=`` on it is exact."""
    r0, s0 = r * p.dilation_h, s * p.dilation_w
    return padded[:, :, r0:r0 + (out_h - 1) * p.stride_h + 1:p.stride_h,
                  s0:s0 + (out_w - 1) * p.stride_w + 1:p.stride_w]


def _tap_coords(out_len, stride, pad, dilation, tap, size):
    """Input coordinate that kernel tap ``tap`` reads in each of ``out_len`` windows along one
    axis, and whether it lies inside the input (rather than in the padding)."""
    pos = np.arange(out_len) * stride - pad + tap * dilation
    return pos, (pos >= 0) & (pos < size)


def max_pool2d_forward(x, p):
    """(y, indices) of max pooling x (N,C,H,W) with Pool2dParams ``p``.

    Taps are visited in row-major window order and a tap replaces the running maximum only when
    it is strictly greater, so the first maximum wins ties. A NaN always replaces the running
    maximum, so the last NaN of a window wins (PyTorch's rule: ``val > max || isnan(val)``). Padding is never a candidate (so it never wins, even against -inf).
    indices: int64, flat ``h*W + w`` in the unpadded plane. A window whose taps all fall in the
    padding (possible only with dilation > 1) has value -inf and index -1: there is no element to
    point at, and max_pool2d_backward passes it no gradient.
    """
    n, c, h, w = x.shape
    out_h, out_w = p.output_hw(h, w)
    padded = _pad_plane(x, out_h, out_w, p)
    y = np.full((n, c, out_h, out_w), -np.inf, dtype=x.dtype)
    indices = np.full((n, c, out_h, out_w), -1, dtype=np.int64)
    for r in range(p.kernel_h):
        rows, rows_in = _tap_coords(out_h, p.stride_h, p.pad_h, p.dilation_h, r, h)
        for s in range(p.kernel_w):
            cols, cols_in = _tap_coords(out_w, p.stride_w, p.pad_w, p.dilation_w, s, w)
            cand = _tap(padded, r, s, out_h, out_w, p)
            inside = rows_in[:, None] & cols_in[None, :]
            take = inside & ((indices < 0)  # the window's first in-input tap starts the race
                             | (cand > y)
                             | np.isnan(cand))
            np.copyto(y, cand, where=take)
            np.copyto(indices, rows[:, None] * w + cols[None, :], where=take)
    return y, indices


def max_pool2d_backward(dy, indices, x_shape, p):
    """dx (x_shape): each input element receives the sum of dy over the windows whose index
    points at it, added in row-major window order (what a per-element gather computes).

    np.add.at is the readable scatter form of that gather: it accumulates repeated indices (the
    same element winning overlapping windows) instead of keeping only one. Index -1 (a window
    entirely in padding) contributes nothing.
    """
    n, c, h, w = x_shape
    planes = n * c
    dx = np.zeros((planes, h * w), dtype=dy.dtype)
    flat_idx = indices.reshape(planes, -1)
    plane = np.broadcast_to(np.arange(planes)[:, None], flat_idx.shape)
    keep = flat_idx >= 0
    np.add.at(dx, (plane[keep], flat_idx[keep]), dy.reshape(planes, -1)[keep])
    return dx.reshape(x_shape)


def _avg_extent(out_len, stride, pad, kernel, size):
    """Per window along one axis: (its length clipped to the padded input, its length clipped
    to the input). ceil_mode windows may run past the padded input; PyTorch clips them."""
    start = np.arange(out_len) * stride - pad
    end = np.minimum(start + kernel, size + pad)
    return end - start, np.minimum(end, size) - np.maximum(start, 0)


def _avg_divisor(p, h, w, out_h, out_w, dtype):
    """The (P, Q) divisor of each window, in the data's dtype (so float32 stays float32)."""
    if p.divisor_override:
        return np.full((out_h, out_w), p.divisor_override, dtype=dtype)
    padded_h, inside_h = _avg_extent(out_h, p.stride_h, p.pad_h, p.kernel_h, h)
    padded_w, inside_w = _avg_extent(out_w, p.stride_w, p.pad_w, p.kernel_w, w)
    if p.count_include_pad:
        return (padded_h[:, None] * padded_w[None, :]).astype(dtype)
    return (inside_h[:, None] * inside_w[None, :]).astype(dtype)


def avg_pool2d_forward(x, p):
    """Average pooling of x (N,C,H,W): the sum over each window's in-input elements (padding
    counts as zero) divided by divisor_override, else by the window size clipped to the padded
    input (count_include_pad), else by the number of in-input elements.

    Taps are added in row-major window order, as PyTorch does, before the one division.
    """
    n, c, h, w = x.shape
    out_h, out_w = p.output_hw(h, w)
    padded = _pad_plane(x, out_h, out_w, p)
    total = np.zeros((n, c, out_h, out_w), dtype=x.dtype)
    for r in range(p.kernel_h):
        for s in range(p.kernel_w):
            total += _tap(padded, r, s, out_h, out_w, p)
    return total / _avg_divisor(p, h, w, out_h, out_w, x.dtype)


def avg_pool2d_backward(dy, x_shape, p):
    """dx (x_shape): every element of a window receives dy / divisor of that window."""
    n, c, h, w = x_shape
    out_h, out_w = dy.shape[2:]
    g = dy / _avg_divisor(p, h, w, out_h, out_w, dy.dtype)
    dxp = np.zeros((n, c) + _padded_plane_shape(h, w, out_h, out_w, p), dtype=dy.dtype)
    for r in range(p.kernel_h):
        for s in range(p.kernel_w):
            _tap(dxp, r, s, out_h, out_w, p)[...] += g
    return np.ascontiguousarray(dxp[:, :, p.pad_h:p.pad_h + h, p.pad_w:p.pad_w + w])


def max_unpool2d_forward(x, indices, out_hw):
    """y (N,C,*out_hw): zero except y[n, c].flat[indices[n, c, i, j]] = x[n, c, i, j].

    indices are int64, of x's shape, each in [0, out_h*out_w) (checked by functional). Where an
    index repeats within a plane the last one in row-major order wins, as in PyTorch's CPU kernel
    (max_pool2d's indices repeat only where the values are equal anyway).
    """
    n, c = x.shape[:2]
    plane = out_hw[0] * out_hw[1]
    y = np.zeros(n * c * plane, dtype=x.dtype)
    flat = (indices.reshape(n * c, -1) + np.arange(n * c)[:, None] * plane).ravel()
    # numpy leaves the winner of a repeated fancy-index assignment unspecified; pick the last
    # occurrence of each target explicitly.
    reversed_flat = flat[::-1]
    targets, first_in_reversed = np.unique(reversed_flat, return_index=True)
    y[targets] = x.ravel()[flat.size - 1 - first_in_reversed]
    return y.reshape(n, c, out_hw[0], out_hw[1])


def max_unpool2d_backward(dy, indices):
    """dx (indices' shape) = dy gathered at indices, plane by plane."""
    n, c = indices.shape[:2]
    dx = np.take_along_axis(dy.reshape(n * c, -1), indices.reshape(n * c, -1), axis=1)
    return dx.reshape(indices.shape)


def _adaptive_bounds(size, out_len):
    """(start, end) of each adaptive window along one axis: [floor(i*H/P), ceil((i+1)*H/P))."""
    i = np.arange(out_len)
    start = (i * size) // out_len
    end = -((-(i + 1) * size) // out_len)
    return start, end


def adaptive_avg_pool2d_forward(x, out_hw):
    """y (N,C,P,Q): the mean of x over each adaptive window (windows of neighbours may overlap
    by one element when P does not divide H). Rows are summed first, then columns."""
    n, c, h, w = x.shape
    out_h, out_w = out_hw
    h0, h1 = _adaptive_bounds(h, out_h)
    w0, w1 = _adaptive_bounds(w, out_w)
    row_sums = np.empty((n, c, out_h, w), dtype=x.dtype)
    for i in range(out_h):
        row_sums[:, :, i, :] = x[:, :, h0[i]:h1[i], :].sum(axis=2)
    y = np.empty((n, c, out_h, out_w), dtype=x.dtype)
    for j in range(out_w):
        y[:, :, :, j] = row_sums[:, :, :, w0[j]:w1[j]].sum(axis=3)
    area = ((h1 - h0)[:, None] * (w1 - w0)[None, :]).astype(x.dtype)
    return y / area


def adaptive_avg_pool2d_backward(dy, x_shape):
    """dx (x_shape): every element of a window receives dy / window area; overlapping windows
    add up."""
    n, c, h, w = x_shape
    out_h, out_w = dy.shape[2:]
    h0, h1 = _adaptive_bounds(h, out_h)
    w0, w1 = _adaptive_bounds(w, out_w)
    g = dy / ((h1 - h0)[:, None] * (w1 - w0)[None, :]).astype(dy.dtype)
    spread_w = np.zeros((n, c, out_h, w), dtype=dy.dtype)
    for j in range(out_w):
        spread_w[:, :, :, w0[j]:w1[j]] += g[:, :, :, j:j + 1]
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for i in range(out_h):
        dx[:, :, h0[i]:h1[i], :] += spread_w[:, :, i:i + 1, :]
    return dx
