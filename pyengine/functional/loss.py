"""Losses with torch.nn.functional's semantics: cross_entropy, nll_loss, mse_loss, smooth_l1_loss.

Shape letters: N batch, C classes, d1 ... extra (e.g. spatial) dimensions, M = N * d1 * ...
rows. The classification losses take input (C,), (N, C) or (N, C, d1, ...), move the class
dimension last and flatten to (M, C) for the kernels, and give 'none' results back the shape
of the target, (N, d1, ...). What the kernels compute, and how the weights enter each
reduction, is written once in ``pyengine/backends/numpy_ref/loss.py``.

Empty inputs never reach a kernel: the Functions below answer them directly ('mean' of nothing
is NaN, 'sum' is 0, as in PyTorch), so no backend has to special-case M = 0 or C = 0.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..backends.base import array_module
from ..params import LossParams
from ..tensor import Tensor, _unbroadcast
from ._common import (FLOAT_DTYPES, as_tensor, check_float, check_int, check_reduction,
                      check_same_device, contiguous, kernel)


# -- argument handling shared by the losses ----------------------------------------------------
def _reduction(size_average, reduce, reduction) -> str:
    """The reduction string, mapping the legacy size_average/reduce flags as PyTorch does."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
        # stacklevel 3: point at the user's call, not at the loss function
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      f"reduction='{reduction}' instead.", UserWarning, stacklevel=3)
    elif reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' "
                      "instead.", UserWarning, stacklevel=3)
        reduction = "mean"
    return check_reduction(reduction)


def _promoted_float(named):
    """The dtype PyTorch computes in for these (name, Tensor) pairs: the widest float among
    them (integers take no part). TypeError when none is float32/float64."""
    floats = [t.dtype for _, t in named if t.dtype.kind == "f"]
    if not floats or np.result_type(*floats) not in FLOAT_DTYPES:
        desc = ", ".join(f"{n} {t.dtype} (shape {t.shape})" for n, t in named)
        raise TypeError(f"expected float32 or float64 tensors, got {desc}")
    return np.result_type(*floats)


def _empty_loss(m: int, dtype, reduction: str, xp):
    """The loss of an empty input: zeros (M,) for 'none', 0 for 'sum', NaN for 'mean'."""
    if reduction == "none":
        return xp.zeros((m,), dtype=dtype)
    return xp.asarray(np.nan if reduction == "mean" else 0.0, dtype=dtype)


