"""Reference loss kernels: cross-entropy (fused log-softmax + NLL), NLL, MSE and smooth L1.

Shape letters: M rows (the batch and any spatial positions, flattened by ``functional``),
C classes. Classification kernels see logits / log-probabilities as (M, C) and class-index
targets as int64 (M,); element-wise losses see ``x`` and ``target`` already broadcast to one
shape. ``functional`` answers empty inputs itself, so every kernel here sees at least one
element (M >= 1 and C >= 1 for the classification kernels).

Weighting follows PyTorch exactly (``p`` is a :class:`pyengine.params.LossParams`):

- Class indices: row r with target t contributes ``w[t] * -logp[r, t]``; rows whose target is
  ``ignore_index`` contribute 0. With label smoothing ``ls`` a row's loss is
  ``(1 - ls) * w[t] * -logp[r, t] + (ls / C) * sum_c w[c] * -logp[r, c]``. 'mean' divides the
  sum by the total weight ``sum_r w[t_r]`` of the non-ignored rows (all ignored: 0/0 = NaN).
- Class probabilities (cross-entropy only): ``t' = (1 - ls) t + ls / C``; a row's loss is
  ``-sum_c w[c] t'[c] logp[c]``; 'mean' divides by M, not by any weight.

Every reduction and every log-sum-exp is computed in float64 and the result is cast back to
the input's dtype, so a float32 result carries little more than its final rounding error.
"""
from __future__ import annotations

import numpy as np


def _log_softmax64(logits):
    """(logp, lse) of each row in float64; subtracting the row max keeps logits of 1e4 finite."""
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    return x - lse, lse[:, 0]


def _reduce(rows, reduction, denominator):
    """Sum / mean / nothing of the per-row losses (float64); the mean divides by
    ``denominator`` and a zero denominator gives NaN, as in PyTorch."""
    if reduction == "none":
        return rows
    total = rows.sum()
    if reduction == "sum":
        return total
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.float64(total) / np.float64(denominator)


def _upstream(dloss, reduction, denominator):
    """d(reduced loss)/d(each row's or element's loss), float64: dloss itself for 'none' (an
    array), a 0-d value for 'sum', divided by ``denominator`` for 'mean' (0 gives inf/NaN, as
    in PyTorch)."""
    g = dloss.astype(np.float64)
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            g = g / np.float64(denominator)
    return g


def _class_index_weights(target, weight, p):
    """(valid, safe_target, w_t) for class-index targets: rows not equal to ``ignore_index``,
    the target with ignored rows pointed at class 0 so it can index, and the weight of each
    row's target class (0 on ignored rows)."""
    valid = target != p.ignore_index
    safe = np.where(valid, target, 0)
    w_t = np.ones(target.shape, dtype=np.float64) if weight is None \
        else weight.astype(np.float64)[safe]
    return valid, safe, np.where(valid, w_t, 0.0)


def _smoothed_probabilities(target, weight, p):
    """``w[c] * t'[c]`` (M, C) float64 for probability targets, t' the smoothed target."""
    t = target.astype(np.float64)
    if p.label_smoothing > 0.0:
        t = t * (1.0 - p.label_smoothing) + p.label_smoothing / t.shape[1]
    return t if weight is None else t * weight.astype(np.float64)


def cross_entropy_forward(logits, target, weight, p):
    """Fused log-softmax + NLL of logits (M,C) -> (loss, lse).

    target: int64 (M,) class indices or (M,C) probabilities; weight (C,) or None. loss: (M,) for
    reduction 'none', else 0-d; lse (M,): log-sum-exp of each row. Both in logits' dtype.
    """
    dtype = logits.dtype
    m, c = logits.shape
    logp, lse = _log_softmax64(logits)
    ls = p.label_smoothing
    if target.ndim == 2:
        rows = -(logp * _smoothed_probabilities(target, weight, p)).sum(axis=1)
        denominator = m
    else:
        valid, safe, w_t = _class_index_weights(target, weight, p)
        # np.where, not a product with 0: an ignored row contributes exactly 0 even when its
        # logits are -inf (masked classes), as in PyTorch.
        rows = np.where(valid, -logp[np.arange(m), safe] * w_t, 0.0)
        if ls > 0.0:
            # PyTorch adds the uniform term only when smoothing is on; computing it at ls=0
            # would turn a masked (-inf) logit into 0 * inf = NaN.
            w = np.ones(c) if weight is None else weight.astype(np.float64)
            smooth = np.where(valid, -(logp * w).sum(axis=1), 0.0)
            rows = (1.0 - ls) * rows + (ls / c) * smooth
        denominator = w_t.sum()
    loss = _reduce(rows, p.reduction, denominator)
    return np.asarray(loss, dtype=dtype), lse.astype(dtype)


