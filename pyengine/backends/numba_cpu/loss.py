"""numba loss kernels: fused cross-entropy, NLL, MSE and smooth L1, forward and backward.

Shape letters: M rows, C classes. Classification kernels see logits / log-probabilities (M, C)
and class-index targets int64 (M,) or probability targets (M, C); element-wise losses see x and
target of one shape, flattened here to (E,) elements.

The weighting, smoothing, ignore_index and reduction rules are numpy_ref/loss.py's, restated
where they are used. As in the reference, every per-row quantity (log-sum-exp, row losses, the
softmax of the backward) is computed in float64 whatever the input dtype, and cast back only at
the end. Reductions over rows add per-row results in row order, serially, so they do not depend
on the thread count. A weight of None reaches the kernels as an empty array with a flag, and
'none' / 'sum' / 'mean' as the codes of ``_REDUCTIONS``.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..base import new_output
from ._common import BLOCK, fast_exp, jit, pjit, row_max, row_sum64, threaded

_REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}


# -- shared row math -----------------------------------------------------------------------
ROWS = 32   # rows per parallel task: one scratch row serves them all


@jit(inline="always")
def _row_softmax64(row, e):
    """e[c] = exp(row[c] - max) in float64; returns (log-sum-exp, sum of e). The exp loop has no
    reduction in it, so it vectorises; the sum then runs on eight accumulators."""
    C = row.shape[0]
    m = np.float64(row_max(row, 0, C))
    for c in range(C):
        e[c] = fast_exp(np.float64(row[c]) - m)
    s = row_sum64(e, 0, C)
    return m + np.log(s), s


@jit
def _class_weights(target, weight, has_weight, ignore_index):
    """float64 (M,) weight of each row's target class, 0 for ignored rows."""
    M = target.shape[0]
    w_t = np.empty(M, dtype=np.float64)
    for r in range(M):
        t = target[r]
        if t == ignore_index:
            w_t[r] = 0.0
        elif has_weight:
            w_t[r] = weight[t]
        else:
            w_t[r] = 1.0
    return w_t


@jit
def _reduce(rows, reduction, denominator, out):
    """out[...] = sum or mean of rows (float64, in row order), or rows themselves ('none')."""
    if reduction == 0:
        for r in range(rows.shape[0]):
            out[r] = rows[r]
        return
    total = 0.0
    for r in range(rows.shape[0]):
        total += rows[r]
    if reduction == 2:
        total = total / denominator
    out[0] = total


@jit
def _upstream(dloss, reduction, denominator, M):
    """float64 (M,) derivative of the reduced loss with respect to each row's loss."""
    g = np.empty(M, dtype=np.float64)
    for r in range(M):
        g[r] = dloss[r] if reduction == 0 else dloss[0]
        if reduction == 2:
            g[r] = g[r] / denominator
    return g