def _real_in_range(v, name: str, low: float, high: float) -> float:
    """``v`` as a float in [low, high] (bools refused; NaN is out of range)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a float, got {v!r}")
    v = float(v)
    if not low <= v <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {v}")
    return v


# -- classification: layout and target checks -------------------------------------------------
def _class_layout(x: Tensor, fname: str):
    """(C, target shape) of a classification input: (C,) -> (C, ()), (N,C,d1..) -> (C, (N,d1..))."""
    if x.ndim == 0:
        raise ValueError(f"{fname}: input must have a class dimension, shape (C,), (N, C) or "
                         f"(N, C, d1, ...), got shape ()")
    if x.ndim == 1:
        return x.shape[0], ()
    return x.shape[1], (x.shape[0],) + x.shape[2:]


def _as_rows(x: Tensor, c: int, m: int) -> Tensor:
    """x (C,), (N,C) or (N,C,d1,...) as (M, C) with the class dimension last (differentiable)."""
    if x.ndim > 2:
        x = x.permute(0, *range(2, x.ndim), 1)
    return x.reshape(m, c)


def _class_index_target(t: Tensor, x: Tensor, c: int, target_shape: tuple, ignore_index: int,
                        fname: str, probabilities_allowed: bool):
    """Validated class indices as a contiguous int64 array of M = prod(target_shape) rows."""
    # PyTorch also takes a target of shape (1,) for an unbatched (C,) input, as if it were 0-d.
    if t.shape != target_shape and not (x.ndim == 1 and t.shape == (1,)):
        also = " (class indices) or the input's shape (class probabilities)" \
            if probabilities_allowed else ""
        raise ValueError(f"{fname}: target of shape {t.shape} does not match input of shape "
                         f"{x.shape}: expected target shape {target_shape}{also}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fname}: target of class indices must have an integer dtype, got "
                        f"{t.dtype} (target shape {t.shape}, input shape {x.shape})")
    xp = t._xp
    idx = t.data.astype(np.int64).reshape(-1)
    bad = (idx != ignore_index) & ((idx < 0) | (idx >= c))
    if bool(bad.any()):
        value = int(idx[bad][0])
        raise IndexError(f"{fname}: target contains class index {value}, out of range for "
                         f"input of shape {x.shape} with C={c} classes (expected 0 <= index < "
                         f"{c}, or ignore_index={ignore_index})")
    return xp.ascontiguousarray(idx)


def _class_weight(weight, c: int, x: Tensor, fname: str):
    """The per-class weight as a Tensor of shape (C,), or None."""
    if weight is None:
        return None
    w = as_tensor(weight, "weight")
    check_same_device(x, w, "input", "weight")
    if w.shape != (c,):
        raise ValueError(f"{fname}: weight must have shape ({c},), one value per class of input "
                         f"of shape {x.shape}, got shape {w.shape}")
    check_float(w, "weight")
    return w


# -- autograd Functions --------------------------------------------------------------------------
class _CrossEntropy(Function):
    """Fused log-softmax + NLL on (M, C) logits; differentiable in the logits and, for
    probability targets, in the target and the weight."""

    @staticmethod
    def forward(ctx, logits, target, weight, p, device):
        logits, target = contiguous(logits), contiguous(target)
        weight = None if weight is None else contiguous(weight)
        ctx.p, ctx.device = p, device
        if logits.size == 0:
            loss, lse = _empty_loss(logits.shape[0], logits.dtype, p.reduction,
                                    array_module(logits)), None
        else:
            loss, lse = kernel("cross_entropy_forward", logits.dtype, device)(logits, target,
                                                                            weight, p)
        ctx.save_for_backward(logits, target, weight, lse)
        return loss

    @staticmethod
    def backward(ctx, dloss):
        logits, target, weight, lse = ctx.saved
        p, needs = ctx.p, ctx.needs_input_grad
        xp = array_module(logits)
        m, c = logits.shape
        if logits.size == 0:
            return (xp.zeros_like(logits) if needs[0] else None,
                    xp.zeros_like(target) if needs[1] else None,
                    xp.zeros_like(weight) if needs[2] else None)
        dloss = contiguous(dloss)
        dlogits = dtarget = dweight = None
        if needs[0]:
            dlogits = kernel("cross_entropy_backward", logits.dtype, ctx.device)(
                dloss, logits, target, weight, lse, p)
        if needs[1] or needs[2]:
            # Only probability targets get here (class indices are integers). The loss is
            # -sum_c w[c] t'[c] logp[c] per row, t' = (1 - ls) t + ls / C. logp comes from the
            # log-softmax kernel rather than logits - lse: a float32 lse of logits near 1e4 is
            # only good to its ulp (~5e-4), too coarse for a gradient.
            logp = kernel("log_softmax_forward", logits.dtype, ctx.device)(logits, 1)
            g = dloss / m if p.reduction == "mean" else dloss
            g = xp.broadcast_to(g, (m,))[:, None]
            w = 1.0 if weight is None else weight
            ls = p.label_smoothing
            if needs[1]:
                dtarget = -(1.0 - ls) * g * w * logp
            if needs[2]:
                smoothed = target * (1.0 - ls) + ls / c if ls > 0.0 else target
                dweight = -(g * smoothed * logp).sum(axis=0)
        return dlogits, dtarget, dweight


class _NLLLoss(Function):
    """NLL on (M, C) log-probabilities and int64 (M,) targets; differentiable in the input."""

    @staticmethod
    def forward(ctx, logp, target, weight, p, device):
        logp, target = contiguous(logp), contiguous(target)
        weight = None if weight is None else contiguous(weight)
        ctx.p, ctx.device, ctx.shape, ctx.dtype = p, device, logp.shape, logp.dtype
        ctx.save_for_backward(target, weight)
        if logp.size == 0:
            return _empty_loss(logp.shape[0], logp.dtype, p.reduction, array_module(logp))
        return kernel("nll_loss_forward", logp.dtype, device)(logp, target, weight, p)

    @staticmethod
    def backward(ctx, dloss):
        target, weight = ctx.saved
        if 0 in ctx.shape:
            return array_module(target).zeros(ctx.shape, dtype=ctx.dtype), None, None
        dlogp = kernel("nll_loss_backward", ctx.dtype, ctx.device)(
            contiguous(dloss), target, weight, ctx.shape, ctx.p)
        return dlogp, None, None


class _PointwiseLoss(Function):
    """mse_loss / smooth_l1_loss: broadcasts input and target, runs the kernel on the common
    shape, and sums the gradient back to each operand's own shape."""

    @staticmethod
    def forward(ctx, x, target, name, shape, p, device):
        xp = array_module(x)
        ctx.name, ctx.p, ctx.device = name, p, device
        ctx.shapes = (x.shape, target.shape)
        xb = contiguous(xp.broadcast_to(x, shape))
        tb = contiguous(xp.broadcast_to(target, shape))
        ctx.save_for_backward(xb, tb)
        if xb.size == 0:
            if p.reduction == "none":
                return xp.zeros(shape, dtype=x.dtype)
            return _empty_loss(0, x.dtype, p.reduction, xp)
        return kernel(name + "_forward", x.dtype, device)(xb, tb, p)

    @staticmethod
    def backward(ctx, dloss):
        xb, tb = ctx.saved
        if xb.size == 0:
            dx = array_module(xb).zeros_like(xb)
        else:
            dx = kernel(ctx.name + "_backward", xb.dtype, ctx.device)(contiguous(dloss), xb, tb,
                                                                     ctx.p)
        x_shape, t_shape = ctx.shapes
        return (_unbroadcast(dx, x_shape) if ctx.needs_input_grad[0] else None,
                _unbroadcast(-dx, t_shape) if ctx.needs_input_grad[1] else None)