def cross_entropy_backward(dloss, logits, target, weight, lse, p):
    """dlogits (M,C) of cross_entropy_forward; dloss is (M,) for 'none', else 0-d.

    With g the derivative of the loss w.r.t. each row's loss and ``a[c]`` the coefficient of
    ``-logp[c]`` in that row, dlogits = g * (softmax * sum_c a[c] - a).

    The reference recomputes the softmax from the logits in float64 instead of using ``lse``:
    a float32 lse of a row with logits near 1e4 is only good to about 5e-4 (its ulp), which
    would become a 5e-4 relative error in every gradient of that row.
    """
    del lse  # see the docstring
    dtype = logits.dtype
    m, c = logits.shape
    logp, _ = _log_softmax64(logits)
    ls = p.label_smoothing
    if target.ndim == 2:
        a = _smoothed_probabilities(target, weight, p)
        g = np.broadcast_to(_upstream(dloss, p.reduction, m), (m,))
    else:
        valid, safe, w_t = _class_index_weights(target, weight, p)
        a = np.zeros((m, c))
        a[np.arange(m), safe] = (1.0 - ls) * w_t
        if ls > 0.0:
            w = np.ones(c) if weight is None else weight.astype(np.float64)
            a += (ls / c) * w
        g = np.where(valid, _upstream(dloss, p.reduction, w_t.sum()), 0.0)
    dlogp = -g[:, None] * a
    dlogits = dlogp - np.exp(logp) * dlogp.sum(axis=1, keepdims=True)
    return dlogits.astype(dtype)


def nll_loss_forward(logp, target, weight, p):
    """-logp[r, target[r]] * weight[target[r]], reduced; logp (M,C), target int64 (M,).

    'mean' divides by the total weight of the non-ignored rows. Returns (M,) for 'none', else 0-d.
    """
    m = logp.shape[0]
    valid, safe, w_t = _class_index_weights(target, weight, p)
    picked = logp[np.arange(m), safe].astype(np.float64)
    rows = np.where(valid, -picked * w_t, 0.0)
    return np.asarray(_reduce(rows, p.reduction, w_t.sum()), dtype=logp.dtype)


def nll_loss_backward(dloss, target, weight, input_shape, p):
    """dlogp (input_shape): -g[r] * weight[target[r]] at (r, target[r]), zero elsewhere and on
    ignored rows."""
    m, c = input_shape
    valid, safe, w_t = _class_index_weights(target, weight, p)
    g = np.where(valid, _upstream(dloss, p.reduction, w_t.sum()), 0.0)
    dlogp = np.zeros((m, c), dtype=dloss.dtype)
    dlogp[np.arange(m), safe] = np.where(valid, -g * w_t, 0.0)
    return dlogp


def mse_loss_forward(x, target, p):
    """(x - target)^2, reduced ('mean' over all elements); x and target have the same shape."""
    d = x.astype(np.float64) - target
    return np.asarray(_reduce(d * d, p.reduction, d.size), dtype=x.dtype)


def mse_loss_backward(dloss, x, target, p):
    """dx = 2 (x - target) * dloss (divided by the element count for 'mean')."""
    d = x.astype(np.float64) - target
    g = _upstream(dloss, p.reduction, d.size)
    return (2.0 * d * g).astype(x.dtype)


def smooth_l1_loss_forward(x, target, p):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = x - target); beta 0 is L1."""
    d = x.astype(np.float64) - target
    ad = np.abs(d)
    if p.beta == 0.0:
        per_element = ad  # the quadratic branch is empty; avoid 0/0 in the unused branch
    else:
        per_element = np.where(ad < p.beta, 0.5 * d * d / p.beta, ad - 0.5 * p.beta)
    return np.asarray(_reduce(per_element, p.reduction, d.size), dtype=x.dtype)


def smooth_l1_loss_backward(dloss, x, target, p):
    """dx = clamp(d / beta, -1, 1) * dloss (sign(d) for beta 0, 0 at d = 0, as PyTorch)."""
    d = x.astype(np.float64) - target
    if p.beta == 0.0:
        slope = np.sign(d)
    else:
        slope = np.where(d < -p.beta, -1.0, np.where(d > p.beta, 1.0, d / p.beta))
    g = _upstream(dloss, p.reduction, d.size)
    return (slope * g).astype(x.dtype)