# -- cross-entropy -------------------------------------------------------------------------
@pjit
def _ce_index_forward(logits, target, weight, has_weight, w_t, ignore_index, ls, rows, lse):
    """rows[r] = w_t * (lse - x[t]), mixed when smoothing with the uniform term:
    (1 - ls) * that + (ls / C) * sum_c w[c] (lse - x[c]); 0 on ignored rows. lse[r]: the row's
    log-sum-exp."""
    M, C = logits.shape
    for blk in prange((M + ROWS - 1) // ROWS):
        e = np.empty(C, dtype=np.float64)
        for r in range(blk * ROWS, min(M, (blk + 1) * ROWS)):
            row = logits[r]
            z, _ = _row_softmax64(row, e)
            lse[r] = z
            t = target[r]
            if t == ignore_index:
                rows[r] = 0.0
                continue
            loss = w_t[r] * (z - row[t])
            if ls > 0.0:
                smooth = 0.0
                for c in range(C):
                    wc = weight[c] if has_weight else 1.0
                    smooth += wc * (z - row[c])
                loss = (1.0 - ls) * loss + (ls / C) * smooth
            rows[r] = loss


@jit(inline="always")
def _smoothed(trow, weight, has_weight, ls, a):
    """a[c] = w[c] * t'[c], t' = (1 - ls) t + ls / C (float64); returns sum_c a[c]."""
    C = trow.shape[0]
    A = 0.0
    for c in range(C):
        t = np.float64(trow[c])
        if ls > 0.0:
            t = t * (1.0 - ls) + ls / C
        if has_weight:
            t = t * weight[c]
        a[c] = t
        A += t
    return A


@pjit
def _ce_prob_forward(logits, target, weight, has_weight, ls, rows, lse):
    """rows[r] = sum_c w[c] t'[c] (lse - x[c])."""
    M, C = logits.shape
    for blk in prange((M + ROWS - 1) // ROWS):
        e = np.empty(C, dtype=np.float64)
        a = np.empty(C, dtype=np.float64)
        for r in range(blk * ROWS, min(M, (blk + 1) * ROWS)):
            row = logits[r]
            z, _ = _row_softmax64(row, e)
            lse[r] = z
            _smoothed(target[r], weight, has_weight, ls, a)
            loss = 0.0
            for c in range(C):
                loss += a[c] * (z - row[c])
            rows[r] = loss


@pjit
def _ce_index_backward(logits, target, weight, has_weight, w_sum, g, ignore_index, ls, dlogits):
    """dlogits[r, c] = g[r] * (softmax[c] * A - a[c]), a[c] the coefficient of -logp[c] in the
    row's loss: (1 - ls) w_t [c == t] + (ls / C) w[c] (the second term only when smoothing),
    A = sum_c a[c]. Ignored rows have g = 0 and w_t = 0."""
    M, C = logits.shape
    for blk in prange((M + ROWS - 1) // ROWS):
        e = np.empty(C, dtype=np.float64)
        for r in range(blk * ROWS, min(M, (blk + 1) * ROWS)):
            row = logits[r]
            out = dlogits[r]
            _, s = _row_softmax64(row, e)
            t = target[r]
            w_t = 0.0
            if t != ignore_index:
                w_t = weight[t] if has_weight else 1.0
            else:
                t = -1                       # matches no class below
            a_t = (1.0 - ls) * w_t
            A = a_t + ((ls / C) * w_sum if ls > 0.0 else 0.0)
            gr = g[r]
            scale = A / s
            if ls > 0.0:
                u = ls / C
                for c in range(C):
                    wc = weight[c] if has_weight else 1.0
                    out[c] = gr * (e[c] * scale - u * wc)
            else:
                for c in range(C):
                    out[c] = gr * (e[c] * scale)
            if t >= 0:
                a_tt = a_t
                if ls > 0.0:
                    a_tt += (ls / C) * (weight[t] if has_weight else 1.0)
                out[t] = gr * (e[t] * scale - a_tt)


@pjit
def _ce_prob_backward(logits, target, weight, has_weight, g, ls, dlogits):
    """dlogits[r, c] = g[r] * (softmax[c] * A - a[c]) with a[c] = w[c] t'[c]."""
    M, C = logits.shape
    for blk in prange((M + ROWS - 1) // ROWS):
        e = np.empty(C, dtype=np.float64)
        a = np.empty(C, dtype=np.float64)
        for r in range(blk * ROWS, min(M, (blk + 1) * ROWS)):
            row = logits[r]
            out = dlogits[r]
            _, s = _row_softmax64(row, e)
            A = _smoothed(target[r], weight, has_weight, ls, a)
            gr = g[r]
            scale = A / s
            for c in range(C):
                out[c] = gr * (e[c] * scale - a[c])


# -- NLL -------------------------------------------------------------------------------------
@jit
def _nll_rows(logp, target, w_t, ignore_index, rows):
    """rows[r] = -logp[r, t] * w_t (float64), 0 on ignored rows."""
    for r in range(logp.shape[0]):
        t = target[r]
        rows[r] = 0.0 if t == ignore_index else -np.float64(logp[r, t]) * w_t[r]


@pjit
def _nll_backward(target, w_t, g, ignore_index, dlogp):
    """dlogp (M, C): -g[r] * w_t at (r, t), zero elsewhere and on ignored rows."""
    M, C = dlogp.shape
    for r in prange(M):
        out = dlogp[r]
        for c in range(C):
            out[c] = 0
        t = target[r]
        if t != ignore_index:
            out[t] = -g[r] * w_t[r]


# -- element-wise losses ---------------------------------------------------------------------
@jit(inline="always")
def _pointwise(d, kind, beta):
    """Loss of one difference d (float64): kind 0 MSE, 1 smooth L1."""
    if kind == 0:
        return d * d
    ad = abs(d)
    if beta == 0.0:
        return ad
    if ad < beta:
        return 0.5 * d * d / beta
    return ad - 0.5 * beta


@jit(inline="always")
def _pointwise_slope(d, kind, beta):
    """d(loss)/dd for one difference (float64); smooth L1's slope at 0 is 0, NaN stays NaN."""
    if kind == 0:
        return 2.0 * d
    if beta == 0.0:
        if d > 0.0:
            return 1.0
        if d < 0.0:
            return -1.0
        return d * 0.0          # 0 for d == 0, NaN for NaN
    if d < -beta:
        return -1.0
    if d > beta:
        return 1.0
    return d / beta


# The element-wise kernels work on fixed blocks of BLOCK elements, one task each, through 1-d
# slices (loop indices from 0 spare numba's negative-index test).
@pjit
def _pointwise_none(x, t, kind, beta, out):
    """out[e] = loss of x[e] - t[e] (cast to out's dtype)."""
    E = x.shape[0]
    for b in prange((E + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(E, (b + 1) * BLOCK)
        xs, ts, os_ = x[lo:hi], t[lo:hi], out[lo:hi]
        for e in range(hi - lo):
            os_[e] = _pointwise(np.float64(xs[e]) - np.float64(ts[e]), kind, beta)


@pjit
def _pointwise_partials(x, t, kind, beta, partial):
    """partial[b] = float64 sum of the losses in block b: the blocks are fixed, so the final
    serial sum of the partials does not depend on the thread count."""
    E = x.shape[0]
    for b in prange(partial.shape[0]):
        lo, hi = b * BLOCK, min(E, (b + 1) * BLOCK)
        xs, ts = x[lo:hi], t[lo:hi]
        s = 0.0
        for e in range(hi - lo):
            s += _pointwise(np.float64(xs[e]) - np.float64(ts[e]), kind, beta)
        partial[b] = s


@pjit
def _pointwise_backward(dloss, per_element, denominator, x, t, kind, beta, dx):
    """dx[e] = slope(x[e] - t[e]) * upstream; upstream = dloss[e] ('none') or
    dloss[0] / denominator (denominator 1 for 'sum', the element count for 'mean')."""
    E = x.shape[0]
    g0 = np.float64(dloss[0]) / denominator
    for b in prange((E + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(E, (b + 1) * BLOCK)
        xs, ts, ds = x[lo:hi], t[lo:hi], dx[lo:hi]
        gs = dloss[lo:hi] if per_element else dloss[0:1]
        for e in range(hi - lo):
            g = np.float64(gs[e]) if per_element else g0
            ds[e] = _pointwise_slope(np.float64(xs[e]) - np.float64(ts[e]), kind, beta) * g


# -- kernels of the interface --------------------------------------------------------------
def _weight_args(weight, dtype):
    if weight is None:
        return np.empty(0, dtype=dtype), False
    return weight, True


def _loss_output(rows, reduction, denominator, dtype):
    """The loss array of the interface: (M,) for 'none', else 0-d, in ``dtype``."""
    code = _REDUCTIONS[reduction]
    out64 = np.empty(rows.shape[0] if code == 0 else 1, dtype=np.float64)
    _reduce(rows, code, float(denominator), out64)
    loss = new_output(rows.shape if code == 0 else (), dtype)
    loss[...] = out64 if code == 0 else out64[0]
    return loss


@threaded
def cross_entropy_forward(logits, target, weight, p):
    """Fused log-softmax + NLL of logits (M,C) -> (loss, lse); numpy_ref's rules."""
    M, C = logits.shape
    w, has_w = _weight_args(weight, logits.dtype)
    rows = np.empty(M, dtype=np.float64)
    lse64 = np.empty(M, dtype=np.float64)
    ls = float(p.label_smoothing)
    if target.ndim == 2:
        _ce_prob_forward(logits, target, w, has_w, ls, rows, lse64)
        denominator = M
    else:
        w_t = _class_weights(target, w, has_w, p.ignore_index)
        _ce_index_forward(logits, target, w, has_w, w_t, p.ignore_index, ls, rows, lse64)
        denominator = w_t.sum()
    lse = new_output((M,), logits.dtype)
    lse[...] = lse64
    return _loss_output(rows, p.reduction, denominator, logits.dtype), lse


@threaded
def cross_entropy_backward(dloss, logits, target, weight, lse, p):
    """dlogits (M,C); the softmax is recomputed in float64 from the logits (``lse`` in the
    input's dtype is too coarse for logits near 1e4, as the reference explains)."""
    del lse
    M, C = logits.shape
    w, has_w = _weight_args(weight, logits.dtype)
    code = _REDUCTIONS[p.reduction]
    ls = float(p.label_smoothing)
    dl = dloss.reshape(-1)
    dlogits = new_output((M, C), logits.dtype)
    if target.ndim == 2:
        g = _upstream(dl, code, float(M), M)
        _ce_prob_backward(logits, target, w, has_w, g, ls, dlogits)
    else:
        w_t = _class_weights(target, w, has_w, p.ignore_index)
        g = _upstream(dl, code, float(w_t.sum()), M)
        g[target == p.ignore_index] = 0.0
        w_sum = float(w.astype(np.float64).sum()) if has_w else float(C)
        _ce_index_backward(logits, target, w, has_w, w_sum, g, p.ignore_index, ls, dlogits)
    return dlogits


@threaded
def nll_loss_forward(logp, target, weight, p):
    """-logp[r, target[r]] * weight[target[r]], reduced; logp (M,C), target int64 (M,)."""
    w, has_w = _weight_args(weight, logp.dtype)
    w_t = _class_weights(target, w, has_w, p.ignore_index)
    rows = np.empty(logp.shape[0], dtype=np.float64)
    _nll_rows(logp, target, w_t, p.ignore_index, rows)
    return _loss_output(rows, p.reduction, w_t.sum(), logp.dtype)


@threaded
def nll_loss_backward(dloss, target, weight, input_shape, p):
    """dlogp (input_shape)."""
    M, C = input_shape
    w, has_w = _weight_args(weight, dloss.dtype)
    w_t = _class_weights(target, w, has_w, p.ignore_index)
    g = _upstream(dloss.reshape(-1), _REDUCTIONS[p.reduction], float(w_t.sum()), M)
    dlogp = new_output((M, C), dloss.dtype)
    _nll_backward(target, w_t, g, p.ignore_index, dlogp)
    return dlogp


def _pointwise_forward(x, target, p, kind):
    xf, tf = x.reshape(-1), target.reshape(-1)
    beta = float(p.beta)
    if p.reduction == "none":
        out = new_output(x.shape, x.dtype)
        _pointwise_none(xf, tf, kind, beta, out.reshape(-1))
        return out
    partial = np.empty((xf.shape[0] + BLOCK - 1) // BLOCK, dtype=np.float64)
    _pointwise_partials(xf, tf, kind, beta, partial)
    return _loss_output(partial, "sum" if p.reduction == "sum" else "mean",
                        xf.shape[0], x.dtype)


def _pointwise_grad(dloss, x, target, p, kind):
    xf, tf = x.reshape(-1), target.reshape(-1)
    denominator = float(xf.shape[0]) if p.reduction == "mean" else 1.0
    dx = new_output(x.shape, x.dtype)
    _pointwise_backward(dloss.reshape(-1), p.reduction == "none", denominator, xf, tf, kind,
                        float(p.beta), dx.reshape(-1))
    return dx


@threaded
def mse_loss_forward(x, target, p):
    """(x - target)^2, reduced ('mean' over all elements)."""
    return _pointwise_forward(x, target, p, 0)


@threaded
def mse_loss_backward(dloss, x, target, p):
    """dx = 2 (x - target) * dloss (divided by the element count for 'mean')."""
    return _pointwise_grad(dloss, x, target, p, 0)


@threaded
def smooth_l1_loss_forward(x, target, p):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (beta 0: L1), reduced."""
    return _pointwise_forward(x, target, p, 1)


@threaded
def smooth_l1_loss_backward(dloss, x, target, p):
    """dx = clamp(d / beta, -1, 1) * dloss (sign(d) for beta 0)."""
    return _pointwise_grad(dloss, x, target, p, 1)