# -- public ops ----------------------------------------------------------------------------------
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits and a target, fused (log-softmax + NLL in one kernel).

    input: (C,), (N, C) or (N, C, d1, ...) logits. target: class indices of shape (), (N,) or
    (N, d1, ...) (any integer dtype), or class probabilities of the input's shape. weight: (C,)
    per-class weights. Targets equal to ``ignore_index`` contribute nothing (class indices only).
    ``label_smoothing`` in [0, 1] mixes the target with the uniform distribution. 'mean' divides
    by the total weight of the non-ignored targets (class indices) or by the number of rows
    (probabilities). Differentiable in the input, and in a probability target and its weight.

    >>> import numpy as np, pyengine as pe, pyengine.functional as F
    >>> logits = pe.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> round(F.cross_entropy(logits, pe.tensor(np.array([0, 2]))).item(), 4)
    0.6691
    """
    fname = "cross_entropy"
    x, t = as_tensor(input, "input"), as_tensor(target, "target")
    check_same_device(x, t, "input", "target")
    reduction = _reduction(size_average, reduce, reduction)
    ignore_index = check_int(ignore_index, "ignore_index")
    ls = _real_in_range(label_smoothing, "label_smoothing", 0.0, 1.0)
    check_float(x, "input")
    c, target_shape = _class_layout(x, fname)
    m = math.prod(target_shape)
    w = _class_weight(weight, c, x, fname)
    if t.shape == x.shape:
        if t.dtype.kind != "f":
            raise TypeError(f"{fname}: a target of the input's shape {x.shape} holds class "
                            f"probabilities and must be float32 or float64, got {t.dtype}")
        if ignore_index >= 0:
            raise ValueError(f"{fname}: ignore_index={ignore_index} is not supported for class "
                             f"probability targets (target shape {t.shape})")
        named = [("input", x), ("target", t)] + ([("weight", w)] if w is not None else [])
        dt = _promoted_float(named)  # PyTorch promotes the three operands here
        x, t = x.to(dtype=dt), t.to(dtype=dt)
        w = None if w is None else w.to(dtype=dt)
        rows_target = _as_rows(t, c, m)
    else:
        rows_target = _class_index_target(t, x, c, target_shape, ignore_index, fname, True)
        if w is not None:
            if w.dtype != x.dtype:
                raise TypeError(f"{fname}: weight ({w.dtype}) must have the input's dtype "
                                f"({x.dtype}) with class-index targets")
            if w.requires_grad and is_grad_enabled():
                raise ValueError(f"{fname}: weight of shape {w.shape} requires grad, but the "
                                 "loss is not differentiable in the weight with class-index "
                                 "targets (as in PyTorch); pass weight.detach()")
    p = LossParams(reduction=reduction, ignore_index=ignore_index, label_smoothing=ls)
    loss = _CrossEntropy.apply(_as_rows(x, c, m), rows_target, w, p=p, device=x.device)
    return loss.reshape(target_shape) if reduction == "none" else loss


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of class indices given log-probabilities.

    input: (C,), (N, C) or (N, C, d1, ...) log-probabilities; target: (), (N,) or (N, d1, ...)
    class indices (any integer dtype); weight: (C,). Loss of a row: -weight[t] * input[t];
    'mean' divides by the total weight of the targets that are not ``ignore_index``.

    >>> import numpy as np, pyengine as pe, pyengine.functional as F
    >>> logp = pe.tensor([[-0.5, -1.0], [-2.0, -0.25]])
    >>> F.nll_loss(logp, pe.tensor(np.array([0, 1])), reduction="sum").item()
    0.75
    """
    fname = "nll_loss"
    x, t = as_tensor(input, "input"), as_tensor(target, "target")
    check_same_device(x, t, "input", "target")
    reduction = _reduction(size_average, reduce, reduction)
    ignore_index = check_int(ignore_index, "ignore_index")
    check_float(x, "input")
    c, target_shape = _class_layout(x, fname)
    m = math.prod(target_shape)
    w = _class_weight(weight, c, x, fname)
    rows_target = _class_index_target(t, x, c, target_shape, ignore_index, fname, False)
    if w is not None:
        if w.dtype != x.dtype:
            raise TypeError(f"{fname}: weight ({w.dtype}) must have the input's dtype ({x.dtype})")
        if w.requires_grad and is_grad_enabled():
            raise ValueError(f"{fname}: weight of shape {w.shape} requires grad, but nll_loss "
                             "is not differentiable in the weight (as in PyTorch); pass "
                             "weight.detach()")
    p = LossParams(reduction=reduction, ignore_index=ignore_index)
    loss = _NLLLoss.apply(_as_rows(x, c, m), rows_target, w, p=p, device=x.device)
    return loss.reshape(target_shape) if reduction == "none" else loss


