"""numba 2-d convolution (cross-correlation, NCHW) and its three gradients.

Shape letters: N batch, C input channels, K output channels, G groups (Cg = C/G, Kg = K/G),
H W input plane, R S kernel, P Q output plane, L = Nc*P*Q the columns of one chunk of Nc images.

Two algorithms (``algorithms('conv2d')``):

- ``im2col_gemm``: a parallel numba kernel copies the receptive fields of a chunk of images into
  a column matrix col (G, Cg*R*S, Nc*P*Q) (zeros where a tap reads padding), and numpy's BLAS
  does the GEMMs: y = w (G, Kg, Cg*R*S) @ col; dcol = w^T @ dy, scattered back by a parallel
  col2im kernel; dw = dy @ col^T summed over chunks. BLAS runs between the numba parallel
  regions, never inside one, so the two thread pools are never nested. The batch is cut into
  chunks so that col stays under ``COL_BUDGET`` elements. 1x1 convolutions with stride 1 and no
  padding skip im2col: x itself is the column matrix of each image.
- ``direct_depthwise``: for depthwise convolutions (groups == C, so Cg == 1; K = C * multiplier),
  a direct loop nest per (n, k) plane, whose inner loop runs along an output row. Asked for a
  convolution that is not depthwise, it runs ``im2col_gemm`` instead (it has no way to sum over
  input channels).

``auto`` picks ``direct_depthwise`` for depthwise convolutions with groups > 1, else
``im2col_gemm``. Accumulation is in the input's dtype (as the reference), except the bias
gradient and the depthwise weight gradient, whose long sums over N*P*Q terms end in float64.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..base import new_output
from ._common import beside_blas, jit, pjit, row_sum64, threaded, valid_range

ALGORITHMS = ("im2col_gemm", "direct_depthwise")
COL_BUDGET = 1 << 23   # elements of the column matrix of one chunk (32 MiB in float32)


# -- row helpers -----------------------------------------------------------------------------
# Indices that numba cannot prove non-negative get a wraparound select per access, which keeps
# LLVM from vectorising (measured: depthwise forward 3.7x slower). The helpers below index with
# np.uintp where valid_range has already proved the index in bounds.
@jit(inline="always")
def _gather_row(src, dst, q0, q1, Q, sw, off):
    """dst[q] = src[q*sw + off] for q in [q0, q1), 0 elsewhere in [0, Q)."""
    for q in range(q0):
        dst[q] = 0
    if sw == 1:
        for q in range(q0, q1):
            dst[np.uintp(q)] = src[np.uintp(q + off)]
    else:
        for q in range(q0, q1):
            dst[np.uintp(q)] = src[np.uintp(q * sw + off)]
    for q in range(q1, Q):
        dst[np.uintp(q)] = 0


@jit(inline="always")
def _scatter_add_row(src, dst, q0, q1, sw, off):
    """dst[q*sw + off] += src[q] for q in [q0, q1)."""
    if sw == 1:
        for q in range(q0, q1):
            dst[np.uintp(q + off)] += src[np.uintp(q)]
    else:
        for q in range(q0, q1):
            dst[np.uintp(q * sw + off)] += src[np.uintp(q)]


@jit(inline="always")
def _axpy_row(src, dst, q0, q1, sw, off, a):
    """dst[q] += src[q*sw + off] * a for q in [q0, q1)."""
    if sw == 1:
        for q in range(q0, q1):
            dst[np.uintp(q)] += src[np.uintp(q + off)] * a
    else:
        for q in range(q0, q1):
            dst[np.uintp(q)] += src[np.uintp(q * sw + off)] * a


@jit(inline="always")
def _axpy_scatter_row(src, dst, q0, q1, sw, off, a):
    """dst[q*sw + off] += src[q] * a for q in [q0, q1)."""
    if sw == 1:
        for q in range(q0, q1):
            dst[np.uintp(q + off)] += src[np.uintp(q)] * a
    else:
        for q in range(q0, q1):
            dst[np.uintp(q * sw + off)] += src[np.uintp(q)] * a


# -- kernels ---------------------------------------------------------------------------------
@pjit
def _im2col(x, col, n0, nc, geom):
    """col[g, (c*R + r)*S + s, n*P*Q + p*Q + q] = x_pad[n0 + n, g*Cg + c, p*sh + r*dh, q*sw + s*dw]
    for the nc images from n0; zeros where the tap falls in the padding."""
    G, Cg, R, S, P, Q, sh, sw, pt, pl, dh, dw = geom
    H, W = x.shape[2], x.shape[3]
    rows = G * Cg * R * S
    for task in prange(rows * nc):
        row = task // nc
        n = task - row * nc
        g = row // (Cg * R * S)
        crs = row - g * (Cg * R * S)
        c = crs // (R * S)
        r = (crs // S) % R
        s = crs % S
        plane = x[n0 + n, g * Cg + c]
        out = col[g, crs, n * P * Q:(n + 1) * P * Q]
        off_w = s * dw - pl
        q0, q1 = valid_range(Q, sw, off_w, W)
        for p in range(P):
            dst = out[p * Q:(p + 1) * Q]
            h = p * sh - pt + r * dh
            if h < 0 or h >= H:
                for q in range(Q):
                    dst[q] = 0
            else:
                _gather_row(plane[h], dst, q0, q1, Q, sw, off_w)


@pjit
def _col2im(dcol, dx, n0, nc, geom):
    """dx[n0 + n, c] = sum over the taps (r, s) and outputs (p, q) that read each pixel of
    dcol[g, (c*R + r)*S + s, n*P*Q + p*Q + q]. One task per (n, c) plane: no two tasks write the
    same element, and each adds its terms in a fixed order."""
    G, Cg, R, S, P, Q, sh, sw, pt, pl, dh, dw = geom
    H, W = dx.shape[2], dx.shape[3]
    C = G * Cg
    for task in prange(nc * C):
        n = task // C
        ch = task - n * C
        g = ch // Cg
        c = ch - g * Cg
        plane = dx[n0 + n, ch]
        for h in range(H):
            prow = plane[h]
            for w in range(W):
                prow[w] = 0
        for r in range(R):
            for s in range(S):
                src = dcol[g, (c * R + r) * S + s, n * P * Q:(n + 1) * P * Q]
                off_w = s * dw - pl
                q0, q1 = valid_range(Q, sw, off_w, W)
                for p in range(P):
                    h = p * sh - pt + r * dh
                    if h < 0 or h >= H:
                        continue
                    _scatter_add_row(src[p * Q:(p + 1) * Q], plane[h], q0, q1, sw, off_w)


@pjit
def _wide_to_nkl(yw, y, n0, nc, b, has_bias):
    """y[n0 + n, k, l] = yw[k, n*L + l] (+ b[k]): GEMM output (K, Nc*L) back to (N, K, L)."""
    K, L = y.shape[1], y.shape[2]
    for task in prange(nc * K):
        n = task // K
        k = task - n * K
        src = yw[k, n * L:(n + 1) * L]
        dst = y[n0 + n, k]
        if has_bias:
            bk = b[k]
            for i in range(L):
                dst[i] = src[i] + bk
        else:
            for i in range(L):
                dst[i] = src[i]


@pjit
def _nkl_to_wide(dy, dyw, n0, nc):
    """dyw[k, n*L + l] = dy[n0 + n, k, l]: (N, K, L) to the GEMM layout (K, Nc*L)."""
    K, L = dy.shape[1], dy.shape[2]
    for task in prange(nc * K):
        n = task // K
        k = task - n * K
        src = dy[n0 + n, k]
        dst = dyw[k, n * L:(n + 1) * L]
        for i in range(L):
            dst[i] = src[i]


@pjit
def _add_bias(y, b):
    """y[n, k, :] += b[k] for y (N, K, L)."""
    N, K, L = y.shape
    for task in prange(N * K):
        n = task // K
        k = task - n * K
        row = y[n, k]
        bk = b[k]
        for i in range(L):
            row[i] += bk


@pjit
def _bias_grad(dy, db):
    """db[k] = sum of dy[:, k, :] over N and L (float64 partial sums, one task per k)."""
    N, K, L = dy.shape
    for k in prange(K):
        acc = 0.0
        for n in range(N):
            acc += row_sum64(dy[n, k], 0, L)
        db[k] = acc


@pjit
def _depthwise_forward(x, w, y, b, has_bias, geom):
    """y[n, k] for k = c*M + j (M output channels per input channel c): sum over (r, s) of the
    strided window of x[n, c] times w[k, 0, r, s], taps added in row-major order (as the
    reference), then the bias. One task per (n, k) plane, one output row at a time."""
    R, S, sh, sw, pt, pl, dh, dw = geom
    N, K, P, Q = y.shape
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    M = K // C
    for task in prange(N * K):
        n = task // K
        k = task - n * K
        src = x[n, k // M]
        out = y[n, k]
        wk = w[k, 0]
        for p in range(P):
            row = out[p]
            for q in range(Q):
                row[q] = 0
            for r in range(R):
                h = p * sh - pt + r * dh
                if h < 0 or h >= H:
                    continue
                for s in range(S):
                    off_w = s * dw - pl
                    q0, q1 = valid_range(Q, sw, off_w, W)
                    _axpy_row(src[h], row, q0, q1, sw, off_w, wk[r, s])
            if has_bias:
                bk = b[k]
                for q in range(Q):
                    row[q] += bk


@pjit
def _depthwise_backward_data(dy, w, dx, geom):
    """dx[n, c] = sum over its M output channels k and the taps (r, s) of dy[n, k] times
    w[k, 0, r, s], scattered onto the pixels each tap read. One task per (n, c) plane."""
    R, S, sh, sw, pt, pl, dh, dw = geom
    N, K, P, Q = dy.shape
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    M = K // C
    for task in prange(N * C):
        n = task // C
        c = task - n * C
        plane = dx[n, c]
        for h in range(H):
            prow = plane[h]
            for x_ in range(W):
                prow[x_] = 0
        for j in range(M):
            k = c * M + j
            g = dy[n, k]
            wk = w[k, 0]
            for r in range(R):
                for s in range(S):
                    off_w = s * dw - pl
                    q0, q1 = valid_range(Q, sw, off_w, W)
                    wv = wk[r, s]
                    for p in range(P):
                        h = p * sh - pt + r * dh
                        if h < 0 or h >= H:
                            continue
                        _axpy_scatter_row(g[p], plane[h], q0, q1, sw, off_w, wv)


@jit(inline="always")
def _mul_add_row(a, b, acc, q0, q1, sw, off):
    """acc[q] += a[q] * b[q*sw + off] for q in [q0, q1): element-wise, so it vectorises (a dot
    product would be one serial chain of adds)."""
    if sw == 1:
        for q in range(q0, q1):
            acc[np.uintp(q)] += a[np.uintp(q)] * b[np.uintp(q + off)]
    else:
        for q in range(q0, q1):
            acc[np.uintp(q)] += a[np.uintp(q)] * b[np.uintp(q * sw + off)]


@pjit
def _depthwise_backward_weight(dy, x, dw_out, geom):
    """dw[k, 0, r, s] = sum over n, p, q of dy[n, k, p, q] * x_pad[n, c, p*sh + r*dh, q*sw + s*dw].
    One task per k. Products are summed per column q over the P rows of one image in the input
    dtype (a (R*S, Q) buffer), then each image's total goes into a float64 accumulator."""
    R, S, sh, sw, pt, pl, dh, dw = geom
    N, K, P, Q = dy.shape
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    M = K // C
    for k in prange(K):
        c = k // M
        acc = np.zeros(R * S, dtype=np.float64)
        cols = np.empty((R * S, Q), dtype=dy.dtype)
        for n in range(N):
            g = dy[n, k]
            src = x[n, c]
            for i in range(R * S):
                crow = cols[i]
                for q in range(Q):
                    crow[q] = 0
            for r in range(R):
                for p in range(P):
                    h = p * sh - pt + r * dh
                    if h < 0 or h >= H:
                        continue
                    for s in range(S):
                        off_w = s * dw - pl
                        q0, q1 = valid_range(Q, sw, off_w, W)
                        _mul_add_row(g[p], src[h], cols[r * S + s], q0, q1, sw, off_w)
            for i in range(R * S):
                acc[i] += row_sum64(cols[i], 0, Q)
        for i in range(R * S):
            dw_out[k, 0, i // S, i % S] = acc[i]


# -- algorithm choice ----------------------------------------------------------------------
def _is_depthwise(C, K, groups):
    return groups == C and K % C == 0


def _choose(algo, C, K, p):
    """The algorithm that runs: ``algo`` if it can, else im2col_gemm (see the module docstring)."""
    if algo not in ALGORITHMS and algo != "auto":
        raise ValueError(f"numba conv2d: unknown algo {algo!r}; available: "
                         f"{('auto',) + ALGORITHMS}")
    depthwise = _is_depthwise(C, K, p.groups)
    if algo == "direct_depthwise" and depthwise:
        return "direct_depthwise"
    if algo == "auto" and depthwise and p.groups > 1:
        return "direct_depthwise"
    return "im2col_gemm"


def _is_pointwise(R, S, p):
    return (R == 1 and S == 1 and p.stride_h == 1 and p.stride_w == 1 and p.pad_top == 0
            and p.pad_bottom == 0 and p.pad_left == 0 and p.pad_right == 0)


def _geom(C, R, S, P, Q, p):
    G = p.groups
    return (G, C // G, R, S, P, Q, p.stride_h, p.stride_w, p.pad_top, p.pad_left,
            p.dilation_h, p.dilation_w)


def _direct_geom(R, S, p):
    return (R, S, p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.dilation_h, p.dilation_w)


def _chunks(N, rows, L):
    """(n0, nc) chunks of the batch whose column matrix (rows x nc*L) fits COL_BUDGET."""
    nc = max(1, min(N, COL_BUDGET // max(1, rows * L)))
    return [(n0, min(nc, N - n0)) for n0 in range(0, N, nc)]


def _no_bias(dtype):
    return np.empty(0, dtype=dtype)


# -- kernels of the interface --------------------------------------------------------------
@threaded
def conv2d_forward(x, w, b, p, algo="auto"):
    """y (N,K,P,Q) = conv2d of x (N,C,H,W) with w (K,C/G,R,S), plus b (K,) or None."""
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    G = p.groups
    P, Q = p.output_hw(H, W, R, S)
    y = new_output((N, K, P, Q), x.dtype)
    bias = _no_bias(x.dtype) if b is None else b
    if _choose(algo, C, K, p) == "direct_depthwise":
        _depthwise_forward(x, w, y, bias, b is not None, _direct_geom(R, S, p))
        return y
    beside_blas()
    w3 = w.reshape(G, K // G, Cg * R * S)
    if _is_pointwise(R, S, p):
        np.matmul(w3, x.reshape(N, G, Cg, H * W), out=y.reshape(N, G, K // G, P * Q))
        if b is not None:
            _add_bias(y.reshape(N, K, P * Q), b)
        return y
    geom = _geom(C, R, S, P, Q, p)
    y3 = y.reshape(N, K, P * Q)
    for n0, nc in _chunks(N, C * R * S, P * Q):
        col = np.empty((G, Cg * R * S, nc * P * Q), dtype=x.dtype)
        _im2col(x, col, n0, nc, geom)
        yw = np.matmul(w3, col)                                  # (G, K/G, nc*P*Q)
        _wide_to_nkl(yw.reshape(K, nc * P * Q), y3, n0, nc, bias, b is not None)
    return y


@threaded
def conv2d_backward_data(dy, w, x_shape, p, algo="auto"):
    """dx (x_shape) given dy (N,K,P,Q) and w (K,C/G,R,S); padding gets no gradient."""
    N, C, H, W = x_shape
    K, Cg, R, S = w.shape
    G = p.groups
    P, Q = dy.shape[2], dy.shape[3]
    dx = new_output((N, C, H, W), dy.dtype)
    if _choose(algo, C, K, p) == "direct_depthwise":
        _depthwise_backward_data(dy, w, dx, _direct_geom(R, S, p))
        return dx
    beside_blas()
    wT = w.reshape(G, K // G, Cg * R * S).transpose(0, 2, 1)      # (G, Cg*R*S, K/G)
    if _is_pointwise(R, S, p):
        np.matmul(wT, dy.reshape(N, G, K // G, P * Q), out=dx.reshape(N, G, Cg, H * W))
        return dx
    geom = _geom(C, R, S, P, Q, p)
    dy3 = dy.reshape(N, K, P * Q)
    for n0, nc in _chunks(N, C * R * S, P * Q):
        dyw = np.empty((K, nc * P * Q), dtype=dy.dtype)
        _nkl_to_wide(dy3, dyw, n0, nc)
        dcol = np.matmul(wT, dyw.reshape(G, K // G, nc * P * Q))  # (G, Cg*R*S, nc*P*Q)
        _col2im(dcol, dx, n0, nc, geom)
    return dx


@threaded
def conv2d_backward_weight(dy, x, w_shape, p, algo="auto"):
    """dw (w_shape) given dy (N,K,P,Q) and x (N,C,H,W)."""
    N, C, H, W = x.shape
    K, Cg, R, S = w_shape
    G = p.groups
    P, Q = dy.shape[2], dy.shape[3]
    dw = new_output((K, Cg, R, S), dy.dtype)
    if _choose(algo, C, K, p) == "direct_depthwise":
        _depthwise_backward_weight(dy, x, dw, _direct_geom(R, S, p))
        return dw
    beside_blas()
    dw3 = dw.reshape(G, K // G, Cg * R * S)
    geom = _geom(C, R, S, P, Q, p)
    dy3 = dy.reshape(N, K, P * Q)
    for i, (n0, nc) in enumerate(_chunks(N, C * R * S, P * Q)):
        col = np.empty((G, Cg * R * S, nc * P * Q), dtype=x.dtype)
        _im2col(x, col, n0, nc, geom)
        dyw = np.empty((K, nc * P * Q), dtype=dy.dtype)
        _nkl_to_wide(dy3, dyw, n0, nc)
        dyw3 = dyw.reshape(G, K // G, nc * P * Q)
        if i == 0:
            np.matmul(dyw3, col.transpose(0, 2, 1), out=dw3)
        else:
            dw3 += np.matmul(dyw3, col.transpose(0, 2, 1))
    return dw


@threaded
def conv2d_backward_bias(dy):
    """db (K,) = dy (N,K,P,Q) summed over N, P and Q."""
    N, K = dy.shape[0], dy.shape[1]
    db = new_output((K,), dy.dtype)
    _bias_grad(dy.reshape(N, K, -1), db)
    return db
