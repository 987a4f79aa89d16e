"""Reference 2-d convolution (cross-correlation, NCHW) and its three gradients, in numpy.

Shape letters: N batch, C input channels, K output channels, G groups, H W input plane,
R S kernel, P Q output plane. A group g sees input channels [g*C/G, (g+1)*C/G) and produces
output channels [g*K/G, (g+1)*K/G); the weight is (K, C/G, R, S).

Every kernel loops over the R*S kernel positions. For one position (r, s) the input pixels that
meet w[:, :, r, s] form a strided slice of the zero-padded input,

    x_pad[:, :, r*dh : r*dh + (P-1)*sh + 1 : sh, s*dw : s*dw + (Q-1)*sw + 1 : sw]   (N, C, P, Q)

and the work at that position is a contraction over channels inside each group (einsum). The
slice ends at the last row an output actually reads, so input rows that no window reaches (when
(H + pads - d(R-1) - 1) is not a multiple of the stride) are simply never touched: they get no
gradient, as in PyTorch. ``algo`` is accepted for the interface and ignored: the reference has
one algorithm, 'direct'.
"""
from __future__ import annotations

import numpy as np

from ..base import new_output


def _tap(r: int, s: int, P: int, Q: int, p) -> tuple:
    """Index of the (P, Q) strided window of the padded plane that kernel position (r, s) reads."""
    h0 = r * p.dilation_h
    w0 = s * p.dilation_w
    return (Ellipsis, slice(h0, h0 + (P - 1) * p.stride_h + 1, p.stride_h),
            slice(w0, w0 + (Q - 1) * p.stride_w + 1, p.stride_w))


def _pad(x, p):
    """x (N, C, H, W) with zeros added on each side per the params."""
    return np.pad(x, ((0, 0), (0, 0), (p.pad_top, p.pad_bottom), (p.pad_left, p.pad_right)))


def _grouped(a, G: int):
    """(N, C, ...) viewed as (N, G, C/G, ...)."""
    return a.reshape(a.shape[0], G, a.shape[1] // G, *a.shape[2:])


def conv2d_forward(x, w, b, p, algo="auto"):
    """y (N,K,P,Q) = sum over c, r, s of x_pad[n, g*C/G + c, p*sh + r*dh, q*sw + s*dw] * w[k,c,r,s]
    plus b[k]. x: (N,C,H,W), w: (K,C/G,R,S), b: (K,) or None. ``algo`` is ignored.
    """
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    G = p.groups
    P, Q = p.output_hw(H, W, R, S)
    xg = _grouped(_pad(x, p), G)                        # (N, G, C/G, Hp, Wp)
    wg = w.reshape(G, K // G, *w.shape[1:])             # (G, K/G, C/G, R, S)
    y = np.zeros((N, G, K // G, P, Q), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            patch = xg[_tap(r, s, P, Q, p)]             # (N, G, C/G, P, Q)
            y += np.einsum("ngcpq,gkc->ngkpq", patch, wg[..., r, s], optimize=True)
    out = new_output((N, K, P, Q), x.dtype)
    out[...] = y.reshape(N, K, P, Q)
    if b is not None:
        out += b.reshape(1, K, 1, 1)
    return out


def conv2d_backward_data(dy, w, x_shape, p, algo="auto"):
    """dx (x_shape) of conv2d_forward: each tap scatters dy * w back onto its strided window of
    the padded input; the padding is cropped off at the end (padding gets no gradient).
    dy: (N,K,P,Q), w: (K,C/G,R,S). ``algo`` is ignored.
    """
    N, C, H, W = x_shape
    K, _, R, S = w.shape
    G = p.groups
    P, Q = dy.shape[2], dy.shape[3]
    Hp = H + p.pad_top + p.pad_bottom
    Wp = W + p.pad_left + p.pad_right
    dyg = _grouped(dy, G)                               # (N, G, K/G, P, Q)
    wg = w.reshape(G, K // G, *w.shape[1:])             # (G, K/G, C/G, R, S)
    dx_pad = np.zeros((N, G, C // G, Hp, Wp), dtype=dy.dtype)
    for r in range(R):
        for s in range(S):
            # Within one tap the strided window has no repeated element, so += is exact.
            dx_pad[_tap(r, s, P, Q, p)] += np.einsum("ngkpq,gkc->ngcpq", dyg, wg[..., r, s],
                                                     optimize=True)
    dx = new_output((N, C, H, W), dy.dtype)
    dx[...] = dx_pad.reshape(N, C, Hp, Wp)[:, :, p.pad_top:p.pad_top + H,
                                           p.pad_left:p.pad_left + W]
    return dx


def conv2d_backward_weight(dy, x, w_shape, p, algo="auto"):
    """dw (w_shape) of conv2d_forward: dw[k,c,r,s] = sum over n, p, q of dy[n,k,p,q] times the
    input pixel that tap (r, s) read for output (p, q). dy: (N,K,P,Q), x: (N,C,H,W).
    ``algo`` is ignored.
    """
    K, Cg, R, S = w_shape
    G = p.groups
    P, Q = dy.shape[2], dy.shape[3]
    xg = _grouped(_pad(x, p), G)                        # (N, G, C/G, Hp, Wp)
    dyg = _grouped(dy, G)                               # (N, G, K/G, P, Q)
    dw = new_output((G, K // G, Cg, R, S), dy.dtype)
    for r in range(R):
        for s in range(S):
            dw[..., r, s] = np.einsum("ngkpq,ngcpq->gkc", dyg, xg[_tap(r, s, P, Q, p)],
                                      optimize=True)
    return dw.reshape(K, Cg, R, S)


def conv2d_backward_bias(dy):
    """db (K,) = dy (N,K,P,Q) summed over N, P and Q."""
    db = new_output((dy.shape[1],), dy.dtype)
    db[...] = dy.sum(axis=(0, 2, 3))
    return db