def _pointwise_operands(input, target, fname):
    """(x, target, broadcast shape) of an element-wise loss, in the promoted float dtype; warns
    like PyTorch when the shapes differ."""
    x, t = as_tensor(input, "input"), as_tensor(target, "target")
    check_same_device(x, t, "input", "target")
    dt = _promoted_float([("input", x), ("target", t)])
    if t.shape != x.shape:
        warnings.warn(f"Using a target size {t.shape} that is different to the input size "
                      f"{x.shape}. This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", UserWarning,
                      stacklevel=3)
    try:
        shape = np.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ValueError(f"{fname}: input of shape {x.shape} and target of shape {t.shape} "
                         "cannot be broadcast together") from None
    return x.to(dtype=dt), t.to(dtype=dt), shape


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error (input - target)^2, reduced; input and target broadcast together.

    ``weight`` (the input's shape) scales each element; then 'mean' divides by weight.sum().
    Differentiable in the input, the target and the weight.

    >>> import pyengine as pe, pyengine.functional as F
    >>> F.mse_loss(pe.tensor([1.0, 2.0]), pe.tensor([0.0, 0.0])).item()
    2.5
    """
    reduction = _reduction(size_average, reduce, reduction)
    x, t, shape = _pointwise_operands(input, target, "mse_loss")
    if weight is None:
        return _PointwiseLoss.apply(x, t, name="mse_loss", shape=shape,
                                    p=LossParams(reduction=reduction), device=x.device)
    w = as_tensor(weight, "weight")
    check_same_device(x, w, "input", "weight")
    if w.shape != x.shape:
        raise ValueError(f"mse_loss: weight must have the input's shape {x.shape}, got "
                         f"{w.shape}")
    dt = _promoted_float([("input", x), ("weight", w)])
    x, t, w = x.to(dtype=dt), t.to(dtype=dt), w.to(dtype=dt)
    # PyTorch weights the per-element losses and normalises by the weights' sum; composing
    # differentiable ops gives the weight its gradient too.
    per_element = _PointwiseLoss.apply(x, t, name="mse_loss", shape=shape,
                                       p=LossParams(reduction="none"), device=x.device)
    weighted = per_element * w
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    return weighted.sum() / w.sum()


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Smooth L1: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target).

    ``beta`` >= 0; beta 0 is the L1 loss. Input and target broadcast together; differentiable
    in both.

    >>> import pyengine as pe, pyengine.functional as F
    >>> F.smooth_l1_loss(pe.tensor([0.5, 3.0]), pe.tensor([0.0, 0.0]), reduction="none").tolist()
    [0.125, 2.5]
    """
    reduction = _reduction(size_average, reduce, reduction)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise TypeError(f"smooth_l1_loss: beta must be a float, got {beta!r}")
    if not float(beta) >= 0.0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    x, t, shape = _pointwise_operands(input, target, "smooth_l1_loss")
    return _PointwiseLoss.apply(x, t, name="smooth_l1_loss", shape=shape,
                                p=LossParams(reduction=reduction, beta=float(beta)),
                                device=x.device)


__all__ = ["cross_entropy", "nll_loss", "mse_loss", "smooth_l1_loss"]
